//! The channel hub: channels, their message caches, global message ids and
//! the subscribers listening to them.
//!
//! Everything that publishes (control port, UDP, later the HTTP API and the
//! admin UI) and everything that subscribes (legacy `/push`, later SSE and
//! WebSocket) goes through this narrow interface: [`Hub::publish`],
//! [`Hub::subscribe`], and the stats and maintenance calls.
//!
//! One lock guards the hub state. That makes the ordering guarantees
//! simple: ids are handed out, cached and appended to the channel's live
//! feed in one step, so a new subscriber's backlog and its live messages
//! never overlap or leave a gap, and every subscriber — even one listening
//! to several channels — sees messages in id order. The work under the lock
//! does not grow with the number of subscribers: a publish renders the
//! message once per framing in use and appends it to the feed
//! (`feed.rs`); each subscriber's own task copies it out from there.

mod feed;
mod message;
mod stats;
mod subscriber;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use indexmap::IndexMap;

use crate::settings::{ChannelRule, ChannelRules};
pub use feed::FEED_CAPACITY;
use feed::{Entry, Feed};
use message::framing_key;
pub use message::{unix_now, Farewell, Framing, Message};
pub use stats::{Stat, Stats};
pub use subscriber::{Delivery, Next, Subscriber, SubscriberInfo};

/// Longest channel name accepted from the HTTP API, WebSocket and rules.
pub const MAX_CHANNEL_NAME: usize = 256;

/// What a channel name given over HTTP or WebSocket must look like: what
/// `ADDMESSAGE` could publish (1 to 256 bytes, no whitespace).
pub fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CHANNEL_NAME
        && !name.bytes().any(crate::control::is_space)
}

/// What a publisher is told while publishing is paused.
pub const PAUSED: &str = "publishing is paused";

/// Explains [`valid_channel_name`] to whoever sent a bad one.
pub const CHANNEL_NAME_RULE: &str = "a channel name is 1 to 256 bytes without spaces";

/// Where a subscription starts in a channel's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Live messages only.
    Live,
    /// The first cached message whose id is at least this (`.r<id>`).
    FromId(u64),
    /// The last n cached messages (`.b<n>`, n > 0).
    Last(usize),
    /// Everything cached (`.h`, `.b0`, `.r` without digits).
    All,
}

/// A channel as seen when a subscription starts, for `~channelinfo~`.
#[derive(Debug, Clone)]
pub struct ChannelSnapshot {
    pub name: Bytes,
    pub last_id: Option<u64>,
    pub message_count: usize,
    pub subscriber_count: usize,
}

/// One line of LISTCHANNELS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSummary {
    pub name: Bytes,
    pub messages: usize,
    pub subscribers: usize,
    pub last_id: Option<u64>,
}

/// A subscription request.
pub struct Subscription<'a> {
    pub subscriber: Arc<Subscriber>,
    /// Channels in request order; a channel named twice uses its last start.
    pub channels: &'a [(Bytes, Start)],
    /// Keep receiving live messages after the backlog.
    pub persist: bool,
    /// Close the subscription after this long.
    pub max_time: Option<Duration>,
    /// Send the backlogs of all channels merged in id order (modern
    /// transports, whose clients resume from the last id they saw), rather
    /// than channel by channel in request order (legacy `/push`).
    pub merge_backlog: bool,
}

#[derive(Default)]
struct Channel {
    messages: VecDeque<Arc<Message>>,
    subscribers: IndexMap<u64, Arc<Subscriber>>,
    /// Live feed, while the channel has subscribers.
    feed: Option<Arc<Feed>>,
    /// Framings its subscribers use, with how many use each.
    framings: Vec<(Arc<dyn Framing>, usize)>,
    /// Listed in the hub's changed channels, waiting to be persisted.
    dirty: bool,
}

