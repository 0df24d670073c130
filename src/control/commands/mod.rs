//! The control protocol's commands: one file per command, each with its
//! parser and its reply, and the verb table below that maps a line's first
//! word to its parser.
//!
//! Commands match as case-sensitive prefixes of the line, as in meteord:
//! `SHOWSTATSXYZ` is SHOWSTATS, while `QUIT ` (trailing space) is an error.
//! Whitespace means the ASCII whitespace bytes Perl's `\s` matched.
//!
//! Adding a command: a file here with `parse` (and its reply), a variant of
//! [`Command`], a line in [`VERBS`], and its arm in `execute.rs`.

mod addmessage;
mod countsubscribers;
mod listchannels;
mod quit;
mod showstats;

pub use addmessage::{parse_datagram, reply_ok};
pub use countsubscribers::reply as count_subscribers;
pub use listchannels::reply as list_channels;
pub use showstats::reply as show_stats;

use crate::names::is_space;

/// One parsed control line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// `ADDMESSAGE <channel> <text>`; the text is everything after the one
    /// whitespace byte that follows the channel, kept exactly.
    AddMessage {
        channel: &'a [u8],
        text: &'a [u8],
    },
    CountSubscribers {
        channel: &'a [u8],
    },
    ListChannels,
    ShowStats,
    Quit,
    Invalid,
}

/// Parses what follows a verb on its line.
type Parser = for<'a> fn(&'a [u8]) -> Command<'a>;

/// Every verb and its parser. No verb is a prefix of another.
const VERBS: &[(&[u8], Parser)] = &[
    (b"ADDMESSAGE", addmessage::parse),
    (b"COUNTSUBSCRIBERS", countsubscribers::parse),
    (b"LISTCHANNELS", listchannels::parse),
    (b"SHOWSTATS", showstats::parse),
    (b"QUIT", quit::parse),
];

pub const ERR_SYNTAX: &[u8] = b"ERR Invalid command syntax\r\n";
pub const ERR_TOO_LONG: &[u8] = b"ERR Line too long\r\n";
pub const ERR_BUSY: &[u8] = b"ERR Too many connections\r\n";
pub const ERR_NOT_ALLOWED: &[u8] = b"ERR Not allowed\r\n";
pub const ERR_PAUSED: &[u8] = b"ERR Publishing is paused\r\n";

impl<'a> Command<'a> {
    /// Parse one line, without its line ending.
    pub fn parse(line: &'a [u8]) -> Command<'a> {
        VERBS
            .iter()
            .find_map(|(verb, parse)| line.strip_prefix(*verb).map(parse))
            .unwrap_or(Command::Invalid)
    }
}

/// Split `rest` into (leading whitespace run, non-whitespace run, tail).
fn word(rest: &[u8]) -> (usize, &[u8], &[u8]) {
    let spaces = rest.iter().take_while(|&&b| is_space(b)).count();
    let rest = &rest[spaces..];
    let len = rest.iter().take_while(|&&b| !is_space(b)).count();
    (spaces, &rest[..len], &rest[len..])
}

/// Append a decimal number.
fn push_number(out: &mut Vec<u8>, n: u64) {
    crate::template::push_decimal(out, n);
}

#[cfg(test)]
mod tests {
    use super::Command::*;
    use super::*;

    fn p(line: &[u8]) -> Command<'_> {
        Command::parse(line)
    }

    #[test]
    fn addmessage() {
        assert_eq!(
            p(b"ADDMESSAGE chat hi there"),
            AddMessage {
                channel: b"chat",
                text: b"hi there"
            }
        );
        assert_eq!(
            p(b"ADDMESSAGE  chat\t  two"),
            AddMessage {
                channel: b"chat",
                text: b"  two"
            }
        );
        assert_eq!(
            p(b"ADDMESSAGE chat "),
            AddMessage {
                channel: b"chat",
                text: b""
            }
        );
        assert_eq!(
            p(b"ADDMESSAGE chat \0x"),
            AddMessage {
                channel: b"chat",
                text: b"\0x"
            }
        );
        assert_eq!(p(b"ADDMESSAGE chat"), Invalid);
        assert_eq!(p(b"ADDMESSAGE"), Invalid);
        assert_eq!(p(b"ADDMESSAGEchat hi"), Invalid);
        assert_eq!(p(b"addmessage chat hi"), Invalid);
    }

    #[test]
    fn other_commands() {
        assert_eq!(
            p(b"COUNTSUBSCRIBERS chat"),
            CountSubscribers { channel: b"chat" }
        );
        assert_eq!(
            p(b"COUNTSUBSCRIBERS   chat"),
            CountSubscribers { channel: b"chat" }
        );
        assert_eq!(p(b"COUNTSUBSCRIBERS chat "), Invalid);
        assert_eq!(p(b"COUNTSUBSCRIBERS"), Invalid);
        assert_eq!(p(b"LISTCHANNELS"), ListChannels);
        assert_eq!(p(b"LISTCHANNELS "), Invalid);
        assert_eq!(p(b"SHOWSTATS"), ShowStats);
        assert_eq!(p(b"SHOWSTATSXYZ"), ShowStats);
        assert_eq!(p(b"QUIT"), Quit);
        assert_eq!(p(b"QUIT "), Invalid);
        assert_eq!(p(b""), Invalid);
        assert_eq!(p(b"HELLO"), Invalid);
    }
}
