//! A channel's live feed: the recently published messages, rendered once
//! per framing, that its subscribers' tasks pull from.
//!
//! Publishing appends one entry and wakes the subscribers that were waiting;
//! each subscriber's task then copies the bytes it needs from the shared
//! entries into its own write buffer. That keeps the per-subscriber work on
//! the subscriber's side (spread over every core) and the publisher's work
//! independent of how many subscribers there are.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use slab::Slab;
use smallvec::SmallVec;

use super::message::{framing_key, Framing, Message};

/// Entries kept for subscribers that fall behind; one that falls further
/// behind than this is dropped as too slow.
pub const FEED_CAPACITY: usize = 4096;

/// One published message with its rendered forms.
pub struct Entry {
    pub seq: u64,
    pub message: Arc<Message>,
    /// Every form, back to back, in one allocation of the exact size.
    rendered: Box<[u8]>,
    /// (framing key, range in `rendered`); inline for the usual one form.
    forms: SmallVec<[(usize, Range<usize>); 1]>,
}

/// The wakers of the subscribers a publish found waiting; inline for the
/// usual few, so a publish to a quiet channel allocates nothing for them.
pub type Wakers = SmallVec<[Waker; 2]>;

thread_local! {
    /// Where a publishing thread renders before the exact-size copy, so
    /// rendering grows no buffer per message.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Entry {
    /// Render `message` once for each framing.
    pub fn new<'a>(
        seq: u64,
        message: Arc<Message>,
        framings: impl Iterator<Item = &'a Arc<dyn Framing>>,
    ) -> Entry {
        let mut forms = SmallVec::new();
        let rendered = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            for framing in framings {
                let start = scratch.len();
                framing.render(&message, &mut scratch);
                forms.push((framing_key(framing), start..scratch.len()));
            }
            let rendered = Box::from(scratch.as_slice());
            // A huge message must not stay behind in every thread's scratch.
            if scratch.capacity() > SCRATCH_KEEP {
                *scratch = Vec::new();
            }
            rendered
        });
        Entry {
            seq,
            message,
            rendered,
            forms,
        }
    }

    /// Append this entry as `framing` renders it.
    pub fn write_to(&self, framing: &Arc<dyn Framing>, out: &mut Vec<u8>) {
        let key = framing_key(framing);
        match self.forms.iter().find(|(k, _)| *k == key) {
            Some((_, range)) => out.extend_from_slice(&self.rendered[range.clone()]),
            // Not rendered ahead (the framing joined after the publish):
            // render it here.
            None => framing.render(&self.message, out),
        }
    }

    /// Bytes of its rendered forms.
    pub fn rendered_len(&self) -> usize {
        self.rendered.len()
    }
}

/// The largest scratch buffer a thread keeps between publishes.
const SCRATCH_KEEP: usize = 64 * 1024;

struct Inner {
    entries: VecDeque<Arc<Entry>>,
    /// Sequence number the next entry gets.
    next_seq: u64,
    /// One slot per attached subscriber: its waker while it waits.
    waiters: Slab<Option<Waker>>,
}

impl Inner {
    /// Sequence number of the oldest entry kept.
    fn first_seq(&self) -> u64 {
        self.next_seq - self.entries.len() as u64
    }
}

/// The live feed of one channel.
pub struct Feed {
    inner: Mutex<Inner>,
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// This many entries were taken (possibly 0, if the visitor stopped).
    Taken(usize),
    /// Nothing new; the waker is registered.
    Waiting,
    /// The cursor points before the oldest entry kept.
    Lagged,
}

