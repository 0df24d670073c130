//! `COUNTSUBSCRIBERS <channel>`: `OK <n>`, the channel's live subscribers
//! (on every node with the redis engine).

use super::{push_number, word, Command};
use crate::node::Node;

pub fn parse(rest: &[u8]) -> Command<'_> {
    let (spaces, channel, tail) = word(rest);
    if spaces > 0 && !channel.is_empty() && tail.is_empty() {
        Command::CountSubscribers { channel }
    } else {
        Command::Invalid
    }
}

pub fn reply(node: &Node, channel: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"OK ");
    push_number(out, node.count_subscribers(channel) as u64);
    out.extend_from_slice(b"\r\n");
}
