//! The channel hub: channels, their message caches, global message ids and
//! the subscribers listening to them. It knows nothing of sockets,
//! protocols or storage: front ends hand it text to publish and
//! [`Subscriber`]s to feed, and services read its changes.
//!
//! One lock guards the hub state. That makes the ordering guarantees
//! simple: ids are handed out, cached and appended to the channel's live
//! feed in one step, so a new subscriber's backlog and its live messages
//! never overlap or leave a gap, and every subscriber — even one listening
//! to several channels — sees messages in id order. The work under the lock
//! does not grow with the number of subscribers: a publish renders the
//! message once per framing in use and appends it to the feed
//! (`feed.rs`); each subscriber's own task copies it out from there.
//!
//! | file | what |
//! |---|---|
//! | `publish.rs` | publish, apply (cluster), restore, persistence hooks |
//! | `subscribe.rs` | subscribe, attach/detach a channel, kick |
//! | `upkeep.rs` | limits and rules, clearing, aging, pings, deadlines |
//! | `presence.rs` | notices of subscribers coming and going, for presence |
//! | `state.rs`, `hosts.rs` | what the lock guards; the host-id index |
//! | `feed.rs`, `subscriber.rs` | how a message reaches a subscriber's task |
//! | `rules.rs`, `transport.rs`, `message.rs`, `stats.rs` | the values involved |

mod feed;
mod hosts;
mod message;
pub mod presence;
mod publish;
mod rules;
mod state;
mod stats;
mod subscribe;
mod subscriber;
#[cfg(test)]
mod tests;
mod transport;
mod upkeep;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

pub use feed::FEED_CAPACITY;
pub use message::{unix_now, Farewell, Framing, Message};
pub use publish::{ChannelCache, IdReserve, Journal, ID_BLOCK};
pub use rules::{ChannelRule, ChannelRules};
use state::State;
pub use stats::{Stat, Stats};
pub use subscriber::{Delivery, Next, Subscriber, SubscriberInfo};
pub use transport::Transport;

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
    /// End it (saying so) when the token that granted it expires.
    pub expires: Option<Instant>,
    /// Send the backlogs of all channels merged in id order (modern
    /// transports, whose clients resume from the last id they saw), rather
    /// than channel by channel in request order (legacy `/push`).
    pub merge_backlog: bool,
}

/// Why a subscription (or a channel added to one) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("a subscription names at most {0} channels")]
    TooManyChannels(usize),
    /// The hub holds as many channels as subscribers may make it hold.
    #[error("the server holds too many channels to add one for a subscriber")]
    ChannelLimit,
    #[error("not subscribed")]
    NotLive,
    #[error("already subscribed to that channel")]
    AlreadySubscribed,
}

/// How many channels subscriptions may name and make.
#[derive(Debug, Clone, Copy)]
pub struct ChannelLimits {
    /// Channels one subscription may name.
    pub per_subscription: usize,
    /// Channels in the hub past which a subscription may not add a new one
    /// (0: no limit). Publishing is never refused for it.
    pub total: usize,
}

impl Default for ChannelLimits {
    fn default() -> ChannelLimits {
        ChannelLimits {
            per_subscription: 256,
            total: 0,
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
    channel_limits: Mutex<ChannelLimits>,
    /// Bytes handed to subscribers' connection tasks and not yet written.
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
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
            channel_limits: Mutex::new(ChannelLimits::default()),
            queued_bytes: Default::default(),
        }
    }

    /// Bytes handed to subscribers' connection tasks and not yet written:
    /// what slow sockets hold up.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Bound the channels subscriptions may name and make.
    pub fn set_channel_limits(&self, limits: ChannelLimits) {
        *self
            .channel_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = limits;
    }

    pub fn channel_limits(&self) -> ChannelLimits {
        *self
            .channel_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
        (
            rules.max_messages(channel, self.max_per_channel.load(Ordering::Relaxed)),
            rules.max_age(channel, self.max_age.load(Ordering::Relaxed)),
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
            self.queued_bytes.clone(),
        ))
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

    /// The live subscribers of a channel themselves (for presence).
    pub fn channel_members(&self, name: &[u8]) -> Vec<Arc<Subscriber>> {
        self.lock()
            .channels
            .get(name)
            .map(|c| c.subscribers.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Live subscriptions counted by transport.
    pub fn subscribers_by_transport(&self) -> std::collections::BTreeMap<Transport, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for member in self.lock().members.values() {
            *counts.entry(member.subscriber.info.transport).or_default() += 1;
        }
        counts
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
