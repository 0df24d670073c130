//! The control commands with the redis engine: the same lines and replies,
//! but publishing goes through Redis and the counts cover every node.
//!
//! Consecutive `ADDMESSAGE`s in what one read brought are sent to Redis in
//! one pipeline, so a pipelining publisher pays one round trip per batch,
//! not per message. Replies still come back in command order.
//!
//! Differences a client can see: a publish that Redis could not take is
//! answered `ERR Redis unavailable ...` (the connection stays open), and
//! SHOWSTATS adds lines after the counters (`engine`, `node`, `nodes` and
//! `node.<name>.<figure>` for each node) in the usual `name: value` form.

use bytes::Bytes;

use super::command::{Command, ERR_SYNTAX, ERR_TOO_LONG};
use super::lines::{Framed, LineBuffer};
use crate::cluster::Cluster;
use crate::hub::Hub;

/// Run every complete line buffered, appending the replies to `out`.
/// Returns whether the publisher said QUIT.
pub async fn run_lines(
    lines: &mut LineBuffer,
    cluster: &Cluster,
    hub: &Hub,
    out: &mut Vec<u8>,
) -> bool {
    let mut quit = false;
    let mut batch: Vec<(Bytes, Bytes)> = Vec::new();
    while let Some(framed) = lines.next_line() {
        let line = match framed {
            Framed::Line(line) => line,
            Framed::Malformed | Framed::TooLong => {
                publish(cluster, &mut batch, out).await;
                out.extend_from_slice(if framed == Framed::TooLong {
                    ERR_TOO_LONG
                } else {
                    ERR_SYNTAX
                });
                continue;
            }
        };
        let command = Command::parse(&line);
        if matches!(command, Command::AddMessage { .. }) && hub.paused() {
            publish(cluster, &mut batch, out).await;
            out.extend_from_slice(super::command::ERR_PAUSED);
            continue;
        }
        if let Command::AddMessage { channel, text } = command {
            batch.push((line.slice_ref(channel), line.slice_ref(text)));
            continue;
        }
        publish(cluster, &mut batch, out).await;
        match command {
            Command::AddMessage { .. } => unreachable!("handled above"),
            Command::CountSubscribers { channel } => {
                out.extend_from_slice(b"OK ");
                crate::template::push_decimal(out, cluster.count_subscribers(channel) as u64);
                out.extend_from_slice(b"\r\n");
            }
            Command::ListChannels => super::list_channels(out, &cluster.list_channels()),
            Command::ShowStats => {
                let channels = cluster.list_channels().len();
                super::show_stats(
                    out,
                    hub.uptime(),
                    channels,
                    &cluster.counters(),
                    &node_lines(cluster),
                )
            }
            Command::Quit => {
                out.extend_from_slice(b"OK\r\n");
                quit = true;
            }
            Command::Invalid => out.extend_from_slice(ERR_SYNTAX),
        }
    }
    publish(cluster, &mut batch, out).await;
    quit
}

/// Publish the batch (emptying it) and append one reply per message.
async fn publish(cluster: &Cluster, batch: &mut Vec<(Bytes, Bytes)>, out: &mut Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    for result in cluster.publish_many(batch).await {
        match result {
            Ok(id) => {
                out.extend_from_slice(b"OK\t");
                crate::template::push_decimal(out, id);
                out.extend_from_slice(b"\r\n");
            }
            Err(e) => {
                tracing::warn!("publish refused: {e}");
                out.extend_from_slice(format!("ERR {e}\r\n").as_bytes());
            }
        }
    }
    batch.clear();
}

/// SHOWSTATS lines about the nodes.
fn node_lines(cluster: &Cluster) -> Vec<(String, String)> {
    let view = cluster.view();
    let mut lines = vec![
        ("engine".to_string(), "redis".to_string()),
        ("node".to_string(), cluster.node.clone()),
        ("nodes".to_string(), view.up_count().max(1).to_string()),
        (
            "redis".to_string(),
            if cluster.link().connected {
                "connected".into()
            } else {
                "unavailable".into()
            },
        ),
    ];
    for node in &view.nodes {
        let name = &node.name;
        let status = if node.up { "up" } else { "down" };
        lines.push((format!("node.{name}.status"), status.into()));
        if let Some(info) = node.info.as_ref().filter(|_| node.up) {
            lines.push((
                format!("node.{name}.current_subscribers"),
                info.subscribers.to_string(),
            ));
            lines.push((format!("node.{name}.uptime"), info.uptime.to_string()));
        }
    }
    lines
}
