//! The subscriber port. Each connection's request line decides its path:
//!
//! - `GET <prefix>/<hostid>/<mode>/<channels>` and `GET /disconnect/<id>`:
//!   legacy subscriptions, answered with raw template bytes ([`push`]);
//! - other `GET`s outside the reserved prefixes: static files, with
//!   meteord's header bytes ([`static_files`]);
//! - everything else (other methods, `/healthz` and the newer endpoints):
//!   hyper + axum ([`http`]).

pub mod access;
pub mod body;
pub mod framing;
pub mod http;
pub mod poll;
pub mod push;
pub mod request;
pub mod sse;
pub mod static_files;
pub mod writer;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use crate::hub::Stat;
use crate::server::{accept_loop, Shared};
use crate::tls::{Conn, Tls};
use request::{HeadError, RequestLine};

/// Paths that always go to the HTTP router, never to static files.
const ROUTED_PREFIXES: &[&str] = &["/healthz", "/api/", "/metrics", "/sse/", "/ws", "/poll/"];

/// Accept subscribers until shutdown; over TLS when `tls` is given.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: Option<Arc<Tls>>) {
    accept_loop(
        "subscriber",
        listener,
        shared,
        move |stream, peer, shared| connection(stream, peer, shared, tls.clone()),
    )
    .await
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<Arc<Tls>>,
) {
    let stats = &shared.hub.stats;
    stats.incr(Stat::TotalRequests);
    stats.incr(Stat::CurrentSubscribers);
    stats.incr(Stat::SubscriberConnectionsAccepted);
    let _ = stream.set_nodelay(true);
    let (max, per_ip) = {
        let config = shared.config.load();
        (
            config.max_subscriber_connections,
            config.max_connections_per_ip,
        )
    };
    let slot = shared.clients.enter(peer.ip());
    let over_limit = (max > 0 && stats.get(Stat::CurrentSubscribers) > max)
        || (per_ip > 0 && slot.count() > per_ip);
    match (tls, over_limit) {
        // No handshake work for a client that will be refused anyway.
        (Some(_), true) => stats.incr(Stat::ErrorsServed),
        (None, true) => respond_raw(&mut Conn::Plain(stream), UNAVAILABLE, &shared).await,
        (Some(tls), false) => {
            if let Some(conn) = tls.accept(stream, peer, &shared.shutdown).await {
                route(conn, peer, &shared).await;
            }
        }
        (None, false) => route(Conn::Plain(stream), peer, &shared).await,
    }
    drop(slot);
    shared.hub.stats.decr(Stat::CurrentSubscribers);
}

/// Read the request line, then hand the connection to its handler.
async fn route(mut stream: Conn, peer: SocketAddr, shared: &Arc<Shared>) {
    let stats = &shared.hub.stats;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let mut reader = request::HeadReader {
            stream: &mut stream,
            shutdown: &shared.shutdown,
        };
        let line_end = match reader.request_line(&mut buf).await {
            Ok((end, n)) => {
                stats.add(Stat::TotalInboundBytes, n);
                end
            }
            Err(e) => return refuse(&mut stream, e, shared).await,
        };
        let Some(RequestLine { method, target }) = request::parse_request_line(&buf[..line_end])
        else {
            return respond_raw(&mut stream, BAD_REQUEST, shared).await;
        };
        let config = shared.config.load();
        let is_get = method == "GET";
        let routed = ROUTED_PREFIXES.iter().any(|p| target.starts_with(p));
        if !is_get || routed {
            return http::serve(stream, peer, buf.freeze(), shared.clone()).await;
        }
        // A legacy GET: read the whole head first, as meteord did.
        let target = target.to_string();
        let mut reader = request::HeadReader {
            stream: &mut stream,
            shutdown: &shared.shutdown,
        };
        let head_len = match reader.head(&mut buf).await {
            Ok((end, n)) => {
                stats.add(Stat::TotalInboundBytes, n);
                end
            }
            Err(e) => return refuse(&mut stream, e, shared).await,
        };
        if let Some(push) = request::parse_push_target(&target, &config.dynamic_page_address) {
            let user_agent = request::header(&buf[..head_len], "User-Agent").map(str::to_string);
            // Nothing of the request is needed while the subscription streams.
            drop(buf);
            drop(config);
            return push::subscribe(
                stream,
                shared.clone(),
                push,
                user_agent.as_deref(),
                Some(peer),
            )
            .await;
        }
        if let Some(host_id) = target
            .strip_prefix("/disconnect/")
            .filter(|h| !h.is_empty())
        {
            return push::disconnect(stream, shared.clone(), host_id).await;
        }
        let path = target.split('?').next().unwrap_or_default();
        if serve_document(&mut stream, path, shared, &config)
            .await
            .is_err()
        {
            return;
        }
        // meteord answered one request per connection; pipelined requests
        // already received are answered too, then the connection closes.
        buf.advance(head_len);
        if buf.is_empty() {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

async fn serve_document(
    stream: &mut Conn,
    path: &str,
    shared: &Shared,
    config: &crate::config::Config,
) -> std::io::Result<()> {
    let stats = &shared.hub.stats;
    let doc = shared.documents.lookup(config, path);
    let mut response = match &doc {
        Some(doc) => {
            stats.incr(Stat::DocumentsServed);
            info!(
                event = "document",
                path,
                size = doc.body.len(),
                status = 200
            );
            let html = doc.content_type == "text/html";
            static_files::response_head("200 OK", doc.content_type, doc.body.len(), html)
        }
        None => {
            stats.incr(Stat::DocumentsNotFound);
            info!(event = "document", path, size = 0, status = 404);
            static_files::response_head("404 Not Found", "text/html", 0, false)
        }
    };
    if stream.is_tls() && config.hsts_max_age > 0 {
        static_files::add_hsts(&mut response, config.hsts_max_age);
    }
    if let Some(doc) = &doc {
        response.extend_from_slice(&doc.body);
    }
    stream.write_all(&response).await?;
    stream.flush().await?;
    stats.add(Stat::TotalOutboundBytes, response.len() as u64);
    Ok(())
}

const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";
const URI_TOO_LONG: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";
const HEAD_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";
const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";
const TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";

async fn refuse(stream: &mut Conn, error: HeadError, shared: &Shared) {
    debug!(?error, "request refused");
    let response = match error {
        HeadError::Closed => return,
        HeadError::TimedOut => TIMEOUT,
        HeadError::LineTooLong => URI_TOO_LONG,
        HeadError::HeadTooLarge => HEAD_TOO_LARGE,
    };
    respond_raw(stream, response, shared).await;
}

async fn respond_raw(stream: &mut Conn, response: &[u8], shared: &Shared) {
    shared.hub.stats.incr(Stat::ErrorsServed);
    if stream.write_all(response).await.is_ok() {
        shared
            .hub
            .stats
            .add(Stat::TotalOutboundBytes, response.len() as u64);
    }
    let _ = stream.shutdown().await;
}
