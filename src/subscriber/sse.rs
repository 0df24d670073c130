//! `GET /sse/<channel specs>`: Server-Sent Events.
//!
//! Channel specs are the legacy ones (`name`, `name.r<id>`, `name.b<n>`,
//! `name.h`). A reconnecting EventSource sends `Last-Event-ID: <id>` (or a
//! page passes `?lastEventId=<id>`): every channel then resumes after that
//! id, which is exact because ids are global and delivered in order.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::access::{check, Refusal};
use super::body::OutboxBody;
use super::http::{bad_request, subscriber_info, PeerAddr};
use super::push::parse_channel_spec;
use crate::hub::{Start, Subscription};
use crate::server::Shared;

#[derive(Deserialize)]
pub struct SseQuery {
    hostid: Option<String>,
    token: Option<String>,
    #[serde(rename = "lastEventId")]
    last_event_id: Option<u64>,
}

/// Parse the channel specs after a route prefix, with every start replaced
/// by "after `resume`" when one is given. No %-decoding, as in `/push`.
pub fn channels_from_path(
    path: &str,
    prefix: &str,
    resume: Option<Start>,
) -> Vec<(bytes::Bytes, Start)> {
    path.strip_prefix(prefix)
        .unwrap_or_default()
        .split('/')
        .filter_map(parse_channel_spec)
        .map(|(name, start)| (name, resume.unwrap_or(start)))
        .collect()
}

/// Where "after id N" starts. An id this server never handed out means it
/// restarted without its history (persistence off): send all it has.
pub fn resume_after(id: u64, hub: &crate::hub::Hub) -> Start {
    if id >= hub.next_message_id() {
        Start::All
    } else {
        Start::FromId(id + 1)
    }
}

/// The HTTP answer to a refused subscription.
pub fn refused(refusal: Refusal) -> Response {
    let status = match refusal {
        Refusal::Transport(_) => StatusCode::FORBIDDEN,
        Refusal::Token(_) => StatusCode::UNAUTHORIZED,
    };
    super::http::error(status, refusal.message())
}

/// A host id is letters and digits, as in `/push`.
pub fn valid_host_id(host_id: &str) -> bool {
    !host_id.is_empty() && host_id.len() <= 64 && host_id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub async fn handler(
    State(shared): State<Arc<Shared>>,
    PeerAddr(peer): PeerAddr,
    Query(query): Query<SseQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let header_resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let resume = header_resume
        .or(query.last_event_id)
        .map(|id| resume_after(id, &shared.hub));
    let channels = channels_from_path(uri.path(), "/sse/", resume);
    if channels.is_empty() {
        return bad_request("no valid channel in the request path");
    }
    if let Some(host_id) = &query.hostid {
        if !valid_host_id(host_id) {
            return bad_request("hostid must be 1 to 64 letters and digits");
        }
    }
    let token = query.token.clone().or_else(|| crate::api::bearer(&headers));
    if let Err(refusal) = check(&shared, channels.iter().map(|(n, _)| n), "sse", token).await {
        return refused(refusal);
    }
    let hub = &shared.hub;
    let subscriber = hub.new_subscriber(
        subscriber_info(query.hostid.as_deref(), "sse", "sse", peer),
        shared.framings.sse.clone(),
        0,
    );
    hub.subscribe(
        Subscription {
            subscriber: subscriber.clone(),
            channels: &channels,
            persist: true,
            max_time: None,
            merge_backlog: true,
        },
        // Reconnect after 3 s if the stream breaks.
        |_, out| out.extend_from_slice(b"retry: 3000\n\n"),
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        axum::body::Body::new(OutboxBody::new(subscriber, hub.clone())),
    )
        .into_response()
}
