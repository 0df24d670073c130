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

use crate::control::MAX_LINE;
use crate::hub::Stat;
use crate::server::Shared;
use crate::subscriber::http::error;

/// The `/api` routes and `/metrics`.
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/channels", get(list_channels))
        .route("/api/channels/{name}", get(channel))
        .route(
            "/api/channels/{name}/messages",
            axum::routing::post(publish).delete(clear),
        )
        .route("/api/stats", get(stats))
        .route("/metrics", get(metrics::handler))
        .layer(DefaultBodyLimit::max(MAX_LINE))
}

/// A request that carried a valid API token.
pub struct ApiToken;

impl FromRequestParts<Arc<Shared>> for ApiToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self, Response> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"error": "an API token is required: Authorization: Bearer <token>"})),
            )
                .into_response()
        })?;
        if valid_token(shared, token).await? {
            Ok(ApiToken)
        } else {
            Err(error(
                StatusCode::UNAUTHORIZED,
                "that API token is not valid",
            ))
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Check a token against the database (off the async threads).
pub async fn valid_token(shared: &Arc<Shared>, token: String) -> Result<bool, Response> {
    let Some(accounts) = shared.accounts.clone() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable, so no token can be checked",
        ));
    };
    tokio::task::spawn_blocking(move || accounts.check_token(&token))
        .await
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "token check failed"))?
        .map_err(|e| {
            tracing::error!("checking an API token: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable",
            )
        })
}

async fn publish(
    _: ApiToken,
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !crate::hub::valid_channel_name(&name) {
        return error(StatusCode::BAD_REQUEST, crate::hub::CHANNEL_NAME_RULE);
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
    if shared.hub.paused() {
        return error(StatusCode::SERVICE_UNAVAILABLE, crate::hub::PAUSED);
    }
    let id = match shared.publish(name.as_bytes(), text).await {
        Ok(id) => id,
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

async fn list_channels(_: ApiToken, State(shared): State<Arc<Shared>>) -> Response {
    let rows: Vec<ChannelRow> = shared
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

async fn channel(
    _: ApiToken,
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    let Some(summary) = shared
        .list_channels()
        .into_iter()
        .find(|c| c.name.as_ref() == name.as_bytes())
    else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    let messages: Vec<serde_json::Value> = shared
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

async fn clear(
    _: ApiToken,
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match shared.clear_channel(name.as_bytes()).await {
        Ok(Some(cleared)) => Json(json!({"cleared": cleared})).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such channel"),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn stats(_: ApiToken, State(shared): State<Arc<Shared>>) -> Response {
    Json(stats_json(&shared)).into_response()
}

/// Uptime, counters and live subscribers, as JSON.
pub fn stats_json(shared: &Shared) -> serde_json::Value {
    let hub = &shared.hub;
    let counters: serde_json::Map<String, serde_json::Value> = Stat::ALL
        .iter()
        .map(|s| (s.name().to_string(), json!(hub.stats.get(*s))))
        .collect();
    let mut stats = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime": hub.uptime(),
        "channels": shared.channel_count(),
        "next_message_id": hub.next_message_id(),
        "subscribers_by_transport": hub.subscribers_by_transport(),
        "counters": counters,
        "engine": shared.config.load().engine.to_string(),
    });
    if let Some(cluster) = shared.engine.cluster() {
        stats["cluster"] = cluster_json(cluster);
    }
    stats
}

/// The nodes sharing the redis engine, and this node's link to Redis.
fn cluster_json(cluster: &crate::cluster::Cluster) -> serde_json::Value {
    let view = cluster.view();
    let link = cluster.link();
    let totals: serde_json::Map<String, serde_json::Value> = cluster
        .counters()
        .into_iter()
        .map(|(s, v)| (s.name().to_string(), json!(v)))
        .collect();
    json!({
        "node": cluster.node,
        "redis": {"url": cluster.url, "connected": link.connected, "last_error": link.last_error},
        "counters": totals,
        "nodes": view.nodes.iter().map(|n| json!({
            "name": n.name,
            "self": n.is_self,
            "up": n.up,
            "last_seen_ms": n.last_seen_ms,
            "subscribers": n.info.as_ref().map(|i| i.subscribers),
            "uptime": n.info.as_ref().map(|i| i.uptime),
            "next_message_id": n.info.as_ref().map(|i| i.next_id),
            "subscriber_address": n.info.as_ref().map(|i| i.subscriber.clone()),
            "control_address": n.info.as_ref().map(|i| i.control.clone()),
        })).collect::<Vec<_>>(),
    })
}
