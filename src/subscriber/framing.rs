//! How the modern transports frame a message: JSON objects, one per line
//! (WebSocket, long-poll) or one per Server-Sent Event.
//!
//! The text goes out exactly as published (JSON-escaped), unlike the legacy
//! templates that paste it into JavaScript verbatim.

use std::sync::Arc;

use serde::Serialize;

use crate::hub::{Farewell, Framing, Message};

#[derive(Serialize)]
struct Json<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    id: u64,
    channel: &'a str,
    text: &'a str,
    ts: u64,
}

/// Append `message` as a JSON object; `kind` adds a `"type"` field.
pub fn write_json(message: &Message, kind: Option<&'static str>, out: &mut Vec<u8>) {
    let channel = String::from_utf8_lossy(&message.channel);
    let text = String::from_utf8_lossy(&message.text);
    let json = Json {
        kind,
        id: message.id,
        channel: &channel,
        text: &text,
        ts: message.timestamp,
    };
    // Writing a plain struct into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &json);
}

/// Server-Sent Events: `id: <id>` and one `data:` line of JSON per message.
pub struct Sse;

impl Framing for Sse {
    fn render(&self, message: &Message, out: &mut Vec<u8>) {
        out.extend_from_slice(b"id: ");
        crate::template::push_decimal(out, message.id);
        out.extend_from_slice(b"\ndata: ");
        write_json(message, None, out);
        out.extend_from_slice(b"\n\n");
    }

    fn ping(&self) -> &[u8] {
        b": ping\n\n"
    }

    fn shutdown(&self) -> &[u8] {
        b"event: close\ndata: shutdown\n\n"
    }

    fn farewell(&self, reason: Farewell) -> &[u8] {
        match reason {
            Farewell::Quiet => b"",
            Farewell::Shutdown => self.shutdown(),
            Farewell::Replaced => b"event: close\ndata: replaced\n\n",
            Farewell::Disconnected => b"event: close\ndata: disconnected\n\n",
        }
    }
}

/// WebSocket: one JSON object per line; the connection sends each line as
/// a text frame.
pub struct WebSocket;

impl Framing for WebSocket {
    fn render(&self, message: &Message, out: &mut Vec<u8>) {
        write_json(message, Some("message"), out);
        out.push(b'\n');
    }

    fn ping(&self) -> &[u8] {
        b"{\"type\":\"ping\"}\n"
    }

    fn shutdown(&self) -> &[u8] {
        b"{\"type\":\"close\",\"reason\":\"shutdown\"}\n"
    }

    fn farewell(&self, reason: Farewell) -> &[u8] {
        match reason {
            Farewell::Quiet => b"",
            Farewell::Shutdown => self.shutdown(),
            Farewell::Replaced => b"{\"type\":\"close\",\"reason\":\"replaced\"}\n",
            Farewell::Disconnected => b"{\"type\":\"close\",\"reason\":\"disconnected\"}\n",
        }
    }
}

/// Long-poll: newline-delimited JSON, no pings.
pub struct Poll;

impl Framing for Poll {
    fn render(&self, message: &Message, out: &mut Vec<u8>) {
        write_json(message, None, out);
        out.push(b'\n');
    }

    fn ping(&self) -> &[u8] {
        b""
    }

    fn shutdown(&self) -> &[u8] {
        b""
    }
}

/// One shared instance of each, so every subscriber of a transport shares
/// the rendering of a message.
pub struct Framings {
    pub sse: Arc<dyn Framing>,
    pub websocket: Arc<dyn Framing>,
    pub poll: Arc<dyn Framing>,
}

impl Default for Framings {
    fn default() -> Framings {
        Framings {
            sse: Arc::new(Sse),
            websocket: Arc::new(WebSocket),
            poll: Arc::new(Poll),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn text_is_json_escaped_not_altered() {
        let message = Message {
            id: 7,
            channel: Bytes::from_static(b"c"),
            text: Bytes::from("say \"hi\"\\n</script>\n\u{2028}é"),
            timestamp: 5,
        };
        let mut out = Vec::new();
        Sse.render(&message, &mut out);
        let text = String::from_utf8(out).unwrap();
        let data = text
            .strip_prefix("id: 7\ndata: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        assert!(!data.contains('\n'));
        let parsed: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(parsed["text"], "say \"hi\"\\n</script>\n\u{2028}é");
        assert_eq!(parsed["id"], 7);
        let mut out = Vec::new();
        WebSocket.render(&message, &mut out);
        assert!(out.starts_with(b"{\"type\":\"message\",\"id\":7,"));
        assert!(out.ends_with(b"}\n"));
    }
}
