//! Subscribers coming and going: a subscription's header, backlog and
//! live attachment in one step under the lock, channels added to and
//! dropped from a live subscription, and subscriptions ended by host id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use smallvec::SmallVec;

use super::state::{Channel, Member};
use super::{
    ChannelSnapshot, Delivery, Farewell, Hub, Message, Refused, Start, Stat, Subscriber,
    Subscription,
};

impl Hub {
    /// Start a subscription: write the header (built by `header` from the
    /// channels' state), then the backlog of each channel in request order,
    /// then — if persistent and not yet finished — attach it for live
    /// messages. A persistent subscription with a host id replaces (kicks)
    /// any older one with the same host id.
    ///
    /// Refused, with nothing written, when it names more channels than one
    /// subscription may, or would add channels past the hub's limit.
    pub fn subscribe(
        &self,
        request: Subscription<'_>,
        header: impl FnOnce(&[ChannelSnapshot], &mut Vec<u8>),
    ) -> Result<(), Refused> {
        let Subscription {
            subscriber,
            channels,
            persist,
            max_time,
            expires,
            merge_backlog,
        } = request;
        let limits = self.channel_limits();
        if channels.len() > limits.per_subscription {
            return Err(Refused::TooManyChannels(limits.per_subscription));
        }
        // A channel named twice: the last start wins, the first position stays.
        let mut wanted: Vec<(Bytes, Start)> = Vec::with_capacity(channels.len());
        let mut position: HashMap<&Bytes, usize> = HashMap::with_capacity(channels.len());
        for (name, start) in channels {
            match position.get(name) {
                Some(&i) => wanted[i].1 = *start,
                None => {
                    position.insert(name, wanted.len());
                    wanted.push((name.clone(), *start));
                }
            }
        }

        let mut state = self.lock();
        if persist {
            let new = wanted
                .iter()
                .filter(|(name, _)| !state.channels.contains_key(name))
                .count();
            if new > 0 && limits.total > 0 && state.channels.len() + new > limits.total {
                return Err(Refused::ChannelLimit);
            }
        }
        // The host id's current holder, replaced only by a subscription of
        // the same credential: an anonymous client cannot end a token
        // holder's stream by guessing its host id.
        let mut takes_host = persist;
        if persist {
            if let Some(host) = &subscriber.info.host_id {
                if let Some(old) = state.hosts.get(host, &state.members) {
                    match state.members.get(&old) {
                        Some(member)
                            if member.subscriber.info.credential != subscriber.info.credential =>
                        {
                            takes_host = false;
                        }
                        Some(member) => {
                            member.subscriber.close(Farewell::Replaced);
                            state.detach(old);
                        }
                        None => {
                            state.detach(old);
                        }
                    }
                }
            }
        }

        let snapshots: Vec<ChannelSnapshot> = wanted
            .iter()
            .map(|(name, _)| match state.channels.get(name) {
                Some(channel) => channel.snapshot(name),
                None => Channel::default().snapshot(name),
            })
            .collect();
        let mut head = Vec::new();
        header(&snapshots, &mut head);
        subscriber.push_raw(&head);

        let mut backlog: Vec<&Arc<Message>> = Vec::new();
        for (name, start) in &wanted {
            let Some(channel) = state.channels.get(name) else {
                continue;
            };
            if let Some(first) = channel.start_index(*start) {
                backlog.extend(channel.messages.range(first..));
            }
        }
        if merge_backlog {
            backlog.sort_by_key(|m| m.id);
        }
        let mut served = backlog.len() as u64;
        let mut done = false;
        if !backlog.is_empty() && subscriber.push_backlog(backlog) == Delivery::Refused {
            (served, done) = (0, true);
        }
        // The backlog of every requested channel goes out, then the limit
        // closes the subscription.
        if subscriber.limit_reached() {
            done = true;
            subscriber.close(Farewell::Quiet);
        } else if persist && state.closed {
            done = true;
            subscriber.close(Farewell::Shutdown);
        }

        if persist && !done {
            let id = subscriber.id;
            let mut names = SmallVec::with_capacity(wanted.len());
            for (name, _) in &wanted {
                let (key, channel) = state.channel_key(name);
                channel.add_subscriber(&subscriber);
                state.notify_attached(&key, &subscriber);
                names.push(key);
            }
            if let Some(host) = subscriber.info.host_id.as_ref().filter(|_| takes_host) {
                state.hosts.insert(host, id);
            }
            state.members.insert(
                id,
                Member {
                    subscriber: subscriber.clone(),
                    channels: names,
                    deadline: max_time.map(|t| Instant::now() + t),
                    expiry: expires,
                },
            );
        } else if !done {
            subscriber.close(Farewell::Quiet);
        }
        drop(state);
        if served > 0 {
            self.stats.add(Stat::MessagesServed, served);
        }
        Ok(())
    }

