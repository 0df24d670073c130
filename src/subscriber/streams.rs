//! What the HTTP streaming transports (SSE, long-poll) share: reading the
//! channel specs of the path, resuming after an id, checking the channel
//! rules, and the streaming response fed by the subscriber's outbox.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::access;
use super::body::OutboxBody;
use super::push::parse_channel_spec;
use crate::hub::{self, Hub, Start, Subscriber, SubscriberInfo, Transport};
use crate::names::valid_host_id;
use crate::node::access::{Denied, Granted};
use crate::node::web::{bad_request, error};
use crate::node::Node;

/// What a streaming request asks for, before it is checked.
pub struct Ask<'a> {
    pub transport: Transport,
    /// The route's prefix, before the channel specs (`/sse/`).
    pub prefix: &'a str,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// Resume every channel after this id.
    pub after: Option<u64>,
    pub host_id: Option<&'a str>,
    /// A token in the query string (else the bearer header's).
    pub token: Option<&'a str>,
}

/// The channels a streaming request may subscribe to and what it was
/// granted, or the answer that refuses it.
pub async fn channels(
    node: &Arc<Node>,
    ask: Ask<'_>,
    peer: Option<SocketAddr>,
) -> Result<(Vec<(Bytes, Start)>, Granted), Response> {
    let resume = ask.after.map(|id| resume_after(id, &node.hub));
    let cap = node.config.load().max_channels_per_subscription;
    let channels = channels_from_path(ask.uri.path(), ask.prefix, resume, cap + 1);
    if channels.is_empty() {
        return Err(bad_request("no valid channel in the request path"));
    }
    if channels.len() > cap {
        return Err(bad_request(&format!(
            "a subscription names at most {cap} channels"
        )));
    }
    if ask.host_id.is_some_and(|h| !valid_host_id(h)) {
        return Err(bad_request("hostid must be 1 to 64 letters and digits"));
    }
    let credentials = access::credentials(
        ask.token.map(str::to_string),
        ask.headers,
        ask.host_id,
        peer,
    );
    let names: Vec<&Bytes> = channels.iter().map(|(n, _)| n).collect();
    let granted = node
        .admit(&names, ask.transport, &credentials)
        .await
        .map_err(refused)?;
    Ok((channels, granted))
}

/// Parse the channel specs after a route prefix, with every start replaced
/// by "after `resume`" when one is given. No %-decoding, as in `/push`.
/// At most `most` of them are read.
pub fn channels_from_path(
    path: &str,
    prefix: &str,
    resume: Option<Start>,
    most: usize,
) -> Vec<(Bytes, Start)> {
    path.strip_prefix(prefix)
        .unwrap_or_default()
        .split('/')
        .filter_map(parse_channel_spec)
        .take(most)
        .map(|(name, start)| (name, resume.unwrap_or(start)))
        .collect()
}

/// Where "after id N" starts. An id this server never handed out means it
/// restarted without its history (persistence off): send all it has.
pub fn resume_after(id: u64, hub: &Hub) -> Start {
    if id >= hub.next_message_id() {
        Start::All
    } else {
        Start::FromId(id + 1)
    }
}

/// The HTTP answer to a refused subscription: 401 without a valid
/// credential, 403 with one that does not cover the channel.
pub fn refused(denied: Denied) -> Response {
    let status = match denied {
        Denied::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Denied::Transport(_) | Denied::Forbidden(_) => StatusCode::FORBIDDEN,
    };
    let mut response = error(status, denied.message());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// The HTTP answer to a subscription the hub refused.
pub fn refused_by_hub(refused: hub::Refused) -> Response {
    let status = match refused {
        hub::Refused::ChannelLimit => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, &refused.to_string())
}

/// Facts about a subscriber for logs, stats and the admin UI.
pub fn subscriber_info(
    host_id: Option<&str>,
    mode: &str,
    transport: Transport,
    peer: Option<SocketAddr>,
    granted: &Granted,
) -> SubscriberInfo {
    SubscriberInfo {
        host_id: host_id.map(|h| Bytes::copy_from_slice(h.as_bytes())),
        mode: mode.to_string(),
        transport,
        credential: granted.credential,
        user: granted.user.clone(),
        peer,
        since: SystemTime::now(),
    }
}

/// A streaming response fed by `subscriber`'s outbox until it finishes.
pub fn response(
    subscriber: Arc<Subscriber>,
    hub: &Arc<Hub>,
    content_type: &'static str,
) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            // Proxies such as nginx must not hold the stream back.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        axum::body::Body::new(OutboxBody::new(subscriber, hub.clone())),
    )
        .into_response()
}
