//! The JSON shape of a message on the modern transports (SSE, WebSocket,
//! long-poll): `{"id", "channel", "text", "ts"}`, with a `"type"` where the
//! stream carries other objects too.
//!
//! The text goes out exactly as published (JSON-escaped), unlike the legacy
//! templates that paste it into JavaScript verbatim.

use serde::Serialize;

use crate::hub::Message;

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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::{sse::Sse, ws::WebSocketFraming};
    use crate::hub::{Framing, Message};

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
        WebSocketFraming.render(&message, &mut out);
        assert!(out.starts_with(b"{\"type\":\"message\",\"id\":7,"));
        assert!(out.ends_with(b"}\n"));
    }
}
