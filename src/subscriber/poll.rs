//! `GET /poll/<channel specs>?after=<id>&timeout=<s>`: long-poll returning
//! newline-delimited JSON, for browsers without WebSocket or EventSource.
//!
//! It answers as soon as there is at least one message: the whole backlog
//! the specs (or `after`) ask for, or else the next live message; with
//! nothing by `timeout` seconds (default 25), an empty body. `timeout=0`
//! answers at once with whatever there is.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::access::check;
use super::body::OutboxBody;
use super::http::{bad_request, subscriber_info, PeerAddr};
use super::sse::{channels_from_path, refused, resume_after};
use crate::hub::Subscription;
use crate::server::Shared;

/// Longest wait a client may ask for.
const MAX_TIMEOUT: u64 = 300;

#[derive(Deserialize)]
pub struct PollQuery {
    after: Option<u64>,
    timeout: Option<u64>,
    token: Option<String>,
}

pub async fn handler(
    State(shared): State<Arc<Shared>>,
    PeerAddr(peer): PeerAddr,
    Query(query): Query<PollQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let resume = query.after.map(|id| resume_after(id, &shared.hub));
    let channels = channels_from_path(uri.path(), "/poll/", resume);
    if channels.is_empty() {
        return bad_request("no valid channel in the request path");
    }
    let token = query.token.clone().or_else(|| crate::api::bearer(&headers));
    if let Err(refusal) = check(&shared, channels.iter().map(|(n, _)| n), "poll", token).await {
        return refused(refusal);
    }
    // timeout=0: answer at once with what there is.
    let timeout = query.timeout.unwrap_or(25).min(MAX_TIMEOUT);
    let hub = &shared.hub;
    let subscriber = hub.new_subscriber(
        subscriber_info(None, "poll", "poll", peer),
        shared.framings.poll.clone(),
        1,
    );
    hub.subscribe(
        Subscription {
            subscriber: subscriber.clone(),
            channels: &channels,
            persist: timeout > 0,
            max_time: Some(Duration::from_secs(timeout)),
            merge_backlog: true,
        },
        |_, _| {},
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::new(OutboxBody::new(subscriber, hub.clone())),
    )
        .into_response()
}
