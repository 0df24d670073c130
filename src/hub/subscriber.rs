//! A subscriber as the hub sees it, and the state its connection task
//! drains: protocol bytes queued by the hub (header, pings, shutdown
//! message), its backlog, and the channel feeds it pulls live messages
//! from.
//!
//! The connection task calls [`Subscriber::poll_next`], which hands it
//! everything ready in one buffer — queued bytes first, then new messages
//! from the feeds in id order — so a burst costs one write. A backlog is
//! kept as the shared cached messages themselves and rendered a batch at a
//! time as the socket takes it: a client asking for a large backlog and
//! never reading holds one batch, not a copy of the channel's cache.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use smallvec::SmallVec;

use super::feed::{Entry, Feed, Read};
use super::message::{Farewell, Framing, Message};
use super::stats::{Stat, Stats};
use super::Transport;

/// Queued protocol bytes allowed before a subscriber is considered stuck
/// and dropped (only pings accumulate while a socket takes nothing).
pub const DEFAULT_OUTBOX_CAP: usize = 1 << 20;

/// One write takes at most about this much from a feed, so that a burst of
/// large messages is not copied for every subscriber at once.
const BATCH_BYTES: usize = 256 * 1024;
/// With several channels, at most this many messages per channel a write.
const BATCH_ENTRIES: usize = 1024;

/// Facts about a subscriber for logs, stats and the admin UI.
#[derive(Debug, Clone)]
pub struct SubscriberInfo {
    pub host_id: Option<Bytes>,
    pub mode: String,
    pub transport: Transport,
    /// Who it proved to be: a digest of its user or token (`None`:
    /// anonymous). A host id's subscription is replaced or ended only by
    /// the same credential.
    pub credential: Option<u64>,
    /// The user a token or the authorize callback named.
    pub user: Option<String>,
    pub peer: Option<SocketAddr>,
    pub since: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Write what is pending, then close the connection.
    Closing,
    /// Close now, dropping whatever is pending.
    Aborted,
}

/// A feed this subscriber reads, and where it is in it.
struct Attachment {
    feed: Arc<Feed>,
    slot: usize,
    cursor: u64,
}

/// What waits behind a backlog, in order.
enum Queued {
    /// A cached message, rendered when its turn comes.
    Message(Arc<Message>),
    /// Protocol bytes (a ping, a reply, the farewell) queued while a
    /// backlog was still going out, so they keep their place.
    Raw(Box<[u8]>),
}

struct Outbox {
    pending: Vec<u8>,
    /// The backlog not yet rendered (empty once it has all gone out; live
    /// messages are pulled only then).
    queued: VecDeque<Queued>,
    waker: Option<Waker>,
    state: State,
    delivered: u64,
    feeds: SmallVec<[Attachment; 1]>,
    /// Bytes handed to the connection task in the last write, and since
    /// when: counted in the hub's total until the task asks for more.
    in_flight: usize,
    write_since: Option<Instant>,
}

/// What the connection task should do next.
#[derive(Debug)]
pub enum Next {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Everything is written; close gracefully.
    Finish,
    /// Close at once.
    Abort,
}

/// Outcome of queueing backlog for a subscriber.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// Not queued: the subscriber is closing or was dropped.
    Refused,
}

pub struct Subscriber {
    pub id: u64,
    pub info: SubscriberInfo,
    pub(crate) framing: Arc<dyn Framing>,
    /// 0 means no limit.
    max_messages: u64,
    cap: usize,
    stats: Arc<Stats>,
    /// The hub's "every id below this is published" mark, for merging
    /// several channels in id order.
    published: Arc<AtomicU64>,
    /// The hub's total of bytes handed to connection tasks and not yet
    /// written.
    queued_bytes: Arc<AtomicUsize>,
    outbox: Mutex<Outbox>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.id)
            .field("info", &self.info)
            .finish()
    }
}

