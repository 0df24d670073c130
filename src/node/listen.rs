//! Taking connections in, the same way on every port: the accept loop,
//! the counters a connection moves while it lasts, refusing one before any
//! TLS work, the TLS handshake, and writing with the byte counters.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{error, info};

use super::Node;
use crate::hub::{Stat, Stats};
use crate::tls::{Conn, Tls};

/// How long a refused client gets to take its one-line answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept connections until shutdown, running `handle` for each as a
/// tracked task. After a failed accept (often: out of file descriptors) it
/// waits a little instead of spinning.
pub async fn accept_loop<F, Fut>(
    port: &'static str,
    listener: TcpListener,
    node: Arc<Node>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr, Arc<Node>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    // Said once per run of failures, not ten times a second.
    let mut failing = false;
    loop {
        let accepted = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if failing {
                    info!("{port} accepts connections again");
                    failing = false;
                }
                node.tasks.spawn(handle(stream, peer, node.clone()));
            }
            Err(error) => {
                if !failing {
                    error!("{port} accept failed: {error}; retrying every 100 ms");
                    failing = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The counters a port moves for each connection.
pub struct Port {
    /// Connections open now (a gauge).
    pub current: Stat,
    /// Connections accepted so far.
    pub accepted: Stat,
}

pub const CONTROL_PORT: Port = Port {
    current: Stat::CurrentControllers,
    accepted: Stat::ControllerConnectionsAccepted,
};

pub const SUBSCRIBER_PORT: Port = Port {
    current: Stat::CurrentSubscribers,
    accepted: Stat::SubscriberConnectionsAccepted,
};

/// A connection counted on its port for as long as this lives.
pub struct Visit {
    stats: Arc<Stats>,
    current: Stat,
}

impl Visit {
    /// Count a new connection (and ask for small writes to go out at once).
    pub fn arrive(node: &Node, port: &Port, stream: &TcpStream) -> Visit {
        let stats = node.hub.stats.clone();
        stats.incr(Stat::TotalRequests);
        stats.incr(port.current);
        stats.incr(port.accepted);
        let _ = stream.set_nodelay(true);
        Visit {
            stats,
            current: port.current,
        }
    }

    /// Connections open on this port now, this one included.
    pub fn open_now(&self) -> u64 {
        self.stats.get(self.current)
    }
}

impl Drop for Visit {
    fn drop(&mut self) {
        self.stats.decr(self.current);
    }
}

/// Refuse a connection before any TLS work: a plain one gets `reply`, one
/// that expects TLS gets nothing (a handshake for a client that is refused
/// anyway would be wasted work).
pub async fn refuse(stream: TcpStream, tls: bool, reply: &[u8], stats: &Stats) {
    if tls {
        return;
    }
    let mut conn = Conn::Plain(stream);
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, send(&mut conn, reply, stats)).await;
    let _ = conn.shutdown().await;
}

/// The connection as a front end reads it: after the TLS handshake when
/// the port has a certificate. `None`: the handshake failed (it is logged).
pub async fn open(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<&Arc<Tls>>,
    node: &Node,
) -> Option<Conn> {
    match tls {
        // Boxed: the handshake's state is large and lasts a moment; kept
        // inline it would make every connection's task that much larger
        // for as long as it lives.
        Some(tls) => Box::pin(tls.accept(stream, peer, &node.shutdown)).await,
        None => Some(Conn::Plain(stream)),
    }
}

/// Write all of `bytes` (flushed: TLS holds records back until then) and
/// count them.
pub async fn send(conn: &mut Conn, bytes: &[u8], stats: &Stats) -> std::io::Result<()> {
    conn.write_all(bytes).await?;
    conn.flush().await?;
    stats.add(Stat::TotalOutboundBytes, bytes.len() as u64);
    Ok(())
}

/// Counts connections per client address.
#[derive(Default)]
pub struct Clients {
    counts: Mutex<HashMap<IpAddr, u64>>,
}

impl Clients {
    /// Count one more connection from `ip` until the slot is dropped;
    /// returns the slot and the connections from `ip`, this one included.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> (ClientSlot, u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_default();
        *count += 1;
        let slot = ClientSlot {
            clients: self.clone(),
            ip,
        };
        (slot, *count)
    }
}

/// One connection's place in [`Clients`] (owned, so that a streaming
/// subscriber's task can keep it without borrowing the node).
pub struct ClientSlot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self
            .clients
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
