//! The control port: publishers speak meteord's line protocol over TCP
//! (and, optionally, send one ADDMESSAGE per UDP datagram, [`udp`]).
//!
//! Replies are collected while more complete lines are buffered and written
//! in one go, so a pipelining publisher costs one syscall per read.
//!
//! | file | what |
//! |---|---|
//! | `lines.rs` | splitting the stream into lines |
//! | `commands/` | one file per command: its grammar and its reply |
//! | `execute.rs` | running the lines of one read, publishing in batches |
//! | `udp.rs` | the UDP port |

mod commands;
mod execute;
pub mod lines;
pub mod udp;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

pub use commands::{parse_datagram, Command};
use commands::{ERR_BUSY, ERR_NOT_ALLOWED};
use execute::Outcome;
use lines::LineBuffer;

use crate::hub::Stat;
use crate::node::listen::{self, accept_loop, Visit, CONTROL_PORT};
use crate::node::{Node, MAX_TEXT};
use crate::tls::{Conn, Tls};

/// The longest control line accepted (a message's text must fit).
pub const MAX_LINE: usize = MAX_TEXT;
/// A publisher that does not take its replies for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// Accept publishers until shutdown; over TLS when `tls` is given.
pub async fn serve(listener: TcpListener, node: Arc<Node>, tls: Option<Arc<Tls>>) {
    accept_loop("control", listener, node, move |stream, peer, node| {
        debug!(%peer, "controller connected");
        connection(stream, peer, node, tls.clone())
    })
    .await
}

/// Why a publisher may not stay, if it may not.
fn refusal(node: &Node, peer: SocketAddr, visit: &Visit) -> Option<&'static [u8]> {
    let config = node.config.load();
    let max = config.max_controller_connections;
    if !config.may_publish(peer.ip()) {
        warn!(%peer, "publisher refused: not in ControllerAllow");
        Some(ERR_NOT_ALLOWED)
    } else if max > 0 && visit.open_now() > max {
        warn!("more than {max} publishers connected; refusing one");
        Some(ERR_BUSY)
    } else {
        None
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, node: Arc<Node>, tls: Option<Arc<Tls>>) {
    let _visit = Visit::arrive(&node, &CONTROL_PORT, &stream);
    if let Some(reply) = refusal(&node, peer, &_visit) {
        return listen::refuse(stream, tls.is_some(), reply, &node.hub.stats).await;
    }
    let Some(mut stream) = listen::open(stream, peer, tls.as_ref(), &node).await else {
        return;
    };
    let stats = &node.hub.stats;
    let mut lines = LineBuffer::new(MAX_LINE);
    let mut out: Vec<u8> = Vec::new();
    loop {
        let read = tokio::select! {
            _ = node.shutdown.cancelled() => {
                let message = node.config.load().controller_shutdown_msg.clone();
                if !message.is_empty() {
                    let _ = write(&mut stream, &message, &node).await;
                }
                break;
            }
            read = stream.read_buf(lines.read_target()) => read,
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        stats.add(Stat::TotalInboundBytes, n as u64);
        let outcome = execute::run_lines(&mut lines, &node, &mut out).await;
        if outcome == Outcome::Http {
            warn_once_for(peer.ip());
            break;
        }
        if !out.is_empty() {
            if write(&mut stream, &out, &node).await.is_err() {
                break;
            }
            out.clear();
        }
        if outcome == Outcome::Quit {
            break;
        }
    }
    let _ = stream.shutdown().await;
}

/// Say once per client address (up to a bound) that it spoke HTTP to the
/// control port: likely a web page making a browser publish.
fn warn_once_for(ip: IpAddr) {
    static WARNED: Mutex<Option<HashSet<IpAddr>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    let warned = warned.get_or_insert_with(HashSet::new);
    if warned.len() < 1024 && warned.insert(ip) {
        warn!(
            client = %ip,
            "control connection closed: it spoke HTTP (a web page may be making a browser publish); further ones from this address are closed silently"
        );
    }
}

/// Write replies; a publisher that does not take them in time is dropped.
async fn write(stream: &mut Conn, bytes: &[u8], node: &Node) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, listen::send(stream, bytes, &node.hub.stats)).await {
        Ok(result) => result,
        Err(_) => {
            warn!("controller did not read its replies for {WRITE_TIMEOUT:?}; dropping it");
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}