impl Subscriber {
    pub(crate) fn new(
        id: u64,
        info: SubscriberInfo,
        framing: Arc<dyn Framing>,
        max_messages: u64,
        stats: Arc<Stats>,
        published: Arc<AtomicU64>,
        queued_bytes: Arc<AtomicUsize>,
    ) -> Subscriber {
        Subscriber {
            id,
            info,
            framing,
            max_messages,
            cap: DEFAULT_OUTBOX_CAP,
            stats,
            published,
            queued_bytes,
            outbox: Mutex::new(Outbox {
                pending: Vec::new(),
                queued: VecDeque::new(),
                waker: None,
                state: State::Open,
                delivered: 0,
                feeds: SmallVec::new(),
                in_flight: 0,
                write_since: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Outbox> {
        // A panic elsewhere must not take every subscriber down with it.
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register(outbox: &mut Outbox, waker: &Waker) {
        if !outbox.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            outbox.waker = Some(waker.clone());
        }
    }

    fn wake(outbox: &mut Outbox) {
        if let Some(waker) = outbox.waker.take() {
            waker.wake();
        }
    }

    /// Queue protocol bytes that are not messages (headers, pings).
    pub fn push_raw(&self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let mut outbox = self.lock();
        if outbox.state != State::Open {
            return false;
        }
        if outbox.pending.len() + bytes.len() > self.cap {
            Self::abort_locked(&mut outbox);
            return false;
        }
        if outbox.queued.is_empty() {
            outbox.pending.extend_from_slice(bytes);
        } else {
            outbox.queued.push_back(Queued::Raw(bytes.into()));
        }
        Self::wake(&mut outbox);
        true
    }

    /// Queue backlog messages (shared, rendered when the socket can take
    /// them). It counts towards MaxMessages but never closes the subscription
    /// by itself: meteord sent a backlog as one batch, so the limit applies
    /// after it (see [`Self::limit_reached`]).
    pub fn push_backlog<'m>(
        &self,
        messages: impl IntoIterator<Item = &'m Arc<Message>>,
    ) -> Delivery {
        let mut outbox = self.lock();
        if outbox.state != State::Open {
            return Delivery::Refused;
        }
        let before = outbox.queued.len();
        outbox
            .queued
            .extend(messages.into_iter().map(|m| Queued::Message(m.clone())));
        outbox.delivered += (outbox.queued.len() - before) as u64;
        Self::wake(&mut outbox);
        Delivery::Queued
    }

    /// Backlog messages (and bytes queued behind them) not yet rendered.
    pub fn backlog_len(&self) -> usize {
        self.lock().queued.len()
    }

    /// Has this subscriber received MaxMessages or more?
    pub fn limit_reached(&self) -> bool {
        self.max_messages > 0 && self.lock().delivered >= self.max_messages
    }

    /// Start reading live messages from `feed` (from its next entry).
    pub(crate) fn attach(&self, feed: &Arc<Feed>) {
        let (slot, cursor) = feed.attach();
        self.lock().feeds.push(Attachment {
            feed: feed.clone(),
            slot,
            cursor,
        });
    }

    /// Where this subscriber is in `feed`, if it reads it.
    pub(crate) fn cursor(&self, feed: &Arc<Feed>) -> Option<u64> {
        self.lock()
            .feeds
            .iter()
            .find(|a| Arc::ptr_eq(&a.feed, feed))
            .map(|a| a.cursor)
    }

    /// Finish the subscription: the messages already published to it are
    /// still delivered, then the farewell its framing sends for `reason`,
    /// then the connection closes.
    pub fn close(&self, reason: Farewell) {
        let mut outbox = self.lock();
        if outbox.state != State::Open {
            return;
        }
        // Behind a backlog still going out, the rest waits its turn.
        let behind = !outbox.queued.is_empty();
        let start = outbox.pending.len();
        self.drain_feeds(&mut outbox);
        Self::release_feeds(&mut outbox);
        if outbox.state == State::Open {
            outbox
                .pending
                .extend_from_slice(self.framing.farewell(reason));
            outbox.state = State::Closing;
        }
        if behind {
            let rest: Box<[u8]> = outbox.pending.split_off(start).into();
            outbox.queued.push_back(Queued::Raw(rest));
        }
        Self::wake(&mut outbox);
    }

    /// Drop the connection without writing anything more.
    pub fn abort(&self) {
        Self::abort_locked(&mut self.lock());
    }

    fn abort_locked(outbox: &mut Outbox) {
        outbox.state = State::Aborted;
        outbox.pending = Vec::new();
        outbox.queued = VecDeque::new();
        Self::release_feeds(outbox);
        Self::wake(outbox);
    }

    fn release_feeds(outbox: &mut Outbox) {
        for attachment in outbox.feeds.drain(..) {
            attachment.feed.detach(attachment.slot);
        }
    }

    /// Stop reading one feed (the subscription dropped that channel).
    pub(crate) fn detach_feed(&self, feed: &Arc<Feed>) {
        let mut outbox = self.lock();
        if let Some(i) = outbox.feeds.iter().position(|a| Arc::ptr_eq(&a.feed, feed)) {
            let attachment = outbox.feeds.remove(i);
            attachment.feed.detach(attachment.slot);
        }
    }

    /// Stop reading feeds (the hub detached this subscriber).
    pub(crate) fn detach_feeds(&self) {
        Self::release_feeds(&mut self.lock());
    }

    pub fn is_open(&self) -> bool {
        self.lock().state == State::Open
    }

    /// Messages handed to this subscriber so far.
    pub fn delivered(&self) -> u64 {
        self.lock().delivered
    }

    fn remaining(&self, outbox: &Outbox) -> u64 {
        if self.max_messages == 0 {
            u64::MAX
        } else {
            self.max_messages.saturating_sub(outbox.delivered)
        }
    }

    /// Append what the feeds hold for this subscriber, without waiting
    /// (closing: everything published before the close goes out).
    fn drain_feeds(&self, outbox: &mut Outbox) {
        let mut entries: Vec<Arc<Entry>> = Vec::new();
        for attachment in &mut outbox.feeds {
            let rest = attachment.feed.rest(attachment.cursor);
            attachment.cursor += rest.len() as u64;
            entries.extend(rest);
        }
        entries.sort_by_key(|e| e.message.id);
        self.deliver(outbox, &entries);
    }

    /// Write entries (already in id order) up to MaxMessages.
    fn deliver(&self, outbox: &mut Outbox, entries: &[Arc<Entry>]) {
        let take = entries.len().min(self.remaining(outbox) as usize);
        for entry in &entries[..take] {
            entry.write_to(&self.framing, &mut outbox.pending);
        }
        self.count(outbox, take);
    }

    fn count(&self, outbox: &mut Outbox, n: usize) {
        if n == 0 {
            return;
        }
        outbox.delivered += n as u64;
        self.stats.add(Stat::MessagesServed, n as u64);
        if self.max_messages > 0 && outbox.delivered >= self.max_messages {
            outbox.state = State::Closing;
        }
    }

    /// Pull new live messages into `pending`.
    fn pull(&self, outbox: &mut Outbox, waker: &Waker) {
        let remaining = self.remaining(outbox);
        if outbox.feeds.len() == 1 {
            // One channel: copy straight from the feed, in its order.
            let Outbox { feeds, pending, .. } = &mut *outbox;
            let attachment = &mut feeds[0];
            let mut taken = 0u64;
            let read = attachment
                .feed
                .take(attachment.cursor, attachment.slot, waker, |entry| {
                    if taken >= remaining || (taken > 0 && pending.len() >= BATCH_BYTES) {
                        return false;
                    }
                    if pending.capacity() == 0 {
                        // Room for a few like it: an idle subscriber's
                        // buffer starts empty, and growing it one message
                        // at a time costs a reallocation each.
                        pending.reserve((4 * entry.rendered_len()).min(BATCH_BYTES));
                    }
                    entry.write_to(&self.framing, pending);
                    taken += 1;
                    true
                });
            match read {
                Read::Taken(n) => {
                    attachment.cursor += n as u64;
                    self.count(outbox, n);
                }
                Read::Waiting => {}
                Read::Lagged => Self::abort_locked(outbox),
            }
            return;
        }
        // Several channels: take only messages below the published mark,
        // so that one published a moment ago in another channel cannot be
        // overtaken, and below the first id a full batch of any channel
        // leaves out; then merge by id.
        let mut bound = self.published.load(Ordering::Acquire);
        for attachment in &outbox.feeds {
            let mut seen = 0;
            attachment
                .feed
                .read(attachment.cursor, attachment.slot, waker, |entry| {
                    seen += 1;
                    if seen > BATCH_ENTRIES {
                        bound = bound.min(entry.message.id);
                        return false;
                    }
                    true
                });
        }
        let published = bound;
        let mut entries: Vec<Arc<Entry>> = Vec::new();
        let mut held_back = false;
        let mut lagged = false;
        for attachment in &mut outbox.feeds {
            let read = attachment
                .feed
                .read(attachment.cursor, attachment.slot, waker, |entry| {
                    if entry.message.id >= published {
                        held_back = true;
                        return false;
                    }
                    entries.push(entry.clone());
                    true
                });
            match read {
                Read::Taken(n) => attachment.cursor += n as u64,
                Read::Waiting => {}
                Read::Lagged => lagged = true,
            }
        }
        if lagged {
            Self::abort_locked(outbox);
            return;
        }
        entries.sort_by_key(|e| e.message.id);
        self.deliver(outbox, &entries);
        if held_back {
            // That publish completes within microseconds: look again soon.
            waker.wake_by_ref();
        }
    }

    /// Render the next part of the backlog into `pending`, up to about a
    /// batch.
    fn render_backlog(&self, outbox: &mut Outbox) {
        while outbox.pending.len() < BATCH_BYTES {
            match outbox.queued.pop_front() {
                Some(Queued::Message(message)) => {
                    self.framing.render(&message, &mut outbox.pending)
                }
                Some(Queued::Raw(bytes)) => outbox.pending.extend_from_slice(&bytes),
                None => break,
            }
        }
    }

    /// The last write is done (the task is asking for more): it no longer
    /// counts in the hub's total.
    fn written(&self, outbox: &mut Outbox) {
        if outbox.in_flight > 0 {
            self.queued_bytes
                .fetch_sub(outbox.in_flight, Ordering::Relaxed);
            outbox.in_flight = 0;
        }
        outbox.write_since = None;
    }

    /// For the connection task: the next thing to do, or register to be
    /// woken. Asking again means the last write is done.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Next> {
        let mut outbox = self.lock();
        self.written(&mut outbox);
        if outbox.pending.is_empty() && !outbox.queued.is_empty() {
            self.render_backlog(&mut outbox);
        }
        if outbox.state == State::Open && outbox.queued.is_empty() && !outbox.feeds.is_empty() {
            self.pull(&mut outbox, cx.waker());
        }
        match outbox.state {
            State::Aborted => return Poll::Ready(Next::Abort),
            _ if !outbox.pending.is_empty() => {
                let bytes = std::mem::take(&mut outbox.pending);
                outbox.in_flight = bytes.len();
                outbox.write_since = Some(Instant::now());
                self.queued_bytes.fetch_add(bytes.len(), Ordering::Relaxed);
                return Poll::Ready(Next::Write(bytes));
            }
            State::Closing if outbox.queued.is_empty() => return Poll::Ready(Next::Finish),
            _ => {}
        }
        // Idle (nothing is pending here): let go of the buffer a busy
        // subscriber kept.
        outbox.pending = Vec::new();
        Self::register(&mut outbox, cx.waker());
        Poll::Pending
    }

    /// Hand back the buffer of a finished write, so the next batch of a
    /// busy subscriber is rendered into memory already allocated (and grown
    /// to size) instead of a new one; [`Self::poll_next`] frees it once the
    /// subscriber is idle.
    pub fn recycle(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() > 2 * BATCH_BYTES {
            return;
        }
        let mut outbox = self.lock();
        if outbox.pending.is_empty() && outbox.state == State::Open {
            buffer.clear();
            outbox.pending = buffer;
        }
    }

    /// Room held for the next write (none while idle).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.lock().pending.capacity()
    }

    /// Since when the connection task has been writing its last batch, if
    /// it is writing one, and how large it is.
    pub(crate) fn stalled_write(&self) -> Option<(Instant, usize)> {
        let outbox = self.lock();
        outbox.write_since.map(|since| (since, outbox.in_flight))
    }

    /// For the connection task while a write is in progress: ready when the
    /// subscriber was aborted (so a stuck write can be given up).
    pub fn poll_aborted(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut outbox = self.lock();
        if outbox.state == State::Aborted {
            return Poll::Ready(());
        }
        Self::register(&mut outbox, cx.waker());
        Poll::Pending
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let outbox = self.outbox.get_mut().unwrap_or_else(|e| e.into_inner());
        if outbox.in_flight > 0 {
            self.queued_bytes
                .fetch_sub(outbox.in_flight, Ordering::Relaxed);
        }
    }
}
