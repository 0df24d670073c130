//! Running what a publisher sent: every complete line buffered, in order,
//! whichever engine is in use. Consecutive `ADDMESSAGE`s go to the publish
//! door together, so a pipelining publisher pays one wait (for the disk in
//! durable mode, for Redis with the redis engine) per batch, not per
//! message; replies still come back in command order.

use tracing::warn;

use super::commands::{self, Command, ERR_PAUSED, ERR_SYNTAX, ERR_TOO_LONG};
use super::lines::{Framed, LineBuffer};
use crate::node::{Ack, Node, PublishError};

/// What the lines of one read asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Keep reading.
    More,
    /// The publisher said QUIT: send the replies, then close.
    Quit,
    /// The client speaks HTTP: close at once, answering nothing.
    Http,
}

/// Run every complete line in `lines`, appending the replies to `out`.
pub async fn run_lines(lines: &mut LineBuffer, node: &Node, out: &mut Vec<u8>) -> Outcome {
    let read: Vec<Framed> = std::iter::from_fn(|| lines.next_line()).collect();
    // Any line of HTTP and not one line of the read runs, whatever the
    // request's body holds.
    if read
        .iter()
        .any(|framed| matches!(framed, Framed::Line(line) if looks_like_http(line)))
    {
        return Outcome::Http;
    }
    // A run of ADDMESSAGEs, borrowed from the lines, waiting to be published.
    let mut batch: Vec<(&[u8], &[u8])> = Vec::new();
    let mut quit = false;
    for framed in &read {
        let line = match framed {
            Framed::Line(line) => line,
            Framed::Malformed | Framed::TooLong => {
                publish(node, &mut batch, out).await;
                out.extend_from_slice(if *framed == Framed::TooLong {
                    ERR_TOO_LONG
                } else {
                    ERR_SYNTAX
                });
                continue;
            }
        };
        let command = Command::parse(line);
        if let Command::AddMessage { channel, text } = command {
            batch.push((channel, text));
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
    if quit {
        Outcome::Quit
    } else {
        Outcome::More
    }
}

/// Publish the batch (emptying it) and append one reply per message.
async fn publish(node: &Node, batch: &mut Vec<(&[u8], &[u8])>, out: &mut Vec<u8>) {
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

/// Does this line come from an HTTP client: a request line
/// (`POST / HTTP/1.1`) or a `Host:` header? A web page can make a browser
/// send one to the control port, with `ADDMESSAGE` lines in its body; no
/// publisher ever sends one (no command is an HTTP method).
pub fn looks_like_http(line: &[u8]) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
    ];
    if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"host:") {
        return true;
    }
    // The method first: for a command line the test ends at its verb.
    let Some(space) = line.iter().take(8).position(|&b| b == b' ') else {
        return false;
    };
    if !METHODS.contains(&&line[..space]) {
        return false;
    }
    let mut rest = line[space + 1..].split(|&b| b == b' ');
    let (Some(_target), Some(version)) = (rest.next(), rest.next()) else {
        return false;
    };
    version.starts_with(b"HTTP/")
}

#[cfg(test)]
mod tests {
    use super::looks_like_http;

    #[test]
    fn http_is_recognised_and_publishing_is_not() {
        assert!(looks_like_http(b"POST / HTTP/1.1"));
        assert!(looks_like_http(b"GET /x?y HTTP/1.0"));
        assert!(looks_like_http(b"Host: 127.0.0.1:4671"));
        assert!(looks_like_http(b"host:x"));
        assert!(!looks_like_http(b"ADDMESSAGE chat HTTP/1.1"));
        assert!(!looks_like_http(b"ADDMESSAGE POST / HTTP/1.1"));
        assert!(!looks_like_http(b"POST / "));
        assert!(!looks_like_http(b"SHOWSTATS"));
        assert!(!looks_like_http(b"Hos"));
    }
}
