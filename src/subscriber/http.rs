//! Everything on the subscriber port that is not a legacy request goes to
//! an axum router, served by hyper on the same connection. The bytes the
//! router peeked at are replayed first.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::hub::SubscriberInfo;
use crate::server::Shared;
use crate::tls::Conn;

/// The routes served by hyper.
pub fn router(shared: Arc<Shared>, peer: SocketAddr, tls: bool) -> Router {
    let config = shared.config.load();
    let streams = Router::new()
        .route("/sse/{*specs}", get(super::sse::handler))
        .route("/poll/{*specs}", get(super::poll::handler))
        .layer(cors(&config));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/ws", get(super::ws::handler))
        .merge(streams)
        .merge(crate::api::router())
        .fallback(not_found)
        .layer(Extension(PeerAddr(Some(peer))))
        .layer(crate::tls::hsts_layer(tls, config.hsts_max_age))
        .with_state(shared)
}

/// Cross-origin reads of the streams, as AllowOrigin says.
fn cors(config: &Config) -> CorsLayer {
    let origin = match &config.allow_origin {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok())),
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET])
        .allow_headers([axum::http::header::HeaderName::from_static("last-event-id")])
        .max_age(Duration::from_secs(3600))
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

/// Facts about a subscriber of a modern transport.
pub fn subscriber_info(
    host_id: Option<&str>,
    mode: &str,
    transport: &'static str,
    peer: Option<SocketAddr>,
) -> SubscriberInfo {
    SubscriberInfo {
        host_id: host_id.map(|h| Bytes::copy_from_slice(h.as_bytes())),
        mode: mode.to_string(),
        transport,
        peer,
        since: SystemTime::now(),
    }
}

/// A JSON error body: `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

pub fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

async fn healthz(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    let status = if shared.shutdown.is_cancelled() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        format!(
            "{}\n",
            if status.is_success() {
                "ok"
            } else {
                "shutting down"
            }
        ),
    )
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

/// Serve one connection with hyper, replaying `prefix` first.
pub async fn serve(stream: Conn, peer: SocketAddr, prefix: Bytes, shared: Arc<Shared>) {
    let router = router(shared.clone(), peer, stream.is_tls());
    let io = Rewind {
        prefix,
        inner: stream,
    };
    crate::server::serve_http(io, router, &shared.shutdown).await
}

/// A stream that yields some already-read bytes before the socket's.
struct Rewind {
    prefix: Bytes,
    inner: Conn,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
