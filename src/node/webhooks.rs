//! Webhooks: events sent to the application (`WebhookURL`) as JSON POSTs
//! signed with `WebhookSecret`:
//! `X-Meteord-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! An event is handed over without waiting ([`Node::emit_webhook`]): a
//! writer task queues it in the database, once per URL, and a sender task
//! delivers the queue. A delivery the application does not take (no
//! answer, or not `2xx`) is tried again after growing pauses for
//! `WebhookRetrySeconds`, then kept as a dead letter for the admin UI.
//! Deliveries of one channel to one URL keep their order (the queue only
//! hands out the oldest of each), and go out at least once: the receiver
//! drops repeats by the event `id`.
//!
//! With several nodes each event is sent by one of them: presence events
//! by the cluster's first node, `message_published` by the node that
//! published the message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::Node;
use crate::config::WebhookEvent;
use crate::outbound::post_json;
use crate::store::webhooks::{Deliveries, Delivery, NewDelivery};

/// Events waiting to be written to the database; past this, new ones are
/// dropped (and counted) rather than slow a publisher down.
const INTAKE: usize = 65_536;
/// Deliveries sent at once (of different channels).
const IN_FLIGHT: usize = 16;
/// How long the application gets to answer one delivery.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(300);
/// How often the queue is looked at when nothing wakes the sender.
const IDLE_LOOK: Duration = Duration::from_secs(30);

/// An event on its way to the database.
struct Outgoing {
    id: String,
    event: &'static str,
    channel: String,
    body: Vec<u8>,
    time: u64,
}

/// The node's webhooks: intake, queue, and counters.
pub struct Webhooks {
    intake: mpsc::Sender<Outgoing>,
    receiver: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    /// The database's delivery queue (none without a database).
    pub queue: Option<Arc<Deliveries>>,
    /// Wakes the sender: new deliveries, or a retry asked for.
    wake: Notify,
    /// Events dropped because the intake was full.
    dropped: AtomicU64,
}

