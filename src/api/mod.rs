//! The HTTP API on the subscriber port: publish, read and manage channels
//! with an API token, and `/metrics` for Prometheus.
//!
//! | route | scope | does |
//! |---|---|---|
//! | `POST /api/channels/{name}/messages` | publish | publish the body (text, or JSON `{"text": ..}`) → `201 {"id", "channel"}` |
//! | `GET /api/channels/{name}` | subscribe or manage | one channel and its cached messages |
//! | `GET /api/channels/{name}/presence` | subscribe or manage | its members (every node), with their connections |
//! | `GET /api/channels` | manage | every channel with its counts |
//! | `DELETE /api/channels/{name}/messages` | manage | empty its cache → `{"cleared": n}` |
//! | `GET /api/stats` | manage | uptime, counters, subscribers by transport |
//! | `GET /api/rules`, `PUT /api/rules/{pattern}`, `DELETE /api/rules/{pattern}` | manage | channel rules |
//! | `GET /api/private-channels`, `PUT /api/private-channels` | manage | the `PrivateChannels` patterns |
//! | `GET /metrics` | manage (or local, see `Metrics`) | Prometheus text format |
//!
//! Every `/api` route needs `Authorization: Bearer <token>` with a token
//! made in the admin UI, whose scopes and channel patterns cover the
//! request: `401` without a valid token, `403` with one that does not
//! cover it. Errors are JSON `{"error": ".."}`.

mod channels;
mod manage;
mod metrics;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;

use crate::node::web::{bearer, error, token_rights};
use crate::node::{Node, MAX_TEXT};
use crate::store::accounts::{Scope, TokenRights};

/// The path prefixes the API owns on the subscriber port.
pub const PREFIXES: &[&str] = &["/api/", "/metrics"];

/// The `/api` routes and `/metrics`, to mount on the subscriber port.
pub fn router() -> Router<Arc<Node>> {
    Router::new()
        .route("/api/channels", get(channels::list))
        .route("/api/channels/{name}", get(channels::show))
        .route("/api/channels/{name}/presence", get(channels::presence))
        .route(
            "/api/channels/{name}/messages",
            axum::routing::post(channels::publish).delete(channels::clear),
        )
        .route("/api/stats", get(manage::stats))
        .route("/api/rules", get(manage::rules))
        .route(
            "/api/rules/{pattern}",
            put(manage::put_rule).delete(manage::delete_rule),
        )
        .route(
            "/api/private-channels",
            get(manage::private_channels).put(manage::put_private_channels),
        )
        .route("/metrics", get(metrics::handler))
        .layer(DefaultBodyLimit::max(MAX_TEXT))
}

/// A request that carried a valid API token, with what the token may do.
pub struct ApiToken(pub TokenRights);

impl ApiToken {
    /// Refuse (403) unless the token has `scope`.
    #[allow(clippy::result_large_err)]
    pub fn require(&self, scope: Scope) -> Result<(), Response> {
        if self.0.may(scope) {
            Ok(())
        } else {
            Err(forbidden(&format!(
                "this API token has no '{}' scope",
                scope.name()
            )))
        }
    }

    /// Refuse (403) unless the token has `scope` on `channel`.
    #[allow(clippy::result_large_err)]
    pub fn require_on(&self, scope: Scope, channel: &str) -> Result<(), Response> {
        self.require(scope)?;
        if self.0.may_on(scope, channel.as_bytes()) {
            Ok(())
        } else {
            Err(forbidden(&format!(
                "this API token's channels do not include '{channel}'"
            )))
        }
    }
}

fn forbidden(message: &str) -> Response {
    error(StatusCode::FORBIDDEN, message)
}

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
        match token_rights(node, token).await? {
            Some(rights) => Ok(ApiToken(rights)),
            None => Err(error(
                StatusCode::UNAUTHORIZED,
                "that API token is not valid",
            )),
        }
    }
}
