//! The ways a subscriber can be connected. The hub keeps one per subscriber
//! (for stats and the admin UI) and channel rules name the ones a channel
//! allows; each transport's wire format lives with its front end.

use serde::{Deserialize, Serialize};

/// How a subscriber is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// meteord's `/push` modes (streaming, polling, long-polling).
    Legacy,
    /// Server-Sent Events.
    Sse,
    WebSocket,
    /// Long-poll returning JSON lines.
    Poll,
}

impl Transport {
    /// Every transport, in the order pages list them.
    pub const ALL: [Transport; 4] = [
        Transport::Legacy,
        Transport::Sse,
        Transport::WebSocket,
        Transport::Poll,
    ];

    /// The name used in rules, stats and pages.
    pub const fn name(self) -> &'static str {
        match self {
            Transport::Legacy => "legacy",
            Transport::Sse => "sse",
            Transport::WebSocket => "websocket",
            Transport::Poll => "poll",
        }
    }

    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
