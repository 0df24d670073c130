//! The control protocol's commands: parsing one line and the reply bytes.
//!
//! Commands match as case-sensitive prefixes of the line, as in meteord:
//! `SHOWSTATSXYZ` is SHOWSTATS, while `QUIT ` (trailing space) is an error.
//! Whitespace means the ASCII whitespace bytes Perl's `\s` matched.

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

pub const ERR_SYNTAX: &[u8] = b"ERR Invalid command syntax\r\n";
pub const ERR_TOO_LONG: &[u8] = b"ERR Line too long\r\n";
pub const ERR_BUSY: &[u8] = b"ERR Too many connections\r\n";
pub const ERR_NOT_ALLOWED: &[u8] = b"ERR Not allowed\r\n";
pub const ERR_PAUSED: &[u8] = b"ERR Publishing is paused\r\n";

pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Split `rest` into (leading whitespace run, non-whitespace run, tail).
fn word(rest: &[u8]) -> (usize, &[u8], &[u8]) {
    let spaces = rest.iter().take_while(|&&b| is_space(b)).count();
    let rest = &rest[spaces..];
    let len = rest.iter().take_while(|&&b| !is_space(b)).count();
    (spaces, &rest[..len], &rest[len..])
}

impl<'a> Command<'a> {
    /// Parse one line, without its line ending.
    pub fn parse(line: &'a [u8]) -> Command<'a> {
        if let Some(rest) = line.strip_prefix(b"ADDMESSAGE") {
            // one or more spaces, the channel, exactly one space, the text
            let (spaces, channel, tail) = word(rest);
            return match tail.split_first() {
                Some((&sep, text)) if spaces > 0 && !channel.is_empty() && is_space(sep) => {
                    Command::AddMessage { channel, text }
                }
                _ => Command::Invalid,
            };
        }
        if let Some(rest) = line.strip_prefix(b"COUNTSUBSCRIBERS") {
            let (spaces, channel, tail) = word(rest);
            return if spaces > 0 && !channel.is_empty() && tail.is_empty() {
                Command::CountSubscribers { channel }
            } else {
                Command::Invalid
            };
        }
        if let Some(rest) = line.strip_prefix(b"LISTCHANNELS") {
            return if rest.is_empty() {
                Command::ListChannels
            } else {
                Command::Invalid
            };
        }
        if line.starts_with(b"SHOWSTATS") {
            return Command::ShowStats;
        }
        if let Some(rest) = line.strip_prefix(b"QUIT") {
            return if rest.is_empty() {
                Command::Quit
            } else {
                Command::Invalid
            };
        }
        Command::Invalid
    }
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
