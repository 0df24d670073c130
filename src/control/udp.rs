//! The optional UDP publish port: one `ADDMESSAGE <channel> <text>` per
//! datagram, no reply (as in meteord).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::commands::parse_datagram;
use crate::node::{Ack, Node, PublishError};

/// Larger datagrams are refused whole rather than cut.
pub const MAX_DATAGRAM: usize = 8192;

/// At most one warning about refused datagrams this often; the ones in
/// between are counted and the count goes with the next warning.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Warnings about refused datagrams, kept from flooding the log: anyone
/// who can reach the port can send thousands a second.
struct Warnings {
    last: Option<Instant>,
    suppressed: u64,
}

impl Warnings {
    fn warn(&mut self, peer: SocketAddr, what: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            warn!(%peer, "udp datagram {what} ({} more refused datagrams not logged)", self.suppressed);
        } else {
            warn!(%peer, "udp datagram {what}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}

pub async fn serve(socket: UdpSocket, node: Arc<Node>) {
    let mut buf = vec![0u8; 65536];
    let mut warnings = Warnings {
        last: None,
        suppressed: 0,
    };
    loop {
        let received = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                debug!("udp receive failed: {e}");
                continue;
            }
        };
        if !node.config.load().may_publish(peer.ip()) {
            warnings.warn(peer, format_args!("refused: not in ControllerAllow"));
            continue;
        }
        if n > MAX_DATAGRAM {
            warnings.warn(
                peer,
                format_args!("of {n} bytes refused (over {MAX_DATAGRAM})"),
            );
            continue;
        }
        let Some((channel, text)) = parse_datagram(&buf[..n]) else {
            debug!(%peer, "udp datagram is not an ADDMESSAGE; ignored");
            continue;
        };
        // No reply, so no wait for the disk; the publish still completes
        // before the next datagram is read, so that their order holds.
        match node
            .publish_batch(&[(channel, text)], Ack::Taken)
            .await
            .pop()
        {
            Some(Ok(id)) => debug!(%peer, id, "udp message added"),
            Some(Err(PublishError::Paused)) => {
                debug!(%peer, "udp message refused: publishing is paused")
            }
            // No reply to send: the log is the only place to say it.
            Some(Err(e)) => warnings.warn(peer, format_args!("dropped: {e}")),
            None => {}
        }
    }
}
