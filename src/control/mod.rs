//! The control port: publishers speak meteord's line protocol over TCP
//! (and, optionally, send one ADDMESSAGE per UDP datagram).
//!
//! Replies are collected while more complete lines are buffered and written
//! in one go, so a pipelining publisher costs one syscall per read.

mod clustered;
mod command;
pub mod lines;
pub mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

pub use command::{is_space, Command};
use command::{ERR_BUSY, ERR_NOT_ALLOWED, ERR_PAUSED, ERR_SYNTAX, ERR_TOO_LONG};
use lines::{Framed, LineBuffer};

use crate::hub::{Hub, Stat};
use crate::server::{accept_loop, Shared};
use crate::tls::{Conn, Tls};

/// The longest control line accepted (a message's text must fit).
pub const MAX_LINE: usize = 1 << 20;
/// A publisher that does not take its replies for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// Accept publishers until shutdown; over TLS when `tls` is given.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: Option<Arc<Tls>>) {
    accept_loop("control", listener, shared, move |stream, peer, shared| {
        debug!(%peer, "controller connected");
        connection(stream, peer, shared, tls.clone())
    })
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
    stats.incr(Stat::CurrentControllers);
    stats.incr(Stat::ControllerConnectionsAccepted);
    let _ = stream.set_nodelay(true);
    let (max, allowed) = {
        let config = shared.config.load();
        (
            config.max_controller_connections,
            config.may_publish(peer.ip()),
        )
    };
    let refusal = if !allowed {
        warn!(%peer, "publisher refused: not in ControllerAllow");
        Some(ERR_NOT_ALLOWED)
    } else if max > 0 && stats.get(Stat::CurrentControllers) > max {
        warn!("more than {max} publishers connected; refusing one");
        Some(ERR_BUSY)
    } else {
        None
    };
    let stream = match (tls, refusal) {
        // A refused client gets no handshake work, so no reply either.
        (Some(_), Some(_)) => None,
        (Some(tls), None) => tls.accept(stream, peer, &shared.shutdown).await,
        (None, _) => Some(Conn::Plain(stream)),
    };
    let Some(mut stream) = stream else {
        stats.decr(Stat::CurrentControllers);
        return;
    };
    if let Some(reply) = refusal {
        let _ = write(&mut stream, reply, &shared.hub).await;
        let _ = stream.shutdown().await;
        stats.decr(Stat::CurrentControllers);
        return;
    }

    let mut lines = LineBuffer::new(MAX_LINE);
    let mut out: Vec<u8> = Vec::new();
    loop {
        let read = tokio::select! {
            _ = shared.shutdown.cancelled() => {
                let message = shared.config.load().controller_shutdown_msg.clone();
                if !message.is_empty() {
                    let _ = write(&mut stream, &message, &shared.hub).await;
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

        let mut quit = false;
        let mut last_published = None;
        if let Some(cluster) = shared.engine.cluster() {
            quit = clustered::run_lines(&mut lines, cluster, &shared.hub, &mut out).await;
        }
        while let Some(framed) = lines.next_line() {
            match framed {
                Framed::Line(line) => match execute(&line, &shared.hub, &mut out) {
                    Executed::Quit => quit = true,
                    Executed::Published(id) => last_published = Some(id),
                    Executed::Other => {}
                },
                Framed::Malformed => out.extend_from_slice(ERR_SYNTAX),
                Framed::TooLong => out.extend_from_slice(ERR_TOO_LONG),
            }
        }
        // Durable mode: no OK before the messages are on disk. One wait
        // covers the whole batch (they are committed in id order).
        if let (Some(id), Some(persister)) = (last_published, &shared.persister) {
            persister.wait_durable(id).await;
        }
        if !out.is_empty() {
            if write(&mut stream, &out, &shared.hub).await.is_err() {
                break;
            }
            out.clear();
        }
        if quit {
            break;
        }
    }
    let _ = stream.shutdown().await;
    stats.decr(Stat::CurrentControllers);
}

async fn write(stream: &mut Conn, bytes: &[u8], hub: &Hub) -> std::io::Result<()> {
    let write = async {
        stream.write_all(bytes).await?;
        // TLS holds records back until flushed; for TCP this is free.
        stream.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => {
            hub.stats.add(Stat::TotalOutboundBytes, bytes.len() as u64);
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => {
            warn!("controller did not read its replies for {WRITE_TIMEOUT:?}; dropping it");
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}

/// What a command line did.
pub enum Executed {
    Quit,
    Published(u64),
    Other,
}

/// Run one command line, appending its reply.
pub fn execute(line: &[u8], hub: &Hub, out: &mut Vec<u8>) -> Executed {
    match Command::parse(line) {
        Command::AddMessage { .. } if hub.paused() => out.extend_from_slice(ERR_PAUSED),
        Command::AddMessage { channel, text } => {
            let id = hub.publish(channel, Bytes::copy_from_slice(text));
            debug!(channel = %String::from_utf8_lossy(channel), id, "message added");
            out.extend_from_slice(b"OK\t");
            crate::template::push_decimal(out, id);
            out.extend_from_slice(b"\r\n");
            return Executed::Published(id);
        }
        Command::CountSubscribers { channel } => {
            out.extend_from_slice(b"OK ");
            crate::template::push_decimal(out, hub.count_subscribers(channel) as u64);
            out.extend_from_slice(b"\r\n");
        }
        Command::ListChannels => list_channels(out, &hub.list_channels()),
        Command::ShowStats => show_stats(
            out,
            hub.uptime(),
            hub.channel_count(),
            &hub.stats.touched(),
            &[],
        ),
        Command::Quit => {
            out.extend_from_slice(b"OK\r\n");
            return Executed::Quit;
        }
        Command::Invalid => out.extend_from_slice(ERR_SYNTAX),
    }
    Executed::Other
}

/// The LISTCHANNELS reply.
fn list_channels(out: &mut Vec<u8>, channels: &[crate::hub::ChannelSummary]) {
    out.extend_from_slice(b"OK\r\n");
    for channel in channels {
        out.extend_from_slice(&channel.name);
        out.extend_from_slice(
            format!("({}/{})\r\n", channel.messages, channel.subscribers).as_bytes(),
        );
    }
    out.extend_from_slice(b"--EOT--\r\n");
}

/// The SHOWSTATS reply; `extra` lines (same `name: value` form) go after
/// the counters.
fn show_stats(
    out: &mut Vec<u8>,
    uptime: u64,
    channel_count: usize,
    counters: &[(Stat, u64)],
    extra: &[(String, String)],
) {
    out.extend_from_slice(b"OK\r\n");
    out.extend_from_slice(format!("uptime: {uptime}\r\n").as_bytes());
    out.extend_from_slice(format!("channel_count: {channel_count}\r\n").as_bytes());
    for (stat, value) in counters {
        out.extend_from_slice(format!("{}: {value}\r\n", stat.name()).as_bytes());
    }
    for (name, value) in extra {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"--EOT--\r\n");
}
