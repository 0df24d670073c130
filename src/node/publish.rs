//! The publish door: every publisher — the control port, UDP, the HTTP
//! API, the admin UI's form — hands its messages to [`Node::publish`] or
//! [`Node::publish_batch`], which check them the same way, pick the engine,
//! and answer one [`PublishError`] that each front end turns into its own
//! wire answer (`ERR …`, an HTTP status, a form message).

use bytes::Bytes;
use tracing::debug;

use super::engine::Engine;
use super::Node;
use crate::config::WebhookEvent;
use crate::names::is_space;

/// The longest message text any publisher may send (a control line must
/// fit its command and channel too).
pub const MAX_TEXT: usize = 1 << 20;

/// Why a message was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Publishing is paused (tray, admin UI).
    #[error("publishing is paused")]
    Paused,
    /// Empty, or with whitespace in it.
    #[error("a channel name is not empty and has no spaces")]
    BadChannel,
    #[error("a message has at most {MAX_TEXT} bytes")]
    TooLong,
    /// The engine could not take it (Redis down).
    #[error("{0}")]
    Unavailable(String),
}

/// When a publish counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Safe: on disk in durable mode, in Redis with the redis engine. A
    /// publisher that is told the id waits for this.
    Stored,
    /// Handed to the hub; the disk may follow later (UDP, which answers
    /// nothing). With the redis engine still in Redis, so that the order
    /// of one publisher's messages holds.
    Taken,
}

impl Node {
    /// Publish `text` on `channel`; its id once it is stored.
    pub async fn publish(&self, channel: &[u8], text: &[u8]) -> Result<u64, PublishError> {
        let mut answers = self.publish_batch(&[(channel, text)], Ack::Stored).await;
        answers.pop().unwrap_or(Err(PublishError::BadChannel))
    }

    /// Publish messages `(channel, text)` in order; one answer each, in
    /// the same order. A pipelining publisher pays one wait (disk or
    /// Redis) for the whole batch. The texts are copied: a batch may
    /// borrow from a publisher's read buffer.
    pub async fn publish_batch<M: AsRef<[u8]> + Sync>(
        &self,
        batch: &[(M, M)],
        ack: Ack,
    ) -> Vec<Result<u64, PublishError>> {
        let mut answers: Vec<Result<u64, PublishError>> = batch
            .iter()
            .map(|(channel, text)| self.acceptable(channel.as_ref(), text.as_ref()).map(|()| 0))
            .collect();
        // Told to the application by the node that publishes (once).
        let hook = self.wants_webhook(WebhookEvent::MessagePublished);
        match &self.engine {
            Engine::Memory => {
                let mut last = None;
                for ((channel, text), answer) in batch.iter().zip(&mut answers) {
                    if let Ok(id) = answer {
                        // Copied one at a time, just before the cache keeps
                        // it, so the allocator reuses what trimming frees.
                        let (channel, text) = (channel.as_ref(), text.as_ref());
                        *id = self.hub.publish(channel, Bytes::copy_from_slice(text));
                        last = Some(*id);
                        if hook {
                            self.message_webhook(channel, *id, text);
                        }
                        debug!(channel = %String::from_utf8_lossy(channel), id, "message published");
                    }
                }
                // Ids are committed in order: one wait covers the batch.
                if let (Some(id), Some(persister), Ack::Stored) = (last, &self.persister, ack) {
                    persister.wait_durable(id).await;
                }
            }
            Engine::Redis(cluster) => {
                let admitted: Vec<(Bytes, Bytes)> = batch
                    .iter()
                    .zip(&answers)
                    .filter(|(_, answer)| answer.is_ok())
                    .map(|((channel, text), _)| {
                        let copy = |b: &M| Bytes::copy_from_slice(b.as_ref());
                        (copy(channel), copy(text))
                    })
                    .collect();
                let mut stored = cluster.publish_many(&admitted).await.into_iter();
                let mut admitted = admitted.iter();
                for answer in answers.iter_mut().filter(|a| a.is_ok()) {
                    let message = admitted.next();
                    *answer = match stored.next() {
                        Some(Ok(id)) => Ok(id),
                        Some(Err(e)) => Err(PublishError::Unavailable(e.to_string())),
                        None => Err(PublishError::Unavailable("no answer from Redis".into())),
                    };
                    if let (true, Ok(id), Some((channel, text))) = (hook, &answer, message) {
                        self.message_webhook(channel, *id, text);
                    }
                }
            }
        }
        answers
    }

    /// Tell the webhooks a message was published.
    fn message_webhook(&self, channel: &[u8], id: u64, text: &[u8]) {
        let mut detail = serde_json::Map::new();
        detail.insert(
            "message".into(),
            serde_json::json!({
                "id": id,
                "text": String::from_utf8_lossy(text),
                "ts": crate::hub::unix_now(),
            }),
        );
        self.emit_webhook(WebhookEvent::MessagePublished, channel, detail);
    }

    /// The checks every message passes, whoever sends it.
    fn acceptable(&self, channel: &[u8], text: &[u8]) -> Result<(), PublishError> {
        if self.publishing_paused() {
            return Err(PublishError::Paused);
        }
        if channel.is_empty() || channel.iter().copied().any(is_space) {
            return Err(PublishError::BadChannel);
        }
        if text.len() > MAX_TEXT {
            return Err(PublishError::TooLong);
        }
        Ok(())
    }
}
