//! The write side of a streaming subscriber: move bytes from the hub's
//! outbox to the socket until the subscription ends or the peer leaves.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::hub::{Next, Stat, Stats, Subscriber};
use crate::tls::Conn;

/// A write that makes no progress for this long drops the subscriber.
pub const WRITE_STALL: Duration = Duration::from_secs(120);

/// Why the stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server finished it (backlog sent, MaxMessages, MaxTime, kick, shutdown).
    Finished,
    /// The subscriber was dropped (too slow, write stalled or failed).
    Dropped,
    /// The client went away.
    PeerClosed,
}

enum Event {
    Next(Next),
    PeerClosed,
}

/// Drain the outbox into the socket until the subscription ends.
pub async fn stream_outbox(stream: &mut Conn, subscriber: &Subscriber, stats: &Stats) -> End {
    loop {
        let event = poll_fn(|cx| {
            if let Poll::Ready(next) = subscriber.poll_next(cx) {
                return Poll::Ready(Event::Next(next));
            }
            // Watch for the client leaving; anything it sends is discarded.
            let closed = match stream {
                Conn::Plain(tcp) => poll_tcp_closed(tcp, cx, stats),
                Conn::Tls(tls) => {
                    // TLS must read to see the peer's close_notify.
                    let mut received = 0;
                    let closed = tls.poll_peer_closed(cx, &mut received);
                    if received > 0 {
                        stats.add(Stat::TotalInboundBytes, received);
                    }
                    closed
                }
            };
            closed.map(|()| Event::PeerClosed)
        })
        .await;
        match event {
            Event::Next(Next::Write(mut bytes)) => {
                let len = bytes.len() as u64;
                if let Err(end) = write(stream, &mut bytes, subscriber).await {
                    return end;
                }
                stats.add(Stat::TotalOutboundBytes, len);
                subscriber.recycle(bytes);
            }
            Event::Next(Next::Finish) => {
                let _ = stream.shutdown().await;
                return End::Finished;
            }
            Event::Next(Next::Abort) => return End::Dropped,
            Event::PeerClosed => return End::PeerClosed,
        }
    }
}

/// Ready when the peer has closed a plain socket. Reads readiness instead
/// of polling a read, so an idle subscriber costs no buffer.
fn poll_tcp_closed(tcp: &TcpStream, cx: &mut std::task::Context<'_>, stats: &Stats) -> Poll<()> {
    loop {
        match tcp.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => {
                let mut scratch = [0u8; 512];
                match tcp.try_read(&mut scratch) {
                    Ok(0) => return Poll::Ready(()),
                    Ok(n) => stats.add(Stat::TotalInboundBytes, n as u64),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return Poll::Ready(()),
                }
            }
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Write all of `bytes`: straight away when the socket has room (the usual
/// case), else wait — but not past the stall limit or an abort. Over TLS,
/// `bytes` may be encrypted where it lies.
async fn write(stream: &mut Conn, bytes: &mut Vec<u8>, subscriber: &Subscriber) -> Result<(), End> {
    let rest = match stream {
        Conn::Plain(tcp) => match tcp.try_write(bytes) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(n) => &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => bytes,
            Err(_) => return Err(End::PeerClosed),
        },
        Conn::Tls(tls) => match tls.write_now_owned(bytes) {
            Ok(true) => return Ok(()),
            // Encrypted whole and queued in the stream: only the flush
            // is left to wait for.
            Ok(false) => &[],
            Err(_) => return Err(End::PeerClosed),
        },
    };
    // Boxed: the wait with its timer is rare, and would otherwise make
    // every idle subscriber's task larger.
    Box::pin(write_slowly(stream, rest, subscriber)).await
}

/// Write what the socket did not take at once, waiting for room.
async fn write_slowly(stream: &mut Conn, rest: &[u8], subscriber: &Subscriber) -> Result<(), End> {
    let aborted = poll_fn(|cx| subscriber.poll_aborted(cx));
    let write_all = async {
        stream.write_all(rest).await?;
        // TLS keeps encrypted records buffered until flushed.
        stream.flush().await
    };
    tokio::select! {
        result = tokio::time::timeout(WRITE_STALL, write_all) => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::PeerClosed),
            Err(_) => Err(End::Dropped),
        },
        _ = aborted => Err(End::Dropped),
    }
}
