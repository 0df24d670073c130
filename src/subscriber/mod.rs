//! The subscriber port. Each connection's request line decides its path:
//!
//! - `GET /.well-known/acme-challenge/<token>`: an ACME server checking
//!   that this server holds its name (HTTP-01, with `TLS acme`);
//! - `GET <prefix>/<hostid>/<mode>/<channels>` and `GET /disconnect/<id>`:
//!   legacy subscriptions, answered with raw template bytes ([`push`]);
//! - other `GET`s outside the routed prefixes: static files, with
//!   meteord's header bytes ([`static_files`]);
//! - everything else (other methods, `/healthz`, the newer transports of
//!   [`transports`] and the routes mounted here, such as the HTTP API):
//!   hyper + axum ([`http`]).

pub mod access;
pub mod body;
pub mod framing;
mod home;
pub mod http;
pub mod poll;
pub mod publisher;
pub mod push;
pub mod request;
pub mod sse;
pub mod static_files;
pub mod streams;
pub mod transports;
pub mod writer;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use crate::hub::Stat;
use crate::node::listen::{self, accept_loop, ClientSlot, Visit, SUBSCRIBER_PORT};
use crate::node::Node;
use crate::tls::challenges::{valid_token, HTTP_CHALLENGE_PREFIX};
use crate::tls::{Conn, Tls};
pub use http::Mounted;
use request::{HeadError, RequestLine};
use static_files::Documents;

/// What every connection of one subscriber listener shares.
struct Port {
    tls: Option<Arc<Tls>>,
    mounted: Mounted,
    documents: Documents,
}

/// Accept subscribers until shutdown; over TLS when `tls` is given.
/// `mounted` adds the routes of another front end (the HTTP API).
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    tls: Option<Arc<Tls>>,
    mounted: Mounted,
) {
    let port = Arc::new(Port {
        tls,
        mounted,
        documents: Documents::default(),
    });
    accept_loop("subscriber", listener, node, move |stream, peer, node| {
        connection(stream, peer, node, port.clone())
    })
    .await
}

/// A connection's task. Everything up to a streaming subscription runs in
/// a boxed future of its own, made before the task's future: its state is
/// large and freed before the stream starts, so the task of an idle
/// subscriber — there may be tens of thousands — holds only [`Held`] and
/// the streaming loop (see BENCHMARKS.md, "Memory per idle subscriber").
fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    node: Arc<Node>,
    port: Arc<Port>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let setup = Box::pin(setup(stream, peer, node, port));
    async move {
        if let Some(mut held) = setup.await {
            held.streaming.run().await;
        }
    }
}

/// What a streaming subscriber's connection keeps: the stream, and its
/// place in the connection counts until it ends.
struct Held {
    streaming: push::Streaming,
    _visit: Visit,
    _slot: ClientSlot,
}

/// Count and admit the connection, read its request and answer it; a
/// legacy subscription comes back to be streamed.
async fn setup(
    stream: TcpStream,
    peer: SocketAddr,
    node: Arc<Node>,
    port: Arc<Port>,
) -> Option<Held> {
    let visit = Visit::arrive(&node, &SUBSCRIBER_PORT, &stream);
    let (max, per_ip) = (
        node.subscriber_ceiling(),
        node.config.load().max_connections_per_ip,
    );
    let (slot, from_ip) = node.clients.enter(peer.ip());
    if (max > 0 && visit.open_now() > max) || (per_ip > 0 && from_ip > per_ip) {
        node.hub.stats.incr(Stat::ErrorsServed);
        let stats = &node.hub.stats;
        listen::refuse(stream, port.tls.is_some(), UNAVAILABLE, stats).await;
        return None;
    }
    let conn = listen::open(stream, peer, port.tls.as_ref(), &node).await?;
    let streaming = route(conn, peer, &node, &port).await?;
    Some(Held {
        streaming,
        _visit: visit,
        _slot: slot,
    })
}

