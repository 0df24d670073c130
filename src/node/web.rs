//! What the HTTP front ends (subscriber port, API, admin UI) share:
//! serving one connection with hyper, JSON errors, the client's address,
//! bearer tokens and their check, and the HSTS header.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

use super::Node;

/// The largest request head the HTTP front ends read.
pub const MAX_HEAD: usize = 64 * 1024;

/// Serve HTTP/1.1 on one connection with `router` until the client leaves,
/// or shutdown comes and its current answer is done (a few seconds at most).
pub async fn serve_http<I>(io: I, router: axum::Router, shutdown: &CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let service = hyper_util::service::TowerToHyperService::new(router);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        }
    }
}

/// A JSON error body: `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

pub fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// The client's address, for logs and the admin UI.
#[derive(Clone, Copy)]
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<PeerAddr>()
            .copied()
            .unwrap_or(PeerAddr(None)))
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

/// Is this an API token made in the admin UI? Checked against the database
/// off the async threads; the error is the answer to give when no check
/// was possible.
pub async fn valid_token(node: &Arc<Node>, token: String) -> Result<bool, Response> {
    let Some(accounts) = node.accounts.clone() else {
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

/// Sets Strict-Transport-Security on a connection's answers: only over TLS,
/// and only with a max-age configured (HSTSMaxAge).
pub fn hsts_layer(tls: bool, max_age: u64) -> SetResponseHeaderLayer<Option<HeaderValue>> {
    let value = (tls && max_age > 0)
        .then(|| HeaderValue::from_str(&format!("max-age={max_age}")).ok())
        .flatten();
    SetResponseHeaderLayer::if_not_present(header::STRICT_TRANSPORT_SECURITY, value)
}
