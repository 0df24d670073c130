//! `GET /poll/<channel specs>?after=<id>&timeout=<s>`: long-poll returning
//! newline-delimited JSON, for browsers without WebSocket or EventSource.
//!
//! It answers as soon as there is at least one message: the whole backlog
//! the specs (or `after`) ask for, or else the next live message; with
//! nothing by `timeout` seconds (default 25), an empty body. `timeout=0`
//! answers at once with whatever there is.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

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
use crate::hub::{Framing, Message, Subscription, Transport};
use crate::node::web::PeerAddr;
use crate::node::Node;

pub const ROUTES: Routes = Routes {
    transport: Transport::Poll,
    prefix: "/poll/",
    router,
    cross_origin: true,
};

fn router() -> Router<Arc<Node>> {
    Router::new().route("/poll/{*specs}", get(handler))
}

/// Longest wait a client may ask for.
const MAX_TIMEOUT: u64 = 300;

/// Long-poll: newline-delimited JSON, no pings.
pub struct Poll;

/// The one instance every long-poll subscriber shares.
pub static FRAMING: LazyLock<Arc<dyn Framing>> = LazyLock::new(|| Arc::new(Poll));

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

#[derive(Deserialize)]
pub struct PollQuery {
    after: Option<u64>,
    timeout: Option<u64>,
    token: Option<String>,
}

pub async fn handler(
    State(node): State<Arc<Node>>,
    PeerAddr(peer): PeerAddr,
    Query(query): Query<PollQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let ask = Ask {
        transport: Transport::Poll,
        prefix: ROUTES.prefix,
        uri: &uri,
        headers: &headers,
        after: query.after,
        host_id: None,
        token: query.token.as_deref(),
    };
    let (channels, granted) = match streams::channels(&node, ask, peer).await {
        Ok(allowed) => allowed,
        Err(response) => return response,
    };
    // timeout=0: answer at once with what there is.
    let timeout = query.timeout.unwrap_or(25).min(MAX_TIMEOUT);
    let hub = &node.hub;
    let subscriber = hub.new_subscriber(
        streams::subscriber_info(None, "poll", Transport::Poll, peer, &granted),
        FRAMING.clone(),
        1,
    );
    let subscribed = hub.subscribe(
        Subscription {
            subscriber: subscriber.clone(),
            channels: &channels,
            persist: timeout > 0,
            max_time: Some(Duration::from_secs(timeout)),
            expires: access::expiry(&granted),
            merge_backlog: true,
        },
        |_, _| {},
    );
    if let Err(refused) = subscribed {
        return streams::refused_by_hub(refused);
    }
    streams::response(subscriber, hub, "application/x-ndjson")
}