/// Read the request line, then hand the connection to its handler; a
/// legacy subscription comes back to be streamed.
async fn route(
    mut stream: Conn,
    peer: SocketAddr,
    node: &Arc<Node>,
    port: &Port,
) -> Option<push::Streaming> {
    let stats = &node.hub.stats;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let mut reader = request::HeadReader {
            stream: &mut stream,
            shutdown: &node.shutdown,
        };
        let line_end = match reader.request_line(&mut buf).await {
            Ok((end, n)) => {
                stats.add(Stat::TotalInboundBytes, n);
                end
            }
            Err(e) => {
                refuse(&mut stream, e, node).await;
                return None;
            }
        };
        let Some(RequestLine { method, target }) = request::parse_request_line(&buf[..line_end])
        else {
            respond_raw(&mut stream, BAD_REQUEST, node).await;
            return None;
        };
        if method != "GET" || http::is_routed(target, &port.mounted) {
            // Boxed: hyper's connection state is large, and the streaming
            // legacy subscribers, the most numerous, should not carry its
            // room in their own task.
            let served = http::serve(stream, peer, buf.freeze(), node.clone(), &port.mounted);
            Box::pin(served).await;
            return None;
        }
        // A legacy GET: read the whole head first, as meteord did.
        let target = target.to_string();
        let mut reader = request::HeadReader {
            stream: &mut stream,
            shutdown: &node.shutdown,
        };
        let head_len = match reader.head(&mut buf).await {
            Ok((end, n)) => {
                stats.add(Stat::TotalInboundBytes, n);
                end
            }
            Err(e) => {
                refuse(&mut stream, e, node).await;
                return None;
            }
        };
        if request::announces_body(&buf[..head_len]) {
            // Refused rather than skipped: behind a proxy that reuses
            // connections, a body answered as a request is a desync.
            respond_raw(&mut stream, BAD_REQUEST, node).await;
            return None;
        }
        let path = target.split('?').next().unwrap_or_default();
        // Before subscriptions and files: nothing configured may hide it.
        if let Some(token) = path.strip_prefix(HTTP_CHALLENGE_PREFIX) {
            acme_challenge(&mut stream, token, node).await;
            return None;
        }
        let config = node.config.load();
        let head = request::kept_headers(&buf[..head_len]);
        if let Some(push) = request::parse_push_target(&target, &config.dynamic_page_address) {
            // Nothing else of the request is needed while it streams.
            drop(buf);
            drop(config);
            return push::subscribe(stream, node.clone(), push, head, Some(peer)).await;
        }
        if let Some(host_id) = target
            .strip_prefix("/disconnect/")
            .filter(|h| !h.is_empty())
        {
            push::disconnect(stream, node.clone(), host_id, &head).await;
            return None;
        }
        let documents = &port.documents;
        let host = request::header(&buf[..head_len], "host").map(str::to_string);
        let wanted = (path, host.as_deref());
        if serve_document(&mut stream, wanted, node, documents, &config)
            .await
            .is_err()
        {
            return None;
        }
        // meteord answered one request per connection; pipelined requests
        // already received are answered too, then the connection closes.
        buf.advance(head_len);
        if buf.is_empty() {
            let _ = stream.shutdown().await;
            return None;
        }
    }
}

/// Serve the file a request (its path and Host header) names.
async fn serve_document(
    stream: &mut Conn,
    (path, host): (&str, Option<&str>),
    node: &Node,
    documents: &Documents,
    config: &crate::config::Config,
) -> std::io::Result<()> {
    let stats = &node.hub.stats;
    let mut doc = documents.lookup(node.documents_generation(), config, path);
    if let Some(found) = &doc {
        if static_files::document_root(config).is_none()
            && home::is_home(path, &config.directory_index)
        {
            doc = Some(Arc::new(static_files::Document {
                body: home::render(&found.body, node, host).into(),
                content_type: found.content_type,
            }));
        }
    }
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
    listen::send(stream, &response, stats).await
}

/// An ACME server's HTTP-01 validation: the key authorization of a
/// pending order, as plain text (RFC 8555, section 8.3), or 404.
async fn acme_challenge(stream: &mut Conn, token: &str, node: &Node) {
    let answer = node
        .tls
        .as_ref()
        .filter(|_| valid_token(token))
        .and_then(|tls| tls.http_challenge(token));
    let response = match &answer {
        Some(key_authorization) => {
            info!(event = "acme-challenge", status = 200);
            format!(
                "HTTP/1.1 200 OK\r\nServer: meteord\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{key_authorization}",
                key_authorization.len()
            )
        }
        None => {
            info!(event = "acme-challenge", status = 404);
            "HTTP/1.1 404 Not Found\r\nServer: meteord\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        }
    };
    let _ = listen::send(stream, response.as_bytes(), &node.hub.stats).await;
    let _ = stream.shutdown().await;
}

const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";
const URI_TOO_LONG: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";
const HEAD_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";
const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";
const TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nServer: meteord\r\nContent-length: 0\r\nConnection: close\r\n\r\n";

async fn refuse(stream: &mut Conn, error: HeadError, node: &Node) {
    debug!(?error, "request refused");
    let response = match error {
        HeadError::Closed => return,
        HeadError::TimedOut => TIMEOUT,
        HeadError::LineTooLong => URI_TOO_LONG,
        HeadError::HeadTooLarge => HEAD_TOO_LARGE,
    };
    respond_raw(stream, response, node).await;
}

/// An error answer of our own, then close.
async fn respond_raw(stream: &mut Conn, response: &[u8], node: &Node) {
    node.hub.stats.incr(Stat::ErrorsServed);
    let _ = listen::send(stream, response, &node.hub.stats).await;
    let _ = stream.shutdown().await;
}