    /// Add one channel to a live (persistent) subscription: `announce`
    /// writes what precedes the channel's backlog (it sees the channel's
    /// state), then the backlog, then live messages follow. Refused if the
    /// subscription is not live, already has the channel or as many as one
    /// may, or the channel would be new past the hub's limit.
    pub fn attach_channel(
        &self,
        subscriber: &Arc<Subscriber>,
        name: &Bytes,
        start: Start,
        announce: impl FnOnce(&ChannelSnapshot, &mut Vec<u8>),
    ) -> Result<(), Refused> {
        let limits = self.channel_limits();
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(member) = state
            .members
            .get_mut(&subscriber.id)
            .filter(|_| !state.closed)
        else {
            return Err(Refused::NotLive);
        };
        if member.channels.contains(name) {
            return Err(Refused::AlreadySubscribed);
        }
        if member.channels.len() >= limits.per_subscription {
            return Err(Refused::TooManyChannels(limits.per_subscription));
        }
        let total = state.channels.len();
        if limits.total > 0 && total >= limits.total && !state.channels.contains_key(name) {
            return Err(Refused::ChannelLimit);
        }
        let (key, channel) = state.channel_key(name);
        let snapshot = channel.snapshot(name);
        let mut head = Vec::new();
        announce(&snapshot, &mut head);
        subscriber.push_raw(&head);
        let mut served = 0;
        if let Some(first) = channel.start_index(start) {
            let backlog = channel.messages.range(first..);
            let count = backlog.len() as u64;
            if subscriber.push_backlog(backlog) == Delivery::Queued {
                served = count;
            }
        }
        channel.add_subscriber(subscriber);
        state.notify_attached(&key, subscriber);
        state
            .members
            .get_mut(&subscriber.id)
            .expect("checked above")
            .channels
            .push(key);
        drop(guard);
        if served > 0 {
            self.stats.add(Stat::MessagesServed, served);
        }
        Ok(())
    }

    /// A token that let a live subscription add a channel expires at `at`:
    /// the subscription ends then, unless an earlier one ends it sooner.
    pub fn expire_at(&self, id: u64, at: Instant) {
        if let Some(member) = self.lock().members.get_mut(&id) {
            member.expiry = Some(member.expiry.map_or(at, |e| e.min(at)));
        }
    }

    /// Remove one channel from a live subscription. Returns false if it did
    /// not have the channel.
    pub fn detach_channel(&self, subscriber: &Arc<Subscriber>, name: &[u8]) -> bool {
        let mut state = self.lock();
        let Some(member) = state.members.get_mut(&subscriber.id) else {
            return false;
        };
        let Some(index) = member.channels.iter().position(|c| c.as_ref() == name) else {
            return false;
        };
        let name = member.channels.swap_remove(index);
        if let Some(channel) = state.channels.get_mut(&name) {
            if let Some(feed) = &channel.feed {
                subscriber.detach_feed(feed);
            }
            channel.remove_subscriber(subscriber.id);
        }
        state.notify_detached(&name, subscriber);
        state.expire_if_idle(&name);
        true
    }

    /// How many channels a live subscription has.
    pub fn subscriber_channels(&self, id: u64) -> usize {
        self.lock().members.get(&id).map_or(0, |m| m.channels.len())
    }

    /// Detach a subscriber whose connection ended.
    pub fn unsubscribe(&self, id: u64) {
        self.lock().detach(id);
    }

    /// End the persistent subscription using this host id, with its
    /// shutdown message. Returns whether there was one.
    /// Only a request with the subscription's own credential (the same
    /// token, or none for both) may end it.
    pub fn kick(&self, host_id: &[u8], credential: Option<u64>) -> bool {
        let mut state = self.lock();
        let Some(id) = state.hosts.get(host_id, &state.members) else {
            return false;
        };
        match state.members.get(&id) {
            Some(member) if member.subscriber.info.credential != credential => return false,
            Some(member) => member.subscriber.close(Farewell::Disconnected),
            None => {}
        }
        state.detach(id).is_some()
    }

    /// End one live subscription (with its shutdown message), by id.
    /// Returns whether it existed.
    pub fn kick_subscriber(&self, id: u64) -> bool {
        let mut state = self.lock();
        if let Some(member) = state.members.get(&id) {
            member.subscriber.close(Farewell::Disconnected);
        }
        state.detach(id).is_some()
    }
}
