//! `GET /ws`: a WebSocket carrying a small JSON protocol.
//!
//! Client to server (text frames):
//! - `{"type":"subscribe","channel":"c"}`, optionally with `"after": <id>`
//!   (messages with a greater id), `"last": <n>` or `"history": true`;
//!   (messages with a greater id), `"last": <n>` or `"history": true`, and
//!   `"presence": true` for the channel's members and their comings and
//!   goings;
//! - `{"type":"unsubscribe","channel":"c"}`;
//! - `{"type":"publish","channel":"c","text":"..","ref":<any>}`, allowed by
//!   the token's `publish` claim (or an API token's `publish` scope) and
//!   `ClientPublishRate`;
//! - `{"type":"ping"}`.
//!
//! Server to client: `{"type":"subscribed","channel":"c","last_id":<id|null>}`
//! before that channel's backlog, `{"type":"message","id":..,"channel":..,
//! "text":..,"ts":..}`, `{"type":"unsubscribed","channel":"c"}`,
//! `{"type":"presence","channel":"c","members":[..]}` then
//! `{"type":"join"|"leave","channel":"c","member":{"id","user","since"}}`,
//! `{"type":"published","channel":"c","id":<id>,"ref":..}`,
//! `{"type":"pong"}`, `{"type":"ping"}` every PingInterval,
//! `{"type":"error","error":"..","status":..,"ref":..}` for a command that
//! failed (the connection stays), and `{"type":"close","reason":"shutdown"}`
//! before the server closes.

use std::future::poll_fn;
use std::sync::{Arc, LazyLock};

use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::access;
use super::framing::write_json;
use super::publisher::Publisher;
use super::streams::{resume_after, subscriber_info};
use super::transports::Routes;
use super::writer::WRITE_STALL;
use crate::hub::{
    Farewell, Framing, Hub, Message, Next, Refused, Start, Stat, Subscriber, Subscription,
    Transport,
};
use crate::names::{valid_channel_name, valid_host_id, CHANNEL_NAME_RULE};
use crate::node::access::{Credentials, Denied};
use crate::node::presence::Style;
use crate::node::web::{bad_request, PeerAddr};
use crate::node::{Node, MAX_TEXT};

pub const ROUTES: Routes = Routes {
    transport: Transport::WebSocket,
    prefix: "/ws",
    router,
    cross_origin: false,
};

fn router() -> Router<Arc<Node>> {
    Router::new().route("/ws", get(handler))
}

/// Largest frame a client may send: a published message of the largest
/// size, with room for its JSON escapes.
const MAX_CLIENT_FRAME: usize = 2 * MAX_TEXT;

/// One JSON object per line; the connection sends each line as a text
/// frame.
pub struct WebSocketFraming;

/// The one instance every WebSocket subscriber shares.
pub static FRAMING: LazyLock<Arc<dyn Framing>> = LazyLock::new(|| Arc::new(WebSocketFraming));

impl Framing for WebSocketFraming {
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
            Farewell::TokenExpired => b"{\"type\":\"close\",\"reason\":\"token expired\"}\n",
        }
    }
}

#[derive(Deserialize)]
pub struct WsQuery {
    hostid: Option<String>,
    /// A signed subscribe token or an API token, for private channels.
    token: Option<String>,
}

/// A client's command.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Command {
    Subscribe {
        channel: String,
        after: Option<u64>,
        last: Option<usize>,
        #[serde(default)]
        history: bool,
        /// A token for this channel (else the connection's).
        token: Option<String>,
        /// Also send the channel's members, then joins and leaves.
        #[serde(default)]
        presence: bool,
    },
    Unsubscribe {
        channel: String,
    },
    Publish {
        channel: String,
        text: String,
        /// Echoed in the answer, to match it to the request.
        #[serde(default, rename = "ref")]
        reference: Option<serde_json::Value>,
        /// A token for this channel (else the connection's).
        token: Option<String>,
    },
    Ping,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Reply<'a> {
    Subscribed {
        channel: &'a str,
        last_id: Option<u64>,
    },
    Unsubscribed {
        channel: &'a str,
    },
    Published {
        channel: &'a str,
        id: u64,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a serde_json::Value>,
    },
    Pong,
    Error {
        error: &'a str,
        /// 401 (no valid credential), 403 (not granted), 413 (too long),
        /// 429 (too fast), 503 (cannot publish now).
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<&'a str>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a serde_json::Value>,
    },
}

impl<'a> Reply<'a> {
    fn error(error: &'a str) -> Reply<'a> {
        Reply::Error {
            error,
            status: None,
            channel: None,
            reference: None,
        }
    }
}

impl Reply<'_> {
    fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

pub async fn handler(
    State(node): State<Arc<Node>>,
    PeerAddr(peer): PeerAddr,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(host_id) = &query.hostid {
        if !valid_host_id(host_id) {
            return bad_request("hostid must be 1 to 64 letters and digits");
        }
    }
    let credentials = access::credentials(query.token, &headers, query.hostid.as_deref(), peer);
    upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| session(socket, node, credentials, peer))
}

