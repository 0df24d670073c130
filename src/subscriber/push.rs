//! Legacy subscriptions: `GET <prefix>/<hostid>/<mode>/<channels>` and
//! `GET /disconnect/<hostid>`, answered with the bytes the mode's templates
//! make — status line and headers included — exactly as meteord did.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tracing::info;

use axum::http::HeaderMap;

use super::access;
use super::request::PushTarget;
use super::writer::{stream_outbox, End};
use crate::config::Mode;
use crate::hub::{
    unix_now, ChannelSnapshot, Framing, Message, Refused, Start, Stat, Subscription, Transport,
};
use crate::node::listen;
use crate::node::Node;
use crate::template::{push_decimal, Field, Template};
use crate::tls::Conn;

/// What `~server~` says.
pub const SERVER_NAME: &str = "meteord";

impl Framing for Mode {
    fn render(&self, message: &Message, out: &mut Vec<u8>) {
        self.message.render(out, |field, out| match field {
            Field::Id => push_decimal(out, message.id),
            Field::Channel => out.extend_from_slice(&message.channel),
            Field::Text => out.extend_from_slice(&message.text),
            Field::Timestamp => push_decimal(out, message.timestamp),
            _ => {}
        });
    }

    fn ping(&self) -> &[u8] {
        &self.ping
    }

    fn shutdown(&self) -> &[u8] {
        &self.shutdown
    }
}

/// Render a mode's header template.
pub fn render_header(mode: &Mode, status: &str, channels: &[ChannelSnapshot], out: &mut Vec<u8>) {
    let start = out.len();
    mode.header.render(out, |field, out| match field {
        Field::Status => out.extend_from_slice(status.as_bytes()),
        Field::Server => out.extend_from_slice(SERVER_NAME.as_bytes()),
        Field::ServerTime => push_decimal(out, unix_now()),
        Field::ChannelInfo => {
            for channel in channels {
                render_channel_info(&mode.channel_info, channel, out);
            }
        }
        _ => {}
    });
    // Old pages in an iframe set document.domain; browsers honour that only
    // for documents that opt out of origin-keyed agent clusters.
    if mode.name == "iframe" && out[start..].starts_with(b"HTTP/") {
        if let Some(eol) = memchr::memmem::find(&out[start..], b"\r\n") {
            let at = start + eol + 2;
            out.splice(at..at, b"Origin-Agent-Cluster: ?0\r\n".iter().copied());
        }
    }
}

fn render_channel_info(template: &Template, channel: &ChannelSnapshot, out: &mut Vec<u8>) {
    template.render(out, |field, out| match field {
        Field::Name => out.extend_from_slice(&channel.name),
        Field::LastMsgId => push_decimal(out, channel.last_id.unwrap_or(0)),
        Field::MessageCount => push_decimal(out, channel.message_count as u64),
        Field::SubscriberCount => push_decimal(out, channel.subscriber_count as u64),
        _ => {}
    });
}

/// Parse one channel spec: `name`, `name.r<id>`, `name.b<n>` or `name.h`.
/// `None` for an invalid spec, which is skipped. As in meteord, an upper-case
/// letter (`name.R5`) is accepted but asks for no backlog.
pub fn parse_channel_spec(spec: &str) -> Option<(Bytes, Start)> {
    let is_name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'%');
    let (name, suffix) = match spec.find('.') {
        Some(dot) => (&spec[..dot], Some(&spec[dot + 1..])),
        None => (spec, None),
    };
    if name.is_empty() || !name.bytes().all(is_name) {
        return None;
    }
    let start = match suffix {
        None => Start::Live,
        Some(suffix) => {
            let mut chars = suffix.chars();
            let letter = chars.next()?;
            let digits = chars.as_str();
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Digits beyond u64 are "more than any id".
            let number = (!digits.is_empty()).then(|| digits.parse::<u64>().unwrap_or(u64::MAX));
            match (letter, number) {
                ('r', Some(id)) => Start::FromId(id),
                ('r', None) => Start::All,
                ('b', Some(n)) if n > 0 => Start::Last(usize::try_from(n).unwrap_or(usize::MAX)),
                ('b', _) | ('h', _) => Start::All,
                ('R' | 'B' | 'H', _) => Start::Live,
                _ => return None,
            }
        }
    };
    Some((Bytes::copy_from_slice(name.as_bytes()), start))
}

/// A legacy subscription that was admitted: what its connection holds
/// while it streams, which may be for hours. Kept small on purpose, since
/// there may be tens of thousands: the request's parsing and admission ran
/// in a future of their own, freed before the stream starts, and what the
/// leave log names comes from the subscriber.
pub struct Streaming {
    stream: Conn,
    node: Arc<Node>,
    subscriber: Arc<crate::hub::Subscriber>,
}

impl Streaming {
    /// Stream the subscription to its end.
    pub async fn run(&mut self) {
        let hub = &self.node.hub;
        let end = stream_outbox(&mut self.stream, &self.subscriber, &hub.stats).await;
        hub.unsubscribe(self.subscriber.id);
        let reason = match end {
            End::Finished => "finished",
            End::Dropped => "dropped",
            End::PeerClosed => "client closed",
        };
        let info = &self.subscriber.info;
        let ip = info.peer.map(|p| p.ip().to_string()).unwrap_or_default();
        let host_id = info.host_id.as_deref().unwrap_or_default();
        info!(
            event = "leavechannel",
            ip = %ip,
            host_id = %String::from_utf8_lossy(host_id),
            seconds = info.since.elapsed().map_or(0, |d| d.as_secs()),
            messages = self.subscriber.delivered(),
            reason,
        );
    }
}