impl Feed {
    pub fn new() -> Feed {
        Feed {
            inner: Mutex::new(Inner {
                entries: VecDeque::new(),
                next_seq: 0,
                waiters: Slab::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attach a subscriber: its waiter slot and its cursor (the next entry).
    pub fn attach(&self) -> (usize, u64) {
        let mut inner = self.lock();
        (inner.waiters.insert(None), inner.next_seq)
    }

    pub fn detach(&self, slot: usize) {
        self.lock().waiters.try_remove(slot);
    }

    /// Append an entry; returns the wakers of the subscribers that waited,
    /// to be woken once the caller has released its locks.
    pub fn push(&self, make: impl FnOnce(u64) -> Entry) -> Wakers {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let entry = Arc::new(make(seq));
        inner.entries.push_back(entry);
        if inner.entries.len() > FEED_CAPACITY {
            inner.entries.pop_front();
        }
        let mut wakers = Wakers::new();
        for (_, waiter) in inner.waiters.iter_mut() {
            if let Some(waker) = waiter.take() {
                wakers.push(waker);
            }
        }
        wakers
    }

    /// Visit the entries from `cursor` on, in order, under the feed's lock
    /// (so the visitor should only copy bytes); it returns false to stop
    /// before an entry. With nothing new, the waker is registered in `slot`.
    pub fn read(
        &self,
        cursor: u64,
        slot: usize,
        waker: &Waker,
        visit: impl FnMut(&Arc<Entry>) -> bool,
    ) -> Read {
        Self::read_locked(&mut self.lock(), cursor, slot, waker, visit)
    }

    fn read_locked(
        inner: &mut Inner,
        cursor: u64,
        slot: usize,
        waker: &Waker,
        mut visit: impl FnMut(&Arc<Entry>) -> bool,
    ) -> Read {
        let first = inner.first_seq();
        if cursor < first {
            return Read::Lagged;
        }
        let start = (cursor - first) as usize;
        if start >= inner.entries.len() {
            if let Some(waiter) = inner.waiters.get_mut(slot) {
                if !waiter.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *waiter = Some(waker.clone());
                }
            }
            return Read::Waiting;
        }
        let mut taken = 0;
        for entry in inner.entries.range(start..) {
            if !visit(entry) {
                break;
            }
            taken += 1;
        }
        Read::Taken(taken)
    }

    /// [`Self::read`] for a reader that moves its cursor past what it
    /// takes: when it is the only reader attached, the entries it has
    /// taken are dropped at once (a channel per user is the common case),
    /// instead of waiting for [`Self::trim_before`].
    pub fn take(
        &self,
        cursor: u64,
        slot: usize,
        waker: &Waker,
        visit: impl FnMut(&Arc<Entry>) -> bool,
    ) -> Read {
        let mut inner = self.lock();
        let read = Self::read_locked(&mut inner, cursor, slot, waker, visit);
        if let Read::Taken(n) = read {
            if inner.waiters.len() == 1 {
                let past = (cursor + n as u64 - inner.first_seq()) as usize;
                inner.entries.drain(..past);
            }
        }
        read
    }

    /// Entries from `cursor` on, without waiting (used when closing).
    pub fn rest(&self, cursor: u64) -> Vec<Arc<Entry>> {
        let inner = self.lock();
        let start = cursor.saturating_sub(inner.first_seq()) as usize;
        inner
            .entries
            .range(start.min(inner.entries.len())..)
            .cloned()
            .collect()
    }

    /// Sequence number of the oldest entry kept.
    pub fn first_seq(&self) -> u64 {
        self.lock().first_seq()
    }

    /// Forget entries before `seq` (every attached subscriber is past them).
    pub fn trim_before(&self, seq: u64) {
        let mut inner = self.lock();
        while inner.entries.front().is_some_and(|e| e.seq < seq) {
            inner.entries.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

impl Default for Feed {
    fn default() -> Feed {
        Feed::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::task::Wake;

    struct Plain;
    impl Framing for Plain {
        fn render(&self, m: &Message, out: &mut Vec<u8>) {
            out.extend_from_slice(&m.text);
        }
        fn ping(&self) -> &[u8] {
            b""
        }
        fn shutdown(&self) -> &[u8] {
            b""
        }
    }

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn message(id: u64, text: &str) -> Arc<Message> {
        Arc::new(Message {
            id,
            channel: Bytes::from_static(b"c"),
            text: Bytes::copy_from_slice(text.as_bytes()),
            timestamp: 0,
        })
    }

    #[test]
    fn readers_wait_get_woken_and_read_in_order() {
        let framing: Arc<dyn Framing> = Arc::new(Plain);
        let feed = Feed::new();
        let (slot, cursor) = feed.attach();
        let flag = Arc::new(Flag(Default::default()));
        let waker = Waker::from(flag.clone());
        assert_eq!(feed.read(cursor, slot, &waker, |_| true), Read::Waiting);
        let wakers = feed.push(|seq| Entry::new(seq, message(7, "a"), [&framing].into_iter()));
        assert_eq!(wakers.len(), 1);
        wakers.into_iter().for_each(Waker::wake);
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        feed.push(|seq| Entry::new(seq, message(9, "b"), [&framing].into_iter()));
        let mut out = Vec::new();
        let read = feed.read(cursor, slot, &waker, |e| {
            e.write_to(&framing, &mut out);
            true
        });
        assert_eq!(read, Read::Taken(2));
        assert_eq!(out, b"ab");
        // A visitor can stop early; the rest stays for the next read.
        assert_eq!(
            feed.read(cursor, slot, &waker, |e| e.message.id < 9),
            Read::Taken(1)
        );
    }

    #[test]
    fn trimming_and_lagging() {
        let framing: Arc<dyn Framing> = Arc::new(Plain);
        let feed = Feed::new();
        let (slot, cursor) = feed.attach();
        for i in 0..5 {
            feed.push(|seq| Entry::new(seq, message(i, "x"), [&framing].into_iter()));
        }
        feed.trim_before(3);
        assert_eq!(feed.len(), 2);
        let waker = Waker::from(Arc::new(Flag(Default::default())));
        assert_eq!(feed.read(cursor, slot, &waker, |_| true), Read::Lagged);
        assert_eq!(feed.read(3, slot, &waker, |_| true), Read::Taken(2));
        assert_eq!(feed.rest(4).len(), 1);
        feed.detach(slot);
        assert!(feed
            .push(|seq| Entry::new(seq, message(5, "x"), [&framing].into_iter()))
            .is_empty());
    }

    /// Wraps what it renders in brackets, so its form differs from Plain's.
    struct Bracketed;
    impl Framing for Bracketed {
        fn render(&self, m: &Message, out: &mut Vec<u8>) {
            out.push(b'[');
            out.extend_from_slice(&m.text);
            out.push(b']');
        }
        fn ping(&self) -> &[u8] {
            b""
        }
        fn shutdown(&self) -> &[u8] {
            b""
        }
    }

    #[test]
    fn an_entry_holds_each_form_once_in_exactly_its_room() {
        let plain: Arc<dyn Framing> = Arc::new(Plain);
        let bracketed: Arc<dyn Framing> = Arc::new(Bracketed);
        let late: Arc<dyn Framing> = Arc::new(Bracketed);
        let entry = Entry::new(0, message(1, "hello"), [&plain, &bracketed].into_iter());
        assert_eq!(entry.rendered_len(), 5 + 7);
        let mut out = Vec::new();
        entry.write_to(&bracketed, &mut out);
        entry.write_to(&plain, &mut out);
        // A framing that joined after the publish is rendered on the spot.
        entry.write_to(&late, &mut out);
        assert_eq!(out, b"[hello]hello[hello]");
        // A message larger than the scratch buffer a thread keeps renders
        // whole, and the next small one is not mixed up with it.
        let big = "y".repeat(SCRATCH_KEEP + 1);
        let entry = Entry::new(1, message(2, &big), [&plain].into_iter());
        assert_eq!(entry.rendered_len(), big.len());
        let entry = Entry::new(2, message(3, "z"), [&bracketed].into_iter());
        let mut out = Vec::new();
        entry.write_to(&bracketed, &mut out);
        assert_eq!(out, b"[z]");
    }

    #[test]
    fn a_sole_reader_takes_entries_out_and_shared_ones_wait_for_trimming() {
        let framing: Arc<dyn Framing> = Arc::new(Plain);
        let push = |feed: &Feed, id: u64| {
            feed.push(|seq| Entry::new(seq, message(id, "x"), [&framing].into_iter()));
        };
        let waker = Waker::from(Arc::new(Flag(Default::default())));
        let feed = Feed::new();
        let (slot, mut cursor) = feed.attach();
        for id in 0..3 {
            push(&feed, id);
        }
        assert_eq!(feed.take(cursor, slot, &waker, |_| true), Read::Taken(3));
        cursor += 3;
        assert_eq!(feed.len(), 0);
        // A visitor that stops early leaves the rest for the next read.
        push(&feed, 3);
        push(&feed, 4);
        assert_eq!(
            feed.take(cursor, slot, &waker, |e| e.message.id == 3),
            Read::Taken(1)
        );
        cursor += 1;
        assert_eq!(feed.len(), 1);
        assert_eq!(feed.take(cursor, slot, &waker, |_| true), Read::Taken(1));
        cursor += 1;
        assert_eq!(feed.take(cursor, slot, &waker, |_| true), Read::Waiting);
        // With a second reader attached, what one takes stays for the
        // other until the feed is trimmed below both.
        let (other_slot, other) = feed.attach();
        push(&feed, 5);
        assert_eq!(feed.take(cursor, slot, &waker, |_| true), Read::Taken(1));
        assert_eq!(feed.len(), 1);
        assert_eq!(
            feed.take(other, other_slot, &waker, |_| true),
            Read::Taken(1)
        );
        assert_eq!(feed.len(), 1);
        feed.trim_before(other + 1);
        assert_eq!(feed.len(), 0);
    }
}
