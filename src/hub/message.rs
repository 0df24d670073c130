//! A published message, and how a subscriber's transport frames it.

use bytes::Bytes;

/// One message in a channel. Ids are global across channels and only grow.
#[derive(Debug)]
pub struct Message {
    pub id: u64,
    pub channel: Bytes,
    pub text: Bytes,
    /// Seconds since the Unix epoch when it was published.
    pub timestamp: u64,
}

/// How one kind of subscriber turns messages into bytes on its socket.
///
/// The hub renders each message once per distinct framing (compared by
/// pointer) and copies those bytes to every subscriber that shares it.
pub trait Framing: Send + Sync + 'static {
    fn render(&self, message: &Message, out: &mut Vec<u8>);
    /// Sent every ping interval; empty for none.
    fn ping(&self) -> &[u8];
    /// Sent when the server closes the subscription (shutdown, kick).
    fn shutdown(&self) -> &[u8];

    /// What to send when a subscription is closed for `reason`; legacy
    /// modes send their shutdown message whatever the reason.
    fn farewell(&self, reason: Farewell) -> &[u8] {
        match reason {
            Farewell::Quiet => b"",
            _ => self.shutdown(),
        }
    }
}

/// Why the server ends a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Farewell {
    /// Its natural end (backlog sent, MaxMessages, MaxTime): no message.
    Quiet,
    /// The server is shutting down.
    Shutdown,
    /// A newer subscription with the same host id took its place.
    Replaced,
    /// `/disconnect/<hostid>` or a kick from the admin UI.
    Disconnected,
    /// The token that let it subscribe has expired: the client renews it
    /// and resumes.
    TokenExpired,
}

/// Identity of a framing, for the per-publish render cache.
pub(crate) fn framing_key(framing: &std::sync::Arc<dyn Framing>) -> usize {
    std::sync::Arc::as_ptr(framing) as *const () as usize
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
