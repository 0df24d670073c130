//! `ADDMESSAGE <channel> <text>`: publish. Answered `OK<TAB><id>` once the
//! message is stored (the executor sends a run of them to the publish door
//! together). Also the one command of a UDP datagram.

use super::{is_space, word, Command};

/// One or more spaces, the channel, exactly one space, the text.
pub fn parse(rest: &[u8]) -> Command<'_> {
    let (spaces, channel, tail) = word(rest);
    match tail.split_first() {
        Some((&sep, text)) if spaces > 0 && !channel.is_empty() && is_space(sep) => {
            Command::AddMessage { channel, text }
        }
        _ => Command::Invalid,
    }
}

/// A UDP datagram, as meteord read it: `ADDMESSAGE`, exactly one
/// whitespace byte, the channel, one whitespace byte, the text. The
/// datagram's trailing line ending is not part of the text.
pub fn parse_datagram(datagram: &[u8]) -> Option<(&[u8], &[u8])> {
    let datagram = datagram.strip_suffix(b"\n").unwrap_or(datagram);
    let datagram = datagram.strip_suffix(b"\r").unwrap_or(datagram);
    let rest = datagram.strip_prefix(b"ADDMESSAGE")?;
    let (&sep, rest) = rest.split_first()?;
    if !is_space(sep) {
        return None;
    }
    let (spaces, channel, tail) = word(rest);
    let (&sep, text) = tail.split_first()?;
    (spaces == 0 && !channel.is_empty() && is_space(sep)).then_some((channel, text))
}

/// The answer to a published message.
pub fn reply_ok(out: &mut Vec<u8>, id: u64) {
    out.extend_from_slice(b"OK\t");
    super::push_number(out, id);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::parse_datagram as parse;

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
        assert_eq!(parse(b"ADDMESSAGEch x"), None);
        assert_eq!(parse(b"SHOWSTATS\n"), None);
    }
}
