//! Running what a publisher sent: every complete line buffered, in order,
//! whichever engine is in use. Consecutive `ADDMESSAGE`s go to the publish
//! door together, so a pipelining publisher pays one wait (for the disk in
//! durable mode, for Redis with the redis engine) per batch, not per
//! message; replies still come back in command order.

use bytes::Bytes;
use tracing::warn;

use super::commands::{self, Command, ERR_PAUSED, ERR_SYNTAX, ERR_TOO_LONG};
use super::lines::{Framed, LineBuffer};
use crate::node::{Ack, Node, PublishError};

/// Run every complete line in `lines`, appending the replies to `out`.
/// Returns whether the publisher said QUIT.
pub async fn run_lines(lines: &mut LineBuffer, node: &Node, out: &mut Vec<u8>) -> bool {
    let mut batch: Vec<(Bytes, Bytes)> = Vec::new();
    let mut quit = false;
    while let Some(framed) = lines.next_line() {
        let line = match framed {
            Framed::Line(line) => line,
            Framed::Malformed | Framed::TooLong => {
                publish(node, &mut batch, out).await;
                out.extend_from_slice(if framed == Framed::TooLong {
                    ERR_TOO_LONG
                } else {
                    ERR_SYNTAX
                });
                continue;
            }
        };
        let command = Command::parse(&line);
        if let Command::AddMessage { channel, text } = command {
            // The text is copied out of the read buffer, which it would
            // otherwise keep alive for as long as it is cached.
            batch.push((line.slice_ref(channel), Bytes::copy_from_slice(text)));
            continue;
        }
        publish(node, &mut batch, out).await;
        match command {
            Command::AddMessage { .. } => unreachable!("batched above"),
            Command::CountSubscribers { channel } => {
                commands::count_subscribers(node, channel, out)
            }
            Command::ListChannels => commands::list_channels(node, out),
            Command::ShowStats => commands::show_stats(node, out),
            Command::Quit => {
                out.extend_from_slice(b"OK\r\n");
                // Lines after it in the same read still run, as they did.
                quit = true;
            }
            Command::Invalid => out.extend_from_slice(ERR_SYNTAX),
        }
    }
    publish(node, &mut batch, out).await;
    quit
}

/// Publish the batch (emptying it) and append one reply per message.
async fn publish(node: &Node, batch: &mut Vec<(Bytes, Bytes)>, out: &mut Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    for answer in node.publish_batch(batch, Ack::Stored).await {
        match answer {
            Ok(id) => commands::reply_ok(out, id),
            Err(PublishError::Paused) => out.extend_from_slice(ERR_PAUSED),
            Err(e) => {
                warn!("publish refused: {e}");
                out.extend_from_slice(format!("ERR {e}\r\n").as_bytes());
            }
        }
    }
    batch.clear();
}