/// Check and set up one subscription request: the stream to run, or
/// `None` once it has been answered with an error.
pub async fn subscribe(
    stream: Conn,
    node: Arc<Node>,
    target: PushTarget<'_>,
    head: HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<Streaming> {
    let config = node.config.load_full();
    let mode = config.mode(target.mode).clone();
    let hub = &node.hub;
    // One past the limit is enough to know the request names too many.
    let cap = config.max_channels_per_subscription;
    let channels: Vec<(Bytes, Start)> = target
        .channels
        .split('/')
        .filter_map(parse_channel_spec)
        .take(cap + 1)
        .collect();
    if channels.len() > cap {
        info!(
            event = "refused",
            host_id = target.host_id,
            reason = "too many channels"
        );
        refuse(stream, &node, &mode, "400 Bad Request").await;
        return None;
    }

    if channels.is_empty() {
        refuse(stream, &node, &mode, "404 Not Found").await;
        return None;
    }
    let token = access::query_token(target.query);
    let credentials = access::credentials(token, &head, Some(target.host_id), peer);
    let user_agent = head
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Only the user agent is kept while the subscription streams.
    drop(head);
    let names: Vec<&Bytes> = channels.iter().map(|(n, _)| n).collect();
    let granted = match node.admit(&names, Transport::Legacy, &credentials).await {
        Ok(granted) => granted,
        Err(denied) => {
            info!(
                event = "refused",
                host_id = target.host_id,
                reason = denied.message()
            );
            refuse(stream, &node, &mode, "403 Forbidden").await;
            return None;
        }
    };
    drop((credentials, names));

    let subscriber = hub.new_subscriber(
        super::streams::subscriber_info(
            Some(target.host_id),
            target.mode,
            Transport::Legacy,
            peer,
            &granted,
        ),
        mode.clone(),
        mode.max_messages,
    );
    let framing_mode = mode.clone();
    let subscribed = hub.subscribe(
        Subscription {
            subscriber: subscriber.clone(),
            channels: &channels,
            persist: mode.persist,
            max_time: (mode.max_time > 0).then(|| Duration::from_secs(mode.max_time)),
            expires: access::expiry(&granted),
            merge_backlog: false,
        },
        |snapshots, out| render_header(&framing_mode, "200 OK", snapshots, out),
    );
    if let Err(refused) = subscribed {
        info!(event = "refused", host_id = target.host_id, reason = %refused);
        let status = match refused {
            Refused::ChannelLimit => "503 Service Unavailable",
            _ => "400 Bad Request",
        };
        refuse(stream, &node, &mode, status).await;
        return None;
    }
    let ip = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    for (name, start) in &channels {
        info!(
            event = "joinchannel",
            ip = %ip,
            host_id = target.host_id,
            channel = %String::from_utf8_lossy(name),
            mode = target.mode,
            start = ?start,
            user_agent = user_agent.as_deref().unwrap_or("-"),
        );
    }
    Some(Streaming {
        stream,
        subscriber,
        node,
    })
}

/// Answer a subscription request with an error status rendered through
/// the mode's own header template, then its shutdown message.
async fn refuse(mut stream: Conn, node: &Node, mode: &Mode, status: &str) {
    let mut out = Vec::new();
    render_header(mode, status, &[], &mut out);
    out.extend_from_slice(&mode.shutdown);
    node.hub.stats.incr(Stat::ErrorsServed);
    let _ = listen::send(&mut stream, &out, &node.hub.stats).await;
    let _ = stream.shutdown().await;
}

/// `GET /disconnect/<hostid>[?token=…]`: end that host's streaming
/// subscription — if it was made with the same token, or none for both —
/// and answer with the global header.
pub async fn disconnect(mut stream: Conn, node: Arc<Node>, target: &str, head: &HeaderMap) {
    let (host_id, query) = match target.split_once('?') {
        Some((host_id, query)) => (host_id, Some(query)),
        None => (target, None),
    };
    let credentials = access::credentials(access::query_token(query), head, Some(host_id), None);
    let credential = node.identify(&credentials).credential;
    let kicked = node.hub.kick(host_id.as_bytes(), credential);
    info!(event = "disconnect", host_id, kicked);
    let config = node.config.load_full();
    let mut out = Vec::new();
    render_header(&config.global, "200 OK", &[], &mut out);
    let _ = listen::send(&mut stream, &out, &node.hub.stats).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_specs() {
        let spec =
            |s| parse_channel_spec(s).map(|(n, st)| (String::from_utf8(n.to_vec()).unwrap(), st));
        assert_eq!(spec("demo"), Some(("demo".into(), Start::Live)));
        assert_eq!(spec("demo.r5"), Some(("demo".into(), Start::FromId(5))));
        assert_eq!(spec("demo.R5"), Some(("demo".into(), Start::Live)));
        assert_eq!(spec("demo.H"), Some(("demo".into(), Start::Live)));
        assert_eq!(spec("demo.r"), Some(("demo".into(), Start::All)));
        assert_eq!(spec("demo.b3"), Some(("demo".into(), Start::Last(3))));
        assert_eq!(spec("demo.b0"), Some(("demo".into(), Start::All)));
        assert_eq!(spec("demo.b"), Some(("demo".into(), Start::All)));
        assert_eq!(spec("demo.h"), Some(("demo".into(), Start::All)));
        assert_eq!(spec("a%20b-c_d"), Some(("a%20b-c_d".into(), Start::Live)));
        assert_eq!(spec("demo.x5"), None);
        assert_eq!(spec("demo.r5x"), None);
        assert_eq!(spec("demo.r5.b2"), None);
        assert_eq!(spec(".r5"), None);
        assert_eq!(spec(""), None);
        assert_eq!(
            spec("demo.r99999999999999999999999"),
            Some(("demo".into(), Start::FromId(u64::MAX)))
        );
    }
}
