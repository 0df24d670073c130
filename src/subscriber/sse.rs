//! `GET /sse/<channel specs>`: Server-Sent Events.
//!
//! Channel specs are the legacy ones (`name`, `name.r<id>`, `name.b<n>`,
//! `name.h`). A reconnecting EventSource sends `Last-Event-ID: <id>` (or a
//! page passes `?lastEventId=<id>`): every channel then resumes after that
//! id, which is exact because ids are global and delivered in order.
//!
//! Each message is one event: `id: <id>` and one `data:` line of JSON.
//!
//! With `?presence=1` the stream also carries each channel's members
//! (`event: presence`, `data: {"channel","members"}`) and then
//! `event: join` / `event: leave` (`data: {"channel","member"}`).

use std::sync::{Arc, LazyLock};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::access;
use super::framing::write_json;
use super::streams::{self, Ask};
use super::transports::Routes;
use crate::hub::{Farewell, Framing, Message, Subscription, Transport};
use crate::node::presence::Style;
use crate::node::web::PeerAddr;
use crate::node::Node;

pub const ROUTES: Routes = Routes {
    transport: Transport::Sse,
    prefix: "/sse/",
    router,
    cross_origin: true,
};

fn router() -> Router<Arc<Node>> {
    Router::new().route("/sse/{*specs}", get(handler))
}

/// Server-Sent Events: `id: <id>` and one `data:` line of JSON per message.
pub struct Sse;

/// The one instance every SSE subscriber shares, so that a message is
/// rendered once for all of them.
pub static FRAMING: LazyLock<Arc<dyn Framing>> = LazyLock::new(|| Arc::new(Sse));

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
            Farewell::TokenExpired => b"event: close\ndata: token expired\n\n",
        }
    }
}

#[derive(Deserialize)]
pub struct SseQuery {
    hostid: Option<String>,
    token: Option<String>,
    #[serde(rename = "lastEventId")]
    last_event_id: Option<u64>,
    /// `1`: also send presence.
    presence: Option<String>,
}

pub async fn handler(
    State(node): State<Arc<Node>>,
    PeerAddr(peer): PeerAddr,
    Query(query): Query<SseQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let header_resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let ask = Ask {
        transport: Transport::Sse,
        prefix: ROUTES.prefix,
        uri: &uri,
        headers: &headers,
        after: header_resume.or(query.last_event_id),
        host_id: query.hostid.as_deref(),
        token: query.token.as_deref(),
    };
    let (channels, granted) = match streams::channels(&node, ask, peer).await {
        Ok(allowed) => allowed,
        Err(response) => return response,
    };
    let hub = &node.hub;
    let subscriber = hub.new_subscriber(
        streams::subscriber_info(
            query.hostid.as_deref(),
            "sse",
            Transport::Sse,
            peer,
            &granted,
        ),
        FRAMING.clone(),
        0,
    );
    let subscribed = hub.subscribe(
        Subscription {
            subscriber: subscriber.clone(),
            channels: &channels,
            persist: true,
            max_time: None,
            expires: access::expiry(&granted),
            merge_backlog: true,
        },
        // Reconnect after 3 s if the stream breaks.
        |_, out| out.extend_from_slice(b"retry: 3000\n\n"),
    );
    if let Err(refused) = subscribed {
        return streams::refused_by_hub(refused);
    }
    if matches!(query.presence.as_deref(), Some("1" | "true")) {
        for (name, _) in &channels {
            node.presence
                .watch(name.clone(), subscriber.clone(), Style::Sse);
        }
    }
    streams::response(subscriber, hub, "text/event-stream")
}
