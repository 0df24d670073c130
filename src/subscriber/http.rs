//! Everything on the subscriber port that is not a legacy request goes to
//! an axum router, served by hyper on the same connection: the transports
//! of `transports.rs`, `/healthz`, and the routes another front end mounts
//! on this port (the HTTP API). The bytes the router peeked at are
//! replayed first.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::transports::ROUTED;
use crate::config::Config;
use crate::node::web::{error, hsts_layer, serve_http, PeerAddr};
use crate::node::Node;
use crate::tls::Conn;

/// Routes of another front end served on this port (the HTTP API), and
/// the path prefixes they own.
#[derive(Clone)]
pub struct Mounted {
    pub router: Router<Arc<Node>>,
    pub prefixes: &'static [&'static str],
}

/// The routes served by hyper.
pub fn router(node: Arc<Node>, peer: SocketAddr, tls: bool, mounted: &Mounted) -> Router {
    let config = node.config.load();
    let mut routes = Router::new().route("/healthz", get(healthz));
    for transport in ROUTED {
        let router = (transport.router)();
        routes = routes.merge(if transport.cross_origin {
            router.layer(cors(&config))
        } else {
            router
        });
    }
    routes
        .merge(mounted.router.clone())
        .fallback(not_found)
        .layer(Extension(PeerAddr(Some(peer))))
        .layer(hsts_layer(tls, config.hsts_max_age))
        .with_state(node)
}

/// Does this path belong to the router (never to static files)?
pub fn is_routed(path: &str, mounted: &Mounted) -> bool {
    path.starts_with("/healthz")
        || ROUTED.iter().any(|t| path.starts_with(t.prefix))
        || mounted.prefixes.iter().any(|p| path.starts_with(p))
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

async fn healthz(State(node): State<Arc<Node>>) -> (StatusCode, &'static str) {
    if node.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

/// Serve one connection with hyper, replaying `prefix` first.
pub async fn serve(
    stream: Conn,
    peer: SocketAddr,
    prefix: Bytes,
    node: Arc<Node>,
    mounted: &Mounted,
) {
    let router = router(node.clone(), peer, stream.is_tls(), mounted);
    let io = Rewind {
        prefix,
        inner: stream,
    };
    serve_http(io, router, &node.shutdown).await
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
