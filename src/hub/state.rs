//! The hub's state behind its one lock: channels with their caches and
//! live feeds, the live subscribers, and host ids.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use indexmap::IndexMap;
use smallvec::SmallVec;

use super::feed::{Entry, Feed, Wakers};
use super::hosts::Hosts;
use super::message::framing_key;
use super::presence::{Notice, Report};
use super::{ChannelSnapshot, Framing, Message, Start, Subscriber};

#[derive(Default)]
pub(super) struct Channel {
    pub(super) messages: VecDeque<Arc<Message>>,
    pub(super) subscribers: IndexMap<u64, Arc<Subscriber>>,
    /// Live feed, while the channel has subscribers.
    pub(super) feed: Option<Arc<Feed>>,
    /// Framings its subscribers use, with how many use each.
    pub(super) framings: Vec<(Arc<dyn Framing>, usize)>,
    /// Listed in the hub's changed channels, waiting to be persisted.
    pub(super) dirty: bool,
}

impl Channel {
    pub(super) fn add_subscriber(&mut self, subscriber: &Arc<Subscriber>) {
        self.subscribers.insert(subscriber.id, subscriber.clone());
        let key = framing_key(&subscriber.framing);
        match self
            .framings
            .iter_mut()
            .find(|(f, _)| framing_key(f) == key)
        {
            Some((_, count)) => *count += 1,
            None => self.framings.push((subscriber.framing.clone(), 1)),
        }
        subscriber.attach(self.feed.get_or_insert_with(|| Arc::new(Feed::new())));
    }

    pub(super) fn snapshot(&self, name: &Bytes) -> ChannelSnapshot {
        ChannelSnapshot {
            name: name.clone(),
            last_id: self.messages.back().map(|m| m.id),
            message_count: self.messages.len(),
            subscriber_count: self.subscribers.len(),
        }
    }

    pub(super) fn remove_subscriber(&mut self, id: u64) {
        let Some(subscriber) = self.subscribers.swap_remove(&id) else {
            return;
        };
        let key = framing_key(&subscriber.framing);
        if let Some(i) = self
            .framings
            .iter()
            .position(|(f, _)| framing_key(f) == key)
        {
            self.framings[i].1 -= 1;
            if self.framings[i].1 == 0 {
                self.framings.swap_remove(i);
            }
        }
        if self.subscribers.is_empty() {
            self.feed = None;
        }
    }

    pub(super) fn is_idle(&self) -> bool {
        self.messages.is_empty() && self.subscribers.is_empty()
    }

    /// Cache a message (keeping at most `max`, 0: no limit) and append it
    /// to the live feed; returns the wakers of the subscribers to wake once
    /// the hub's lock is released.
    #[inline]
    pub(super) fn append(&mut self, message: Arc<Message>, max: usize) -> Wakers {
        self.messages.push_back(message.clone());
        if max > 0 {
            while self.messages.len() > max {
                self.messages.pop_front();
            }
        }
        match &self.feed {
            Some(feed) => {
                let framings = &self.framings;
                feed.push(|seq| Entry::new(seq, message, framings.iter().map(|(f, _)| f)))
            }
            None => Wakers::new(),
        }
    }

    /// Index of the first cached message the start asks for, if any.
    pub(super) fn start_index(&self, start: Start) -> Option<usize> {
        let len = self.messages.len();
        match start {
            Start::Live => None,
            _ if len == 0 => None,
            Start::All => Some(0),
            Start::Last(n) => Some(len.saturating_sub(n)),
            Start::FromId(id) => {
                let index = self.messages.partition_point(|m| m.id < id);
                (index < len).then_some(index)
            }
        }
    }
}

/// A live subscriber and what it is attached to.
pub(super) struct Member {
    pub(super) subscriber: Arc<Subscriber>,
    /// The channel map's own keys (shared, not copies of the request's
    /// names), inline for the usual single channel.
    pub(super) channels: SmallVec<[Bytes; 1]>,
    pub(super) deadline: Option<Instant>,
    /// When the token that granted it expires.
    pub(super) expiry: Option<Instant>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) next_id: u64,
    /// Ids below this are reserved on disk (u64::MAX: nothing to reserve).
    pub(super) id_ceiling: u64,
    /// Channels changed since the persistence thread last looked, when it
    /// is watching (`track_dirty`); each channel's own flag keeps a busy
    /// channel from being listed twice.
    pub(super) dirty: Vec<Bytes>,
    pub(super) track_dirty: bool,
    pub(super) channels: HashMap<Bytes, Channel>,
    pub(super) members: HashMap<u64, Member>,
    /// Host id → the persistent subscriber currently using it.
    pub(super) hosts: Hosts,
    /// Where attaches and detaches are reported (presence), if anywhere.
    pub(super) notices: Option<Report>,
    /// Shutting down: subscriptions get their backlog, then the shutdown
    /// message, and are not kept (one arriving after `close_all` would
    /// otherwise hold the exit up).
    pub(super) closed: bool,
}

impl State {
    /// Detach a subscriber from all its channels; drop channels left idle.
    /// (Close a subscriber before detaching it, so that it can still take
    /// what was published to it.)
    pub(super) fn detach(&mut self, id: u64) -> Option<Arc<Subscriber>> {
        let member = self.members.remove(&id)?;
        member.subscriber.detach_feeds();
        for name in &member.channels {
            self.notify_detached(name, &member.subscriber);
            if let Some(channel) = self.channels.get_mut(name) {
                channel.remove_subscriber(id);
                if channel.is_idle() {
                    self.channels.remove(name);
                }
            }
        }
        if let Some(host) = &member.subscriber.info.host_id {
            self.hosts.remove(host, id);
        }
        Some(member.subscriber)
    }

    /// Report a subscriber attached to a channel.
    pub(super) fn notify_attached(&self, channel: &Bytes, subscriber: &Arc<Subscriber>) {
        if let Some(report) = &self.notices {
            report(Notice::Attached {
                channel: channel.clone(),
                subscriber: subscriber.clone(),
            });
        }
    }

    /// Report a subscriber detached from a channel.
    pub(super) fn notify_detached(&self, channel: &Bytes, subscriber: &Arc<Subscriber>) {
        if let Some(report) = &self.notices {
            report(Notice::Detached {
                channel: channel.clone(),
                subscriber: subscriber.clone(),
            });
        }
    }

    /// The channel map's key for `name` (a shared handle), creating the
    /// channel if needed.
    pub(super) fn channel_key(&mut self, name: &Bytes) -> (Bytes, &mut Channel) {
        match self.channels.entry(name.clone()) {
            // The key already in the map, not the one just offered.
            Slot::Occupied(entry) => (entry.key().clone(), entry.into_mut()),
            Slot::Vacant(entry) => (entry.key().clone(), entry.insert(Channel::default())),
        }
    }

    pub(super) fn mark_dirty(&mut self, name: &Bytes) {
        if !self.track_dirty {
            return;
        }
        match self.channels.get_mut(name) {
            Some(channel) if channel.dirty => {}
            Some(channel) => {
                channel.dirty = true;
                self.dirty.push(name.clone());
            }
            // A channel that is gone: list it so its rows are removed.
            None => self.dirty.push(name.clone()),
        }
    }

    pub(super) fn expire_if_idle(&mut self, name: &Bytes) {
        if self.channels.get(name).is_some_and(Channel::is_idle) {
            self.channels.remove(name);
        }
    }
}
