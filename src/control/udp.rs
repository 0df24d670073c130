//! The optional UDP publish port: one `ADDMESSAGE <channel> <text>` per
//! datagram, no reply (as in meteord). The datagram's trailing line ending
//! is not part of the text.

use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tracing::{debug, warn};

use super::command::is_space;
use crate::server::Shared;

/// Larger datagrams are refused whole rather than cut.
pub const MAX_DATAGRAM: usize = 8192;

pub async fn serve(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let received = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                debug!("udp receive failed: {e}");
                continue;
            }
        };
        if !shared.config.load().may_publish(peer.ip()) {
            warn!(%peer, "udp datagram refused: not in ControllerAllow");
            continue;
        }
        if n > MAX_DATAGRAM {
            warn!(%peer, size = n, "udp datagram over {MAX_DATAGRAM} bytes refused");
            continue;
        }
        match parse(&buf[..n]) {
            // No reply on UDP: the refusal is only logged.
            Some(_) if shared.hub.paused() => {
                debug!(%peer, "udp message refused: {}", crate::hub::PAUSED);
            }
            Some((channel, text)) => {
                let text = Bytes::copy_from_slice(text);
                // No reply, so no wait for the disk (as before) with the
                // memory engine; Redis must answer before the next datagram
                // so that their order holds.
                let published = match shared.engine.cluster() {
                    None => Ok(shared.hub.publish(channel, text)),
                    Some(cluster) => cluster.publish(channel, text).await,
                };
                match published {
                    Ok(id) => debug!(%peer, id, "udp message added"),
                    // No reply to send: the log is the only place to say it.
                    Err(e) => warn!(%peer, "udp message dropped: {e}"),
                }
            }
            None => debug!(%peer, "udp datagram is not an ADDMESSAGE; ignored"),
        }
    }
}

/// `ADDMESSAGE`, one whitespace byte, the channel, one whitespace byte, text.
pub fn parse(datagram: &[u8]) -> Option<(&[u8], &[u8])> {
    let datagram = datagram.strip_suffix(b"\n").unwrap_or(datagram);
    let datagram = datagram.strip_suffix(b"\r").unwrap_or(datagram);
    let rest = datagram.strip_prefix(b"ADDMESSAGE")?;
    let (&sep, rest) = rest.split_first()?;
    if !is_space(sep) {
        return None;
    }
    let len = rest.iter().take_while(|&&b| !is_space(b)).count();
    let (channel, rest) = rest.split_at(len);
    let (&sep, text) = rest.split_first()?;
    (len > 0 && is_space(sep)).then_some((channel, text))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn datagrams() {
        assert_eq!(
            parse(b"ADDMESSAGE ch hello\n"),
            Some((&b"ch"[..], &b"hello"[..]))
        );
        assert_eq!(
            parse(b"ADDMESSAGE ch hello\r\n"),
            Some((&b"ch"[..], &b"hello"[..]))
        );
        assert_eq!(
            parse(b"ADDMESSAGE ch  two\n"),
            Some((&b"ch"[..], &b" two"[..]))
        );
        assert_eq!(parse(b"ADDMESSAGE ch \n"), Some((&b"ch"[..], &b""[..])));
        assert_eq!(parse(b"ADDMESSAGE  ch x"), None);
        assert_eq!(parse(b"ADDMESSAGE ch"), None);
        assert_eq!(parse(b"SHOWSTATS\n"), None);
    }
}
