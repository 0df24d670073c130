//! `LISTCHANNELS`: `OK`, then `name(messages/subscribers)` for every
//! channel in byte order of the names, then `--EOT--`.

use super::Command;
use crate::node::Node;

pub fn parse(rest: &[u8]) -> Command<'_> {
    if rest.is_empty() {
        Command::ListChannels
    } else {
        Command::Invalid
    }
}

pub fn reply(node: &Node, out: &mut Vec<u8>) {
    out.extend_from_slice(b"OK\r\n");
    for channel in node.list_channels() {
        out.extend_from_slice(&channel.name);
        out.extend_from_slice(
            format!("({}/{})\r\n", channel.messages, channel.subscribers).as_bytes(),
        );
    }
    out.extend_from_slice(b"--EOT--\r\n");
}
