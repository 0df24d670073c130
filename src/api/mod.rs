//! The HTTP API on the subscriber port: publish and inspect channels with
//! an API token, read stats, and `/metrics` for Prometheus.
//!
//! | route | does |
//! |---|---|
//! | `POST /api/channels/{name}/messages` | publish the body (text, or JSON `{"text": ..}`) → `201 {"id", "channel"}` |
//! | `GET /api/channels` | every channel with its counts |
//! | `GET /api/channels/{name}` | one channel and its cached messages |
//! | `DELETE /api/channels/{name}/messages` | empty its cache → `{"cleared": n}` |
//! | `GET /api/stats` | uptime, counters, subscribers by transport |
//! | `GET /metrics` | Prometheus text format (see the `Metrics` setting) |
//!
//! Every `/api` route needs `Authorization: Bearer <token>` with a token
//! made in the admin UI; errors are JSON `{"error": ".."}` with a status.

mod metrics;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use crate::names::{valid_channel_name, CHANNEL_NAME_RULE};
use crate::node::stats::stats_json;
use crate::node::web::{bearer, error, valid_token};
use crate::node::{Node, PublishError, MAX_TEXT};

/// The path prefixes the API owns on the subscriber port.
pub const PREFIXES: &[&str] = &["/api/", "/metrics"];

/// The `/api` routes and `/metrics`, to mount on the subscriber port.
pub fn router() -> Router<Arc<Node>> {
    Router::new()
        .route("/api/channels", get(list_channels))
        .route("/api/channels/{name}", get(channel))
        .route(
            "/api/channels/{name}/messages",
            axum::routing::post(publish).delete(clear),
        )
        .route("/api/stats", get(stats))
        .route("/metrics", get(metrics::handler))
        .layer(DefaultBodyLimit::max(MAX_TEXT))
}

/// A request that carried a valid API token.
pub struct ApiToken;

impl FromRequestParts<Arc<Node>> for ApiToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, node: &Arc<Node>) -> Result<Self, Response> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"error": "an API token is required: Authorization: Bearer <token>"})),
            )
                .into_response()
        })?;
        if valid_token(node, token).await? {
            Ok(ApiToken)
        } else {
            Err(error(
                StatusCode::UNAUTHORIZED,
                "that API token is not valid",
            ))
        }
    }
}

async fn publish(
    _: ApiToken,
    State(node): State<Arc<Node>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !valid_channel_name(&name) {
        return error(StatusCode::BAD_REQUEST, CHANNEL_NAME_RULE);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = if is_json {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(object)) => match object.get("text") {
                Some(serde_json::Value::String(text)) => Bytes::from(text.clone()),
                _ => return error(StatusCode::BAD_REQUEST, "expected {\"text\": \"...\"}"),
            },
            _ => return error(StatusCode::BAD_REQUEST, "expected {\"text\": \"...\"}"),
        }
    } else {
        body
    };
    let id = match node.publish(name.as_bytes(), &text).await {
        Ok(id) => id,
        Err(e @ PublishError::TooLong) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
        }
        Err(e @ PublishError::BadChannel) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "channel": name})),
    )
        .into_response()
}

#[derive(Serialize)]
struct ChannelRow {
    name: String,
    messages: usize,
    subscribers: usize,
    last_id: Option<u64>,
}

async fn list_channels(_: ApiToken, State(node): State<Arc<Node>>) -> Response {
    let rows: Vec<ChannelRow> = node
        .list_channels()
        .into_iter()
        .map(|c| ChannelRow {
            name: String::from_utf8_lossy(&c.name).into_owned(),
            messages: c.messages,
            subscribers: c.subscribers,
            last_id: c.last_id,
        })
        .collect();
    Json(rows).into_response()
}

async fn channel(_: ApiToken, State(node): State<Arc<Node>>, Path(name): Path<String>) -> Response {
    let Some(summary) = node
        .list_channels()
        .into_iter()
        .find(|c| c.name.as_ref() == name.as_bytes())
    else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    let messages: Vec<serde_json::Value> = node
        .hub
        .messages(name.as_bytes())
        .iter()
        .map(|m| json!({"id": m.id, "text": String::from_utf8_lossy(&m.text), "ts": m.timestamp}))
        .collect();
    Json(json!({
        "name": name,
        "subscribers": summary.subscribers,
        "last_id": summary.last_id,
        "messages": messages,
    }))
    .into_response()
}

async fn clear(_: ApiToken, State(node): State<Arc<Node>>, Path(name): Path<String>) -> Response {
    match node.clear_channel(name.as_bytes()).await {
        Ok(Some(cleared)) => Json(json!({"cleared": cleared})).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such channel"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn stats(_: ApiToken, State(node): State<Arc<Node>>) -> Response {
    Json(stats_json(&node)).into_response()
}
