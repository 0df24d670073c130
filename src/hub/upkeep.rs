//! Keeping the hub in shape: rules and limits put in force, caches emptied
//! or aged out, pings, deadlines, slow readers, and the final close.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{unix_now, ChannelRules, Farewell, Hub};

impl Hub {
    /// Change the cache limits (config reload); applied on the next publish
    /// and the next age sweep.
    pub fn set_limits(&self, max_per_channel: usize, max_age: u64) {
        self.max_per_channel
            .store(max_per_channel, Ordering::Relaxed);
        self.max_age.store(max_age, Ordering::Relaxed);
    }

    /// Put per-channel rules in force: caches over a new size limit are
    /// trimmed at once; age limits apply at the next sweep.
    pub fn set_rules(&self, rules: ChannelRules) {
        let global = self.max_per_channel.load(Ordering::Relaxed);
        let mut state = self.lock();
        let mut changed = Vec::new();
        for (name, channel) in state.channels.iter_mut() {
            let max = rules.max_messages(name, global);
            if max > 0 && channel.messages.len() > max {
                let excess = channel.messages.len() - max;
                channel.messages.drain(..excess);
            }
            // Persistence may have been switched for it: look again.
            changed.push(name.clone());
        }
        for name in changed {
            state.mark_dirty(&name);
        }
        self.rules.store(Arc::new(rules));
    }

    /// Empty one channel's cache; `None` if there is no such channel.
    pub fn clear_channel(&self, name: &[u8]) -> Option<usize> {
        let mut state = self.lock();
        let channel = state.channels.get_mut(name)?;
        let cleared = channel.messages.len();
        channel.messages.clear();
        let name = Bytes::copy_from_slice(name);
        state.mark_dirty(&name);
        state.expire_if_idle(&name);
        Some(cleared)
    }

    /// Empty every channel's cache (SIGUSR1).
    pub fn clear_caches(&self) {
        let mut state = self.lock();
        let names: Vec<Bytes> = state.channels.keys().cloned().collect();
        for name in &names {
            state.mark_dirty(name);
        }
        for channel in state.channels.values_mut() {
            channel.messages.clear();
        }
        state.channels.retain(|_, c| !c.is_idle());
    }

    /// Drop messages older than MaxMessageAge, and channels left idle.
    pub fn trim_by_age(&self) {
        let max_age = self.max_age.load(Ordering::Relaxed);
        let now = unix_now();
        let rules = self.rules.load();
        let mut state = self.lock();
        let mut changed = Vec::new();
        for (name, channel) in state.channels.iter_mut() {
            let age = rules.max_age(name, max_age);
            let oldest = now.saturating_sub(age);
            let before = channel.messages.len();
            while channel
                .messages
                .front()
                .is_some_and(|m| m.timestamp < oldest)
            {
                channel.messages.pop_front();
            }
            if channel.messages.len() != before {
                changed.push(name.clone());
            }
        }
        for name in changed {
            state.mark_dirty(&name);
            state.expire_if_idle(&name);
        }
    }

    /// Queue each persistent subscriber's ping.
    pub fn ping_all(&self) {
        let state = self.lock();
        for member in state.members.values() {
            member.subscriber.push_raw(member.subscriber.framing.ping());
        }
    }

    /// Close subscriptions past their MaxTime (no shutdown message, as in
    /// meteord) or whose token expired (saying so).
    pub fn expire_deadlines(&self, now: Instant) {
        let mut state = self.lock();
        let due: Vec<(u64, Farewell)> = state
            .members
            .iter()
            .filter_map(|(id, m)| {
                if m.expiry.is_some_and(|e| e <= now) {
                    Some((*id, Farewell::TokenExpired))
                } else if m.deadline.is_some_and(|d| d <= now) {
                    Some((*id, Farewell::Quiet))
                } else {
                    None
                }
            })
            .collect();
        for (id, farewell) in due {
            if let Some(member) = state.members.get(&id) {
                member.subscriber.close(farewell);
            }
            state.detach(id);
        }
    }

    /// Close every subscription with its shutdown message (server shutdown).
    pub fn close_all(&self) {
        let mut state = self.lock();
        state.closed = true;
        let ids: Vec<u64> = state.members.keys().copied().collect();
        for id in ids {
            if let Some(member) = state.members.get(&id) {
                member.subscriber.close(Farewell::Shutdown);
            }
            state.detach(id);
        }
    }

    /// Let each live feed forget the entries all its readers are past, and
    /// drop the readers that fell so far behind that the feed no longer
    /// holds what they need (they stopped reading their socket).
    pub fn trim_feeds(&self) {
        let mut state = self.lock();
        let mut lagging = Vec::new();
        for channel in state.channels.values() {
            let Some(feed) = &channel.feed else { continue };
            let first = feed.first_seq();
            let mut oldest = None;
            for subscriber in channel.subscribers.values() {
                match subscriber.cursor(feed) {
                    Some(cursor) if cursor < first => lagging.push(subscriber.clone()),
                    Some(cursor) => oldest = Some(oldest.map_or(cursor, |o: u64| o.min(cursor))),
                    None => {}
                }
            }
            if let Some(oldest) = oldest {
                feed.trim_before(oldest);
            }
        }
        for subscriber in lagging {
            tracing::info!(
                id = subscriber.id,
                "subscriber fell too far behind; dropped"
            );
            subscriber.abort();
            state.detach(subscriber.id);
        }
    }

    /// Past `budget` bytes handed to connection tasks and not yet written
    /// (0: no budget), drop the subscribers whose write has been stuck the
    /// longest — at least `stalled` — until the rest fits: a few clients
    /// that do not read cost them their connection, not the server its
    /// memory.
    pub fn drop_stalled(&self, budget: usize, stalled: Duration) {
        let mut total = self.queued_bytes();
        if budget == 0 || total <= budget {
            return;
        }
        let now = Instant::now();
        let mut state = self.lock();
        let mut stuck: Vec<(Instant, usize, u64)> = state
            .members
            .values()
            .filter_map(|m| {
                let (since, size) = m.subscriber.stalled_write()?;
                (now.duration_since(since) >= stalled).then_some((since, size, m.subscriber.id))
            })
            .collect();
        stuck.sort_unstable();
        for (_, size, id) in stuck {
            if total <= budget {
                break;
            }
            if let Some(subscriber) = state.detach(id) {
                tracing::info!(
                    id,
                    bytes = size,
                    "subscriber not reading while the queues are full; dropped"
                );
                subscriber.abort();
            }
            total = total.saturating_sub(size);
        }
    }
}