impl Webhooks {
    pub fn new(queue: Option<Arc<Deliveries>>) -> Webhooks {
        let (intake, receiver) = mpsc::channel(INTAKE);
        Webhooks {
            intake,
            receiver: Mutex::new(Some(receiver)),
            queue,
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Look at the queue now (a dead letter was put back).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Events dropped because they came faster than the disk took them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A new event id: 128 random bits in hex.
fn event_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature header's value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The pause before try number `attempt` + 1 (1 s, 2 s, 4 s … 5 min).
fn pause_after(attempt: u32) -> Duration {
    let seconds = 1u64 << attempt.saturating_sub(1).min(16);
    Duration::from_secs(seconds).min(MAX_PAUSE)
}

impl Node {
    /// Does the configuration send `event` anywhere?
    pub fn wants_webhook(&self, event: WebhookEvent) -> bool {
        let config = self.config.load();
        !config.webhook_urls.is_empty() && config.webhook_events.contains(&event)
    }

    /// Hand an event to the webhooks, if the configuration wants it:
    /// `detail` adds its fields to `{id, time, event, channel}`. Never
    /// waits.
    pub fn emit_webhook(&self, event: WebhookEvent, channel: &[u8], detail: Map<String, Value>) {
        if !self.wants_webhook(event) {
            return;
        }
        self.queue_event(event.name(), channel, detail);
    }

    /// Queue a `test` event (the admin UI's button), whatever the events
    /// chosen.
    pub fn send_test_webhook(&self) -> bool {
        if self.config.load().webhook_urls.is_empty() {
            return false;
        }
        let mut detail = Map::new();
        detail.insert("node".into(), json!(self.config.load().node_name));
        self.queue_event("test", b"", detail)
    }

    fn queue_event(&self, event: &'static str, channel: &[u8], detail: Map<String, Value>) -> bool {
        let id = event_id();
        let time = now_ms();
        let channel = String::from_utf8_lossy(channel).into_owned();
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        body.insert("time".into(), json!(time));
        body.insert("event".into(), json!(event));
        body.insert(
            "channel".into(),
            if channel.is_empty() {
                Value::Null
            } else {
                json!(channel)
            },
        );
        body.extend(detail);
        let outgoing = Outgoing {
            id,
            event,
            channel,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            time,
        };
        match self.webhooks.intake.try_send(outgoing) {
            Ok(()) => true,
            Err(_) => {
                let dropped = self.webhooks.dropped.fetch_add(1, Ordering::Relaxed);
                if dropped.is_power_of_two() || dropped == 0 {
                    warn!(
                        dropped = dropped + 1,
                        "webhook events come faster than the database takes them; some were dropped"
                    );
                }
                false
            }
        }
    }
}

/// Write events to the queue and deliver it, until shutdown.
pub async fn run(node: Arc<Node>) {
    let Some(receiver) = super::take_once(&node.webhooks.receiver) else {
        return;
    };
    let Some(queue) = node.webhooks.queue.clone() else {
        if !node.config.load().webhook_urls.is_empty() {
            warn!(
                "webhooks are off: the database, which keeps their deliveries, could not be opened"
            );
        }
        return;
    };
    tokio::join!(
        write(node.clone(), queue.clone(), receiver),
        send(node, queue)
    );
}

/// Queue each event once per URL.
async fn write(node: Arc<Node>, queue: Arc<Deliveries>, mut receiver: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            // At shutdown, what was handed over is still written.
            _ = node.shutdown.cancelled(), if receiver.is_empty() => break,
            n = receiver.recv_many(&mut batch, 512) => if n == 0 { break },
        }
        let urls = node.config.load().webhook_urls.clone();
        let rows: Vec<NewDelivery> = batch
            .drain(..)
            .flat_map(|e| {
                urls.iter().map(move |url| NewDelivery {
                    event_id: e.id.clone(),
                    url: url.clone(),
                    channel: e.channel.clone(),
                    event: e.event.to_string(),
                    body: e.body.clone(),
                    created: e.time,
                })
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let q = queue.clone();
        match tokio::task::spawn_blocking(move || q.add(&rows)).await {
            Ok(Ok(())) => node.webhooks.wake(),
            Ok(Err(e)) => warn!("webhook events could not be queued: {e}"),
            Err(e) => warn!("webhook events could not be queued: {e}"),
        }
    }
}

/// Deliver what is due, then wait for the next due time or new work.
async fn send(node: Arc<Node>, queue: Arc<Deliveries>) {
    loop {
        if node.shutdown.is_cancelled() {
            return;
        }
        let q = queue.clone();
        let due = tokio::task::spawn_blocking(move || q.due(now_ms(), IN_FLIGHT))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if due.is_empty() {
            let q = queue.clone();
            let next = tokio::task::spawn_blocking(move || q.next_due())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let wait = next
                .map(|at| Duration::from_millis(at.saturating_sub(now_ms())))
                .unwrap_or(IDLE_LOOK)
                .min(IDLE_LOOK);
            tokio::select! {
                _ = node.shutdown.cancelled() => return,
                _ = node.webhooks.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let mut tries = JoinSet::new();
        for delivery in due {
            let node = node.clone();
            let queue = queue.clone();
            tries.spawn_blocking(move || attempt(&node, &queue, delivery));
        }
        tokio::select! {
            // In flight at shutdown: still pending, tried after the restart.
            _ = node.shutdown.cancelled() => return,
            _ = async { while tries.join_next().await.is_some() {} } => {}
        }
    }
}

/// Try one delivery and record how it went (on a blocking thread).
fn attempt(node: &Node, queue: &Deliveries, delivery: Delivery) {
    let config = node.config.load();
    let mut headers: Vec<(&str, String)> = vec![
        ("X-Meteord-Event", delivery.event.clone()),
        ("X-Meteord-Delivery", delivery.event_id.clone()),
        ("X-Meteord-Attempt", (delivery.attempts + 1).to_string()),
    ];
    if !config.webhook_secret.is_empty() {
        headers.push((
            "X-Meteord-Signature",
            signature(&config.webhook_secret, &delivery.body),
        ));
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let answer = post_json(&delivery.url, &delivery.body, &headers, TIMEOUT);
    let now = now_ms();
    let recorded = match answer {
        Ok(answer) if (200..300).contains(&answer.status) => {
            queue.delivered(delivery.row, &answer.status.to_string(), now)
        }
        other => {
            let result = match other {
                Ok(answer) => format!("HTTP {}", answer.status),
                Err(failure) => failure.to_string(),
            };
            let first = delivery.first_try.unwrap_or(now);
            let window_end = first + config.webhook_retry.as_millis() as u64;
            let next = if now >= window_end {
                info!(
                    event = %delivery.event,
                    channel = %delivery.channel,
                    tries = delivery.attempts + 1,
                    "webhook delivery given up: {result}"
                );
                None
            } else {
                let pause = pause_after(delivery.attempts + 1).as_millis() as u64;
                Some((now + pause).min(window_end))
            };
            queue.failed(delivery.row, &result, now, next)
        }
    };
    if let Err(e) = recorded {
        warn!("a webhook delivery's outcome could not be recorded: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_to_five_minutes() {
        let pauses: Vec<u64> = (1..=11).map(|a| pause_after(a).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn the_signature_is_the_hex_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
