//! The optional UDP publish port: one `ADDMESSAGE <channel> <text>` per
//! datagram, no reply (as in meteord).

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::commands::parse_datagram;
use crate::node::{Ack, Node, PublishError};

/// Larger datagrams are refused whole rather than cut.
pub const MAX_DATAGRAM: usize = 8192;

pub async fn serve(socket: UdpSocket, node: Arc<Node>) {
    let mut buf = vec![0u8; 65536];
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
            warn!(%peer, "udp datagram refused: not in ControllerAllow");
            continue;
        }
        if n > MAX_DATAGRAM {
            warn!(%peer, size = n, "udp datagram over {MAX_DATAGRAM} bytes refused");
            continue;
        }
        let Some((channel, text)) = parse_datagram(&buf[..n]) else {
            debug!(%peer, "udp datagram is not an ADDMESSAGE; ignored");
            continue;
        };
        // No reply, so no wait for the disk; the publish still completes
        // before the next datagram is read, so that their order holds.
        let message = [(
            Bytes::copy_from_slice(channel),
            Bytes::copy_from_slice(text),
        )];
        match node.publish_batch(&message, Ack::Taken).await.pop() {
            Some(Ok(id)) => debug!(%peer, id, "udp message added"),
            Some(Err(PublishError::Paused)) => {
                debug!(%peer, "udp message refused: publishing is paused")
            }
            // No reply to send: the log is the only place to say it.
            Some(Err(e)) => warn!(%peer, "udp message dropped: {e}"),
            None => {}
        }
    }
}
