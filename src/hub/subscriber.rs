//! A subscriber as the hub sees it: an outbox of bytes waiting for its
//! socket, filled by publishers and drained by the connection's task.
//!
//! The hub appends already-rendered bytes under its lock; the connection
//! task takes everything pending in one swap and writes it with one call, so
//! a burst of messages costs one syscall. An outbox that grows past its cap
//! (a client that stopped reading) aborts the subscriber instead of growing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use bytes::Bytes;

use super::message::Framing;

/// Pending bytes allowed before a subscriber is considered stuck and dropped.
pub const DEFAULT_OUTBOX_CAP: usize = 1 << 20;

/// Facts about a subscriber for logs, stats and the admin UI.
#[derive(Debug, Clone)]
pub struct SubscriberInfo {
    pub host_id: Option<Bytes>,
    pub mode: String,
    pub transport: &'static str,
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

struct Outbox {
    pending: Vec<u8>,
    waker: Option<Waker>,
    state: State,
    delivered: u64,
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

/// Outcome of handing a message to a subscriber.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// Queued, and it was the last one this subscriber takes (MaxMessages).
    Last,
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
    pub fn new(
        id: u64,
        info: SubscriberInfo,
        framing: Arc<dyn Framing>,
        max_messages: u64,
    ) -> Subscriber {
        Subscriber {
            id,
            info,
            framing,
            max_messages,
            cap: DEFAULT_OUTBOX_CAP,
            outbox: Mutex::new(Outbox {
                pending: Vec::new(),
                waker: None,
                state: State::Open,
                delivered: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Outbox> {
        // A panic elsewhere must not take every subscriber down with it.
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
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
        outbox.pending.extend_from_slice(bytes);
        Self::wake(&mut outbox);
        true
    }

    /// Queue one rendered live message, counting it towards MaxMessages and
    /// the outbox cap.
    pub fn push_message(&self, bytes: &[u8]) -> Delivery {
        self.push(bytes, true)
    }

    /// Queue backlog. It counts towards MaxMessages but never closes the
    /// subscription by itself: meteord sent a backlog as one batch, so the
    /// limit applies after it (see [`Subscriber::limit_reached`]). The cap
    /// does not apply either; the channel cache bounds a backlog.
    pub fn push_backlog(&self, bytes: &[u8]) -> Delivery {
        self.push(bytes, false)
    }

    /// Has this subscriber received MaxMessages or more?
    pub fn limit_reached(&self) -> bool {
        self.max_messages > 0 && self.lock().delivered >= self.max_messages
    }

    fn push(&self, bytes: &[u8], live: bool) -> Delivery {
        let mut outbox = self.lock();
        if outbox.state != State::Open {
            return Delivery::Refused;
        }
        if live && outbox.pending.len() + bytes.len() > self.cap {
            outbox.state = State::Aborted;
            outbox.pending = Vec::new();
            Self::wake(&mut outbox);
            return Delivery::Refused;
        }
        if outbox.pending.is_empty() && outbox.pending.capacity() < 256 {
            outbox.pending.reserve(256);
        }
        outbox.pending.extend_from_slice(bytes);
        outbox.delivered += 1;
        let last = live && self.max_messages > 0 && outbox.delivered >= self.max_messages;
        if last {
            outbox.state = State::Closing;
        }
        Self::wake(&mut outbox);
        if last {
            Delivery::Last
        } else {
            Delivery::Queued
        }
    }

    /// Finish the subscription after what is queued, optionally with the
    /// transport's shutdown message.
    pub fn close(&self, with_shutdown_message: bool) {
        let mut outbox = self.lock();
        if outbox.state != State::Open {
            return;
        }
        if with_shutdown_message {
            outbox.pending.extend_from_slice(self.framing.shutdown());
        }
        outbox.state = State::Closing;
        Self::wake(&mut outbox);
    }

    /// Drop the connection without writing anything more.
    pub fn abort(&self) {
        let mut outbox = self.lock();
        outbox.state = State::Aborted;
        outbox.pending = Vec::new();
        Self::wake(&mut outbox);
    }

    pub fn is_open(&self) -> bool {
        self.lock().state == State::Open
    }

    /// Messages handed to this subscriber so far.
    pub fn delivered(&self) -> u64 {
        self.lock().delivered
    }

    /// For the connection task: the next thing to do, or register to be woken.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Next> {
        let mut outbox = self.lock();
        match outbox.state {
            State::Aborted => return Poll::Ready(Next::Abort),
            _ if !outbox.pending.is_empty() => {
                return Poll::Ready(Next::Write(std::mem::take(&mut outbox.pending)))
            }
            State::Closing => return Poll::Ready(Next::Finish),
            State::Open => {}
        }
        if !outbox
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            outbox.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// For the connection task while a write is in progress: ready when the
    /// subscriber was aborted (so a stuck write can be given up).
    pub fn poll_aborted(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut outbox = self.lock();
        if outbox.state == State::Aborted {
            return Poll::Ready(());
        }
        if !outbox
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            outbox.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}
