//! Messages coming in: published here, applied from a cluster's shared
//! log, restored from disk — and the hooks persistence uses to follow them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::state::State;
use super::{unix_now, ChannelRules, Hub, Message, Stat};

/// Receives each message as it is published (durable persistence).
pub type Journal = Box<dyn Fn(Arc<Message>) + Send + Sync>;

/// Reserves message ids durably before they are handed out.
pub trait IdReserve: Send + Sync {
    fn reserve(&self, upto: u64) -> std::io::Result<()>;
}

/// Ids reserved at a time: a crash makes the next id jump by at most this.
/// Large, so that a busy publisher reserves (one small fsync) rarely.
pub const ID_BLOCK: u64 = 1_000_000;

/// A channel's cache as the persistence thread sees it.
pub struct ChannelCache {
    pub name: Bytes,
    /// Oldest first; empty when the channel is gone.
    pub messages: Vec<Arc<Message>>,
    /// Whether its rule lets it be kept on disk.
    pub persist: bool,
}

impl Hub {
    /// Publish `text` on `channel`: assign the next id, cache it and hand it
    /// to every subscriber of the channel. Returns the id.
    pub fn publish(&self, channel: &[u8], text: Bytes) -> u64 {
        let timestamp = unix_now();
        // The channel's rule is looked up once, for its limit and whether
        // it is kept on disk.
        let rules = self.rules.load();
        let rule = rules.for_channel(channel);
        let max = rule
            .and_then(|r| r.max_messages)
            .unwrap_or_else(|| self.max_per_channel.load(Ordering::Relaxed));
        let journaled = rule.and_then(|r| r.persist).unwrap_or(true);
        let mut guard = self.lock();
        let state = &mut *guard;
        let id = state.next_id;
        state.next_id += 1;
        if id >= state.id_ceiling {
            self.extend_ceiling(state, id);
        }

        let (name, chan) = match state.channels.get_key_value(channel) {
            Some((name, _)) => {
                let name = name.clone();
                let chan = state.channels.get_mut(channel).expect("present");
                (name, chan)
            }
            None => {
                let name = Bytes::copy_from_slice(channel);
                (name.clone(), state.channels.entry(name).or_default())
            }
        };
        let message = Arc::new(Message {
            id,
            channel: name.clone(),
            text,
            timestamp,
        });
        if let Some(journal) = self.journal.get().filter(|_| journaled) {
            journal(message.clone());
        }
        let wakers = chan.append(message, max);
        if state.track_dirty && !chan.dirty {
            chan.dirty = true;
            state.dirty.push(name);
        }
        self.published.store(id + 1, Ordering::Release);
        drop(guard);
        for waker in wakers {
            waker.wake();
        }
        self.stats.incr(Stat::UniqueMessages);
        id
    }

    /// Take in messages that already have their id and timestamp (the
    /// shared log of a cluster), in id order: each is cached and delivered
    /// like a published one. Ids below the next expected id were taken in
    /// before and are skipped, so applying the same message twice is
    /// harmless. Returns how many were new.
    pub fn apply(&self, messages: impl IntoIterator<Item = Message>) -> usize {
        let rules = self.rules.load();
        let global = self.max_per_channel.load(Ordering::Relaxed);
        let mut wakers = Vec::new();
        let mut guard = self.lock();
        let applied = self.apply_locked(&mut guard, &rules, global, messages, &mut wakers);
        drop(guard);
        for waker in wakers {
            waker.wake();
        }
        applied
    }

    fn apply_locked(
        &self,
        state: &mut State,
        rules: &ChannelRules,
        global: usize,
        messages: impl IntoIterator<Item = Message>,
        wakers: &mut Vec<std::task::Waker>,
    ) -> usize {
        let mut applied = 0;
        for mut message in messages {
            if message.id < state.next_id {
                continue;
            }
            state.next_id = message.id + 1;
            let max = rules.max_messages(&message.channel, global);
            let chan = match state.channels.get_key_value(&message.channel) {
                Some((name, _)) => {
                    // Share the one copy of the name.
                    message.channel = name.clone();
                    state.channels.get_mut(&message.channel).expect("present")
                }
                None => state.channels.entry(message.channel.clone()).or_default(),
            };
            let name = message.channel.clone();
            wakers.extend(chan.append(Arc::new(message), max));
            if state.track_dirty && !chan.dirty {
                chan.dirty = true;
                state.dirty.push(name);
            }
            applied += 1;
        }
        self.published.store(state.next_id, Ordering::Release);
        applied
    }

