//! The persistence thread: it alone writes messages to the database.
//!
//! - Every SnapshotInterval seconds it asks the hub which channels changed
//!   and writes just those (new messages in, trimmed ones out) in one
//!   transaction — off the hot path: the hub only hands over pointers.
//! - In durable mode the hub also sends it each message as it is published;
//!   it commits whatever has queued up in one transaction (group commit)
//!   and then announces how far the disk has got, which is what a
//!   publisher's `OK` waits for.
//! - A failed write (disk full, read-only) is logged and reported in the
//!   status; publishing goes on in memory, and the next successful round
//!   writes every channel again, so persistence resumes by itself.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;
use tracing::{error, info};

use super::{IdCeiling, Store};
use crate::config::Persistence;
use crate::hub::{Hub, IdReserve, Message};

enum Event {
    Message(Arc<Message>),
    Shutdown(mpsc::Sender<()>),
}

/// What the admin pages and logs say about persistence.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub last_write: Option<SystemTime>,
    pub last_error: Option<String>,
}

pub struct Persister {
    mode: Persistence,
    events: mpsc::Sender<Event>,
    committed: watch::Receiver<u64>,
    status: Arc<Mutex<Status>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Persister {
    /// Start persisting `hub` into `store` (after the hub was restored).
    pub fn start(
        store: Store,
        ceiling: IdCeiling,
        hub: Arc<Hub>,
        mode: Persistence,
        interval: Duration,
    ) -> Arc<Persister> {
        let (events, queue) = mpsc::channel();
        let (commit_tx, committed) = watch::channel(hub.published());
        let status = Arc::new(Mutex::new(Status::default()));
        let journal = (mode == Persistence::Durable).then(|| {
            let events = events.clone();
            Box::new(move |m: Arc<Message>| {
                let _ = events.send(Event::Message(m));
            }) as Box<dyn Fn(Arc<Message>) + Send + Sync>
        });
        let ceiling = Arc::new(ceiling);
        hub.persist(ceiling.clone(), journal);

        let written = store.stored_heads().unwrap_or_default();
        let mut worker = Worker {
            store,
            hub,
            ceiling,
            written,
            full_sync: false,
            status: status.clone(),
            commit: commit_tx,
        };
        let thread = std::thread::Builder::new()
            .name("meteord-store".into())
            .spawn(move || worker.run(queue, interval))
            .expect("spawning the persistence thread");
        Arc::new(Persister {
            mode,
            events,
            committed,
            status,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn mode(&self) -> Persistence {
        self.mode
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// In durable mode, wait until message `id` is on disk (or its write
    /// failed and was reported). Returns at once in other modes.
    pub async fn wait_durable(&self, id: u64) {
        if self.mode != Persistence::Durable {
            return;
        }
        let mut committed = self.committed.clone();
        let _ = committed.wait_for(|&c| c > id).await;
    }

    /// Write everything one last time and stop the thread.
    pub fn shutdown(&self) {
        let (ack, done) = mpsc::channel();
        if self.events.send(Event::Shutdown(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(30));
        }
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

struct Worker {
    store: Store,
    hub: Arc<Hub>,
    ceiling: Arc<IdCeiling>,
    /// The highest id written for each channel.
    written: HashMap<Bytes, u64>,
    /// After a failed write: write every channel in full next time.
    full_sync: bool,
    status: Arc<Mutex<Status>>,
    commit: watch::Sender<u64>,
}

impl Worker {
    fn run(&mut self, queue: mpsc::Receiver<Event>, interval: Duration) {
        let mut next_sync = Instant::now() + interval;
        loop {
            let wait = next_sync.saturating_duration_since(Instant::now());
            match queue.recv_timeout(wait) {
                Ok(Event::Message(first)) => {
                    let mut batch = vec![first];
                    let mut shutdown = None;
                    while let Ok(event) = queue.try_recv() {
                        match event {
                            Event::Message(m) => batch.push(m),
                            Event::Shutdown(ack) => {
                                shutdown = Some(ack);
                                break;
                            }
                        }
                    }
                    self.commit_batch(&batch);
                    if let Some(ack) = shutdown {
                        return self.finish(ack);
                    }
                }
                Ok(Event::Shutdown(ack)) => return self.finish(ack),
                Err(RecvTimeoutError::Timeout) => {
                    self.sync();
                    next_sync = Instant::now() + interval;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.sync();
                    return;
                }
            }
        }
    }

    /// Durable mode: one transaction for everything queued.
    fn commit_batch(&mut self, batch: &[Arc<Message>]) {
        let refs: Vec<&Message> = batch.iter().map(|m| m.as_ref()).collect();
        let next = batch.last().map_or(0, |m| m.id + 1);
        match self.store.write(&refs, &[], next) {
            Ok(()) => {
                for m in batch {
                    let head = self.written.entry(m.channel.clone()).or_insert(m.id);
                    *head = (*head).max(m.id);
                }
                self.ok();
            }
            Err(e) => self.failed(e.to_string()),
        }
        // Publishers wait for this even when the write failed: the message
        // stays in memory and the failure is reported, not hidden.
        self.commit.send_replace(next);
    }

    /// Write the channels that changed (all of them after a failure).
    fn sync(&mut self) {
        let (caches, next_id) = self.hub.take_changes(self.full_sync);
        if caches.is_empty() && !self.full_sync {
            return;
        }
        let mut new: Vec<&Message> = Vec::new();
        let mut trims = Vec::with_capacity(caches.len());
        for cache in &caches {
            if !cache.persist {
                // Its rule keeps it off the disk: remove what is there.
                trims.push((cache.name.clone(), None));
                continue;
            }
            let head = if self.full_sync {
                None
            } else {
                self.written.get(&cache.name).copied()
            };
            new.extend(
                cache
                    .messages
                    .iter()
                    .filter(|m| head.is_none_or(|h| m.id > h))
                    .map(|m| m.as_ref()),
            );
            trims.push((cache.name.clone(), cache.messages.first().map(|m| m.id)));
        }
        // In id order the rows append to the table's end; only the smaller
        // channel index takes inserts all over (in channel order it was the
        // table, and a snapshot of many channels took half as long again).
        new.sort_unstable_by_key(|m| m.id);
        match self.store.write(&new, &trims, next_id) {
            Ok(()) => {
                for cache in &caches {
                    match cache.messages.last().filter(|_| cache.persist) {
                        Some(last) => {
                            self.written.insert(cache.name.clone(), last.id);
                        }
                        None => {
                            self.written.remove(&cache.name);
                        }
                    }
                }
                self.full_sync = false;
                self.ok();
            }
            Err(e) => {
                self.full_sync = true;
                self.failed(e.to_string());
            }
        }
    }

    fn ok(&self) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if status.last_error.take().is_some() {
            info!("persistence works again");
        }
        status.last_write = Some(SystemTime::now());
    }

    fn failed(&self, error: String) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if status.last_error.as_deref() != Some(error.as_str()) {
            error!("persistence failed, messages are kept in memory only until it works again: {error}");
        }
        status.last_error = Some(error);
    }

    /// Final write at shutdown; the id ceiling comes down to the exact next
    /// id, so a clean restart continues without a gap.
    fn finish(&mut self, ack: mpsc::Sender<()>) {
        self.sync();
        if self
            .status
            .lock()
            .map(|s| s.last_error.is_none())
            .unwrap_or(false)
        {
            let _ = self.ceiling.reserve(self.hub.next_message_id());
        }
        let _ = ack.send(());
    }
}