async fn session(
    mut socket: WebSocket,
    node: Arc<Node>,
    credentials: Credentials,
    peer: Option<std::net::SocketAddr>,
) {
    let hub = node.hub.clone();
    let subscriber = hub.new_subscriber(
        subscriber_info(
            credentials.host_id.as_deref(),
            "websocket",
            Transport::WebSocket,
            peer,
            &node.identify(&credentials),
        ),
        FRAMING.clone(),
        0,
    );
    // No channel yet: nothing the hub could refuse.
    let _ = hub.subscribe(
        Subscription {
            subscriber: subscriber.clone(),
            channels: &[],
            persist: true,
            max_time: None,
            expires: None,
            merge_backlog: true,
        },
        |_, _| {},
    );
    let mut publisher = Publisher::default();
    loop {
        tokio::select! {
            next = poll_fn(|cx| subscriber.poll_next(cx)) => match next {
                Next::Write(bytes) => {
                    if send_lines(&mut socket, &bytes, &hub).await.is_err() {
                        break;
                    }
                }
                Next::Finish => {
                    let _ = tokio::time::timeout(WRITE_STALL, socket.send(Frame::Close(None))).await;
                    break;
                }
                Next::Abort => break,
            },
            received = socket.recv() => match received {
                Some(Ok(Frame::Text(text))) => {
                    hub.stats.add(Stat::TotalInboundBytes, text.len() as u64);
                    command(text.as_str(), &subscriber, &node, &credentials, &mut publisher).await;
                }
                Some(Ok(Frame::Binary(_))) => {
                    subscriber.push_raw(&Reply::error("binary frames are not understood; send JSON text").line());
                }
                Some(Err(e)) => {
                    // Say why before closing: a frame too large, or broken.
                    let reason = e.to_string();
                    let code = if reason.contains("too long") { 1009 } else { 1002 };
                    let _ = tokio::time::timeout(WRITE_STALL, socket.send(Frame::Close(Some(CloseFrame {
                        code,
                        reason: reason.chars().take(120).collect::<String>().into(),
                    })))).await;
                    break;
                }
                Some(Ok(Frame::Close(_))) | None => break,
                Some(Ok(_)) => {} // protocol pings are answered by the library
            },
        }
    }
    hub.unsubscribe(subscriber.id);
}

/// Send each line of `bytes` as one text frame.
async fn send_lines(socket: &mut WebSocket, bytes: &[u8], hub: &Hub) -> Result<(), ()> {
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let text = String::from_utf8_lossy(line).into_owned();
        match tokio::time::timeout(WRITE_STALL, socket.send(Frame::Text(text.into()))).await {
            Ok(Ok(())) => hub.stats.add(Stat::TotalOutboundBytes, line.len() as u64),
            _ => return Err(()),
        }
    }
    Ok(())
}

/// Parse one text frame from a client.
pub fn parse_command(text: &str) -> Result<Command, serde_json::Error> {
    serde_json::from_str(text)
}

async fn command(
    text: &str,
    subscriber: &Arc<Subscriber>,
    node: &Arc<Node>,
    connection: &Credentials,
    publisher: &mut Publisher,
) {
    let hub = &node.hub;
    let reply = |r: Reply<'_>| {
        subscriber.push_raw(&r.line());
    };
    let command = match parse_command(text) {
        Ok(command) => command,
        Err(e) => {
            let message = format!("bad command: {e}");
            return reply(Reply::error(&message));
        }
    };
    match command {
        Command::Ping => reply(Reply::Pong),
        Command::Subscribe {
            channel,
            after,
            last,
            history,
            token,
            presence,
        } => {
            if !valid_channel_name(&channel) {
                return reply(Reply::error(CHANNEL_NAME_RULE));
            }
            let start = match (after, last, history) {
                (Some(id), _, _) => resume_after(id, hub),
                (None, Some(0), _) => Start::Live,
                (None, Some(n), _) => Start::Last(n),
                (None, None, true) => Start::All,
                (None, None, false) => Start::Live,
            };
            let name = Bytes::from(channel);
            let credentials = Credentials {
                token: token.or_else(|| connection.token.clone()),
                ..connection.clone()
            };
            let granted = match node
                .admit(&[&name], Transport::WebSocket, &credentials)
                .await
            {
                Ok(granted) => granted,
                Err(denied) => {
                    let status = match denied {
                        Denied::Unauthorized(_) => 401,
                        Denied::Transport(_) | Denied::Forbidden(_) => 403,
                    };
                    return reply(Reply::Error {
                        error: denied.message(),
                        status: Some(status),
                        channel: None,
                        reference: None,
                    });
                }
            };
            let attached = hub.attach_channel(subscriber, &name, start, |snapshot, out| {
                let channel = String::from_utf8_lossy(&snapshot.name);
                out.extend_from_slice(
                    &Reply::Subscribed {
                        channel: &channel,
                        last_id: snapshot.last_id,
                    }
                    .line(),
                );
            });
            match attached {
                Ok(()) => {
                    // The connection ends when the token that granted this
                    // channel expires; the client renews it and resumes.
                    if let Some(at) = access::expiry(&granted) {
                        hub.expire_at(subscriber.id, at);
                    }
                    if presence {
                        node.presence
                            .watch(name, subscriber.clone(), Style::WebSocket);
                    }
                }
                Err(refused) => {
                    let error = match refused {
                        Refused::TooManyChannels(n) => {
                            format!("too many channels on this connection (at most {n})")
                        }
                        refused => refused.to_string(),
                    };
                    reply(Reply::error(&error));
                }
            }
        }
        Command::Publish {
            channel,
            text,
            reference,
            token,
        } => {
            let token = token.or_else(|| connection.token.clone());
            let answer = match publisher
                .publish(node, &channel, &text, token.as_deref())
                .await
            {
                Ok(id) => Reply::Published {
                    channel: &channel,
                    id,
                    reference: reference.as_ref(),
                },
                Err((status, error)) => {
                    return reply(Reply::Error {
                        error: &error,
                        status: Some(status),
                        channel: Some(&channel),
                        reference: reference.as_ref(),
                    })
                }
            };
            reply(answer);
        }
        Command::Unsubscribe { channel } => {
            if hub.detach_channel(subscriber, channel.as_bytes()) {
                reply(Reply::Unsubscribed { channel: &channel });
            } else {
                reply(Reply::error("not subscribed to that channel"));
            }
        }
    }
}