    /// Make the caches equal to `channels` (each channel's messages in id
    /// order, as a cluster's shared store holds them): channels missing
    /// there are emptied, known messages are kept as they are, and messages
    /// newer than any taken in so far are delivered to live subscribers in
    /// id order. Returns how many were new.
    pub fn resync(&self, channels: Vec<(Bytes, Vec<Message>)>) -> usize {
        let rules = self.rules.load();
        let global = self.max_per_channel.load(Ordering::Relaxed);
        let mut wakers = Vec::new();
        let mut guard = self.lock();
        let state = &mut *guard;
        let known = state.next_id;
        let mut fresh = Vec::new();
        let mut names = std::collections::HashSet::with_capacity(channels.len());
        for (name, messages) in channels {
            let (old, new): (Vec<Message>, Vec<Message>) =
                messages.into_iter().partition(|m| m.id < known);
            fresh.extend(new);
            let chan = state.channels.entry(name.clone()).or_default();
            chan.messages = old.into_iter().map(Arc::new).collect();
            names.insert(name);
        }
        let mut changed = Vec::new();
        for (name, chan) in state.channels.iter_mut() {
            if !names.contains(name) && !chan.messages.is_empty() {
                chan.messages.clear();
            }
            changed.push(name.clone());
        }
        for name in changed {
            state.mark_dirty(&name);
        }
        state.channels.retain(|_, c| !c.is_idle());
        fresh.sort_by_key(|m| m.id);
        let applied = self.apply_locked(state, &rules, global, fresh, &mut wakers);
        drop(guard);
        for waker in wakers {
            waker.wake();
        }
        applied
    }

    /// Put restored messages (oldest first) back in their channels and
    /// continue ids from `next_id`. Call before serving.
    pub fn restore(&self, messages: impl IntoIterator<Item = Message>, next_id: u64) {
        let mut state = self.lock();
        for message in messages {
            let channel = state.channels.entry(message.channel.clone()).or_default();
            channel.messages.push_back(Arc::new(message));
        }
        state.next_id = state.next_id.max(next_id);
        self.published.store(state.next_id, Ordering::Release);
    }

    /// Persist from now on: reserve ids through `reserver`, send every
    /// message to `journal` (durable mode), and track changed channels.
    pub fn persist(&self, reserver: Arc<dyn IdReserve>, journal: Option<Journal>) {
        if let Some(journal) = journal {
            let _ = self.journal.set(journal);
        }
        self.lock().track_dirty = true;
        self.reserve_ids(reserver);
    }

    /// Reserve ids through `reserver` from now on, so that they never
    /// repeat across restarts (even with no channel data on disk).
    pub fn reserve_ids(&self, reserver: Arc<dyn IdReserve>) {
        let mut state = self.lock();
        let _ = self.reserver.set(reserver);
        let next = state.next_id;
        self.extend_ceiling(&mut state, next);
    }

    fn extend_ceiling(&self, state: &mut State, id: u64) {
        let upto = id + ID_BLOCK;
        if let Some(reserver) = self.reserver.get() {
            if let Err(e) = reserver.reserve(upto) {
                tracing::error!("cannot reserve message ids on disk: {e}");
            }
        }
        state.id_ceiling = upto;
    }

    /// The caches of the channels changed since the last call (all of them
    /// with `all`), and the next id.
    pub fn take_changes(&self, all: bool) -> (Vec<ChannelCache>, u64) {
        let rules = self.rules.load();
        let mut state = self.lock();
        let names: Vec<Bytes> = if all {
            state.dirty.clear();
            state.channels.keys().cloned().collect()
        } else {
            let mut names = std::mem::take(&mut state.dirty);
            names.sort();
            names.dedup();
            names
        };
        for name in &names {
            if let Some(channel) = state.channels.get_mut(name) {
                channel.dirty = false;
            }
        }
        let caches = names
            .into_iter()
            .map(|name| {
                let messages = state
                    .channels
                    .get(&name)
                    .map(|c| c.messages.iter().cloned().collect())
                    .unwrap_or_default();
                let persist = rules.persisted(&name);
                ChannelCache {
                    name,
                    messages,
                    persist,
                }
            })
            .collect();
        (caches, state.next_id)
    }
}