impl Channel {
    fn add_subscriber(&mut self, subscriber: &Arc<Subscriber>) {
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

    fn snapshot(&self, name: &Bytes) -> ChannelSnapshot {
        ChannelSnapshot {
            name: name.clone(),
            last_id: self.messages.back().map(|m| m.id),
            message_count: self.messages.len(),
            subscriber_count: self.subscribers.len(),
        }
    }

    fn remove_subscriber(&mut self, id: u64) {
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

    fn is_idle(&self) -> bool {
        self.messages.is_empty() && self.subscribers.is_empty()
    }

    /// Cache a message (keeping at most `max`, 0: no limit) and append it
    /// to the live feed; returns the wakers of the subscribers to wake once
    /// the hub's lock is released.
    #[inline]
    fn append(&mut self, message: Arc<Message>, max: usize) -> Vec<std::task::Waker> {
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
            None => Vec::new(),
        }
    }

    /// Index of the first cached message the start asks for, if any.
    fn start_index(&self, start: Start) -> Option<usize> {
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
struct Member {
    subscriber: Arc<Subscriber>,
    channels: Vec<Bytes>,
    deadline: Option<Instant>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// Ids below this are reserved on disk (u64::MAX: nothing to reserve).
    id_ceiling: u64,
    /// Channels changed since the persistence thread last looked, when it
    /// is watching (`track_dirty`); each channel's own flag keeps a busy
    /// channel from being listed twice.
    dirty: Vec<Bytes>,
    track_dirty: bool,
    channels: HashMap<Bytes, Channel>,
    members: HashMap<u64, Member>,
    /// Host id → the persistent subscriber currently using it.
    hosts: HashMap<Bytes, u64>,
}

impl State {
    /// Detach a subscriber from all its channels; drop channels left idle.
    /// (Close a subscriber before detaching it, so that it can still take
    /// what was published to it.)
    fn detach(&mut self, id: u64) -> Option<Arc<Subscriber>> {
        let member = self.members.remove(&id)?;
        member.subscriber.detach_feeds();
        for name in &member.channels {
            if let Some(channel) = self.channels.get_mut(name) {
                channel.remove_subscriber(id);
                if channel.is_idle() {
                    self.channels.remove(name);
                }
            }
        }
        if let Some(host) = &member.subscriber.info.host_id {
            if self.hosts.get(host) == Some(&id) {
                self.hosts.remove(host);
            }
        }
        Some(member.subscriber)
    }

    fn mark_dirty(&mut self, name: &Bytes) {
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

    fn expire_if_idle(&mut self, name: &Bytes) {
        if self.channels.get(name).is_some_and(Channel::is_idle) {
            self.channels.remove(name);
        }
    }
}

/// The hub. Cheap to share: wrap it in an `Arc`.
pub struct Hub {
    state: Mutex<State>,
    pub stats: Arc<Stats>,
    /// Every message id below this one is fully published.
    published: Arc<AtomicU64>,
    max_per_channel: AtomicUsize,
    max_age: AtomicU64,
    next_subscriber: AtomicU64,
    started: SystemTime,
    /// Writes id reservations ahead of use (persistence on).
    reserver: std::sync::OnceLock<Arc<dyn IdReserve>>,
    /// Receives every published message (durable persistence).
    journal: std::sync::OnceLock<Journal>,
    /// Per-channel settings made in the admin UI.
    rules: arc_swap::ArcSwap<ChannelRules>,
    /// Publishing paused (tray, admin UI): publishers get an error.
    paused: std::sync::atomic::AtomicBool,
}

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
    /// A hub keeping at most `max_per_channel` messages (0: no limit) per
    /// channel, none older than `max_age` seconds.
    pub fn new(max_per_channel: usize, max_age: u64) -> Hub {
        Hub {
            state: Mutex::new(State {
                id_ceiling: u64::MAX,
                ..State::default()
            }),
            stats: Arc::new(Stats::default()),
            published: Arc::new(AtomicU64::new(0)),
            max_per_channel: AtomicUsize::new(max_per_channel),
            max_age: AtomicU64::new(max_age),
            next_subscriber: AtomicU64::new(1),
            started: SystemTime::now(),
            reserver: std::sync::OnceLock::new(),
            journal: std::sync::OnceLock::new(),
            rules: arc_swap::ArcSwap::from_pointee(ChannelRules::default()),
            paused: Default::default(),
        }
    }

    /// Pause or resume publishing; returns whether it was paused. Every
    /// publishing front end checks [`Hub::paused`] before [`Hub::publish`].
    pub fn set_paused(&self, paused: bool) -> bool {
        self.paused.swap(paused, Ordering::AcqRel)
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

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

    /// The rules in force.
    pub fn rules(&self) -> Arc<ChannelRules> {
        self.rules.load_full()
    }

    /// The rule that applies to a channel, if any.
    pub fn rule_for(&self, channel: &[u8]) -> Option<ChannelRule> {
        self.rules.load().for_channel(channel).cloned()
    }

    /// The cache limits of a channel: (most messages kept, 0: no limit;
    /// longest age in seconds), its rule's if it has one.
    pub fn limits_for(&self, channel: &[u8]) -> (usize, u64) {
        let rules = self.rules.load();
        let rule = rules.for_channel(channel);
        (
            rule.and_then(|r| r.max_messages)
                .unwrap_or_else(|| self.max_per_channel.load(Ordering::Relaxed)),
            rule.and_then(|r| r.max_age)
                .unwrap_or_else(|| self.max_age.load(Ordering::Relaxed)),
        )
    }

    /// Seconds since the hub was created.
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().map_or(0, |d| d.as_secs())
    }

    /// A new subscriber, ready to be passed to [`Hub::subscribe`].
    pub fn new_subscriber(
        &self,
        info: SubscriberInfo,
        framing: Arc<dyn Framing>,
        max_messages: u64,
    ) -> Arc<Subscriber> {
        Arc::new(Subscriber::new(
            self.next_subscriber.fetch_add(1, Ordering::Relaxed),
            info,
            framing,
            max_messages,
            self.stats.clone(),
            self.published.clone(),
        ))
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
                let persist = rules
                    .for_channel(&name)
                    .and_then(|r| r.persist)
                    .unwrap_or(true);
                ChannelCache {
                    name,
                    messages,
                    persist,
                }
            })
            .collect();
        (caches, state.next_id)
    }

    /// Publish `text` on `channel`: assign the next id, cache it and hand it
    /// to every subscriber of the channel. Returns the id.
    pub fn publish(&self, channel: &[u8], text: Bytes) -> u64 {
        let timestamp = unix_now();
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

    /// Start a subscription: write the header (built by `header` from the
    /// channels' state), then the backlog of each channel in request order,
    /// then — if persistent and not yet finished — attach it for live
    /// messages. A persistent subscription with a host id replaces (kicks)
    /// any older one with the same host id.
    pub fn subscribe(
        &self,
        request: Subscription<'_>,
        header: impl FnOnce(&[ChannelSnapshot], &mut Vec<u8>),
    ) {
        let Subscription {
            subscriber,
            channels,
            persist,
            max_time,
            merge_backlog,
        } = request;
        // A channel named twice: the last start wins, the first position stays.
        let mut wanted: Vec<(Bytes, Start)> = Vec::with_capacity(channels.len());
        for (name, start) in channels {
            match wanted.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = *start,
                None => wanted.push((name.clone(), *start)),
            }
        }

        let mut state = self.lock();
        if persist {
            if let Some(host) = &subscriber.info.host_id {
                if let Some(old) = state.hosts.get(host).copied() {
                    if let Some(member) = state.members.get(&old) {
                        member.subscriber.close(Farewell::Replaced);
                    }
                    state.detach(old);
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
        let mut served = 0u64;
        let mut done = false;
        let mut buf = Vec::new();
        for message in backlog {
            buf.clear();
            subscriber.framing.render(message, &mut buf);
            match subscriber.push_backlog(&buf) {
                Delivery::Queued => served += 1,
                Delivery::Refused => done = true,
            }
        }
        // The backlog of every requested channel goes out, then the limit
        // closes the subscription.
        if subscriber.limit_reached() {
            done = true;
            subscriber.close(Farewell::Quiet);
        }

        if persist && !done {
            let id = subscriber.id;
            for (name, _) in &wanted {
                state
                    .channels
                    .entry(name.clone())
                    .or_default()
                    .add_subscriber(&subscriber);
            }
            if let Some(host) = &subscriber.info.host_id {
                state.hosts.insert(host.clone(), id);
            }
            state.members.insert(
                id,
                Member {
                    subscriber: subscriber.clone(),
                    channels: wanted.iter().map(|(n, _)| n.clone()).collect(),
                    deadline: max_time.map(|t| Instant::now() + t),
                },
            );
        } else if !done {
            subscriber.close(Farewell::Quiet);
        }
        drop(state);
        if served > 0 {
            self.stats.add(Stat::MessagesServed, served);
        }
    }

    /// Add one channel to a live (persistent) subscription: `announce`
    /// writes what precedes the channel's backlog (it sees the channel's
    /// state), then the backlog, then live messages follow. Returns false if
    /// the subscription is not live or already has the channel.
    pub fn attach_channel(
        &self,
        subscriber: &Arc<Subscriber>,
        name: &Bytes,
        start: Start,
        announce: impl FnOnce(&ChannelSnapshot, &mut Vec<u8>),
    ) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(member) = state.members.get_mut(&subscriber.id) else {
            return false;
        };
        if member.channels.contains(name) {
            return false;
        }
        member.channels.push(name.clone());
        let channel = state.channels.entry(name.clone()).or_default();
        let snapshot = channel.snapshot(name);
        let mut head = Vec::new();
        announce(&snapshot, &mut head);
        subscriber.push_raw(&head);
        let mut served = 0;
        if let Some(first) = channel.start_index(start) {
            let mut buf = Vec::new();
            for message in channel.messages.range(first..) {
                buf.clear();
                subscriber.framing.render(message, &mut buf);
                if subscriber.push_backlog(&buf) == Delivery::Queued {
                    served += 1;
                }
            }
        }
        channel.add_subscriber(subscriber);
        drop(guard);
        if served > 0 {
            self.stats.add(Stat::MessagesServed, served);
        }
        true
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
    pub fn kick(&self, host_id: &[u8]) -> bool {
        let mut state = self.lock();
        let Some(id) = state.hosts.get(host_id).copied() else {
            return false;
        };
        if let Some(member) = state.members.get(&id) {
            member.subscriber.close(Farewell::Disconnected);
        }
        state.detach(id).is_some()
    }

    /// Subscribers listening to a channel (0 for an unknown channel, which
    /// is not created).
    pub fn count_subscribers(&self, channel: &[u8]) -> usize {
        self.lock()
            .channels
            .get(channel)
            .map_or(0, |c| c.subscribers.len())
    }

    /// Every channel with its message and subscriber counts, in byte order
    /// of the names.
    pub fn list_channels(&self) -> Vec<ChannelSummary> {
        let mut list: Vec<ChannelSummary> = self
            .lock()
            .channels
            .iter()
            .map(|(name, c)| ChannelSummary {
                name: name.clone(),
                messages: c.messages.len(),
                subscribers: c.subscribers.len(),
                last_id: c.messages.back().map(|m| m.id),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    pub fn channel_count(&self) -> usize {
        self.lock().channels.len()
    }

    /// Persistent subscribers currently attached.
    pub fn subscriber_count(&self) -> usize {
        self.lock().members.len()
    }

    /// The cached messages of a channel, oldest first.
    pub fn messages(&self, channel: &[u8]) -> Vec<Arc<Message>> {
        self.lock()
            .channels
            .get(channel)
            .map(|c| c.messages.iter().cloned().collect())
            .unwrap_or_default()
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

    /// The live subscribers of a channel.
    pub fn channel_subscribers(&self, name: &[u8]) -> Vec<(u64, SubscriberInfo)> {
        self.lock()
            .channels
            .get(name)
            .map(|c| {
                c.subscribers
                    .values()
                    .map(|s| (s.id, s.info.clone()))
                    .collect()
            })
            .unwrap_or_default()
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

    /// Live subscriptions counted by transport.
    pub fn subscribers_by_transport(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for member in self.lock().members.values() {
            *counts.entry(member.subscriber.info.transport).or_default() += 1;
        }
        counts
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
            let age = rules
                .for_channel(name)
                .and_then(|r| r.max_age)
                .unwrap_or(max_age);
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
    /// meteord).
    pub fn expire_deadlines(&self, now: Instant) {
        let mut state = self.lock();
        let due: Vec<u64> = state
            .members
            .iter()
            .filter(|(_, m)| m.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(member) = state.members.get(&id) {
                member.subscriber.close(Farewell::Quiet);
            }
            state.detach(id);
        }
    }

    /// Close every subscription with its shutdown message (server shutdown).
    pub fn close_all(&self) {
        let mut state = self.lock();
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

    /// The next message id that will be assigned.
    pub fn next_message_id(&self) -> u64 {
        self.lock().next_id
    }

    /// Every message id below this one is published.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }
}
