//! Reading an HTTP request head from a raw socket, within limits, and
//! recognising the legacy request forms.

use std::time::Duration;

use crate::tls::Conn;
use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Longest request line accepted.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest request head (request line and headers) accepted.
pub use crate::node::web::MAX_HEAD;
/// Time allowed for a client to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// The peer closed (or failed) before sending a whole head.
    Closed,
    TimedOut,
    LineTooLong,
    HeadTooLarge,
}

/// Reads request heads from one connection; gives up at shutdown.
pub struct HeadReader<'a> {
    pub stream: &'a mut Conn,
    pub shutdown: &'a CancellationToken,
}

impl HeadReader<'_> {
    /// Read until `buf` holds a complete line (the request line). Returns
    /// the end of that line (index of its LF) and the bytes read.
    pub async fn request_line(&mut self, buf: &mut BytesMut) -> Result<(usize, u64), HeadError> {
        self.read_until(buf, MAX_REQUEST_LINE, HeadError::LineTooLong, |b| {
            memchr::memchr(b'\n', b)
        })
        .await
    }

    /// Read until `buf` holds a complete head (ending in an empty line).
    /// Returns the index just past the head and the bytes read.
    pub async fn head(&mut self, buf: &mut BytesMut) -> Result<(usize, u64), HeadError> {
        self.read_until(buf, MAX_HEAD, HeadError::HeadTooLarge, head_end)
            .await
    }

    async fn read_until(
        &mut self,
        buf: &mut BytesMut,
        limit: usize,
        too_long: HeadError,
        find: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<(usize, u64), HeadError> {
        let mut read = 0u64;
        let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
        loop {
            if let Some(end) = find(buf) {
                return Ok((end, read));
            }
            if buf.len() > limit {
                return Err(too_long);
            }
            buf.reserve(1024);
            let result = tokio::select! {
                _ = self.shutdown.cancelled() => return Err(HeadError::Closed),
                result = tokio::time::timeout_at(deadline, self.stream.read_buf(buf)) => result,
            };
            match result {
                Err(_) => return Err(HeadError::TimedOut),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(HeadError::Closed),
                Ok(Ok(n)) => read += n as u64,
            }
        }
    }
}

/// Index just past the empty line that ends a head (`\r\n\r\n` or `\n\n`,
/// mixed endings allowed), if the head is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(offset) = memchr::memchr(b'\n', &buf[start..]) {
        let lf = start + offset;
        let next = &buf[lf + 1..];
        if next.starts_with(b"\n") {
            return Some(lf + 2);
        }
        if next.starts_with(b"\r\n") {
            return Some(lf + 3);
        }
        start = lf + 1;
    }
    None
}

/// The parts of a request line.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub target: &'a str,
}

/// Split `METHOD SP target [SP version]`; `None` if it is not one.
pub fn parse_request_line(line: &[u8]) -> Option<RequestLine<'_>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_ascii_whitespace();
    let method = parts.next()?;
    let target = parts.next()?;
    if !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(RequestLine { method, target })
}

/// A legacy subscription request: `<prefix>/<hostid>/<mode>/<channels>`.
#[derive(Debug, PartialEq, Eq)]
pub struct PushTarget<'a> {
    pub host_id: &'a str,
    pub mode: &'a str,
    pub channels: &'a str,
    /// What follows `?` in the target, if anything.
    pub query: Option<&'a str>,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_channel_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'%' | b'.' | b'/')
}

/// Take a non-empty run of bytes matching `ok` from the front of `s`.
fn take(s: &str, ok: fn(u8) -> bool) -> Option<(&str, &str)> {
    let len = s.bytes().take_while(|&b| ok(b)).count();
    (len > 0).then(|| s.split_at(len))
}

/// Match a request target against the subscription form; the prefix
/// matches case-insensitively and anything after the channel list (such as
/// a query string) is ignored, as in meteord.
pub fn parse_push_target<'a>(target: &'a str, prefix: &str) -> Option<PushTarget<'a>> {
    let head = target.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = target[prefix.len()..].strip_prefix('/')?;
    let (host_id, rest) = take(rest, is_word)?;
    let (mode, rest) = take(rest.strip_prefix('/')?, is_word)?;
    let (channels, _) = take(rest.strip_prefix('/')?, is_channel_path)?;
    Some(PushTarget {
        host_id,
        mode,
        channels,
        query: target.split_once('?').map(|(_, q)| q),
    })
}

/// Does a request head announce a body (`Transfer-Encoding`, or a
/// `Content-Length` other than 0)? The legacy path reads heads only; a
/// body left unread would be taken for the next request.
pub fn announces_body(head: &[u8]) -> bool {
    let Ok(head) = std::str::from_utf8(head) else {
        return true;
    };
    head.lines().skip(1).any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        let name = name.trim();
        name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value.trim() != "0")
    })
}

/// The headers of a legacy head that matter after it is read (user agent,
/// cookies, authorization), as a header map.
pub fn kept_headers(head: &[u8]) -> axum::http::HeaderMap {
    let mut map = axum::http::HeaderMap::new();
    for name in [
        axum::http::header::USER_AGENT,
        axum::http::header::COOKIE,
        axum::http::header::AUTHORIZATION,
    ] {
        let value =
            header(head, name.as_str()).and_then(|v| axum::http::HeaderValue::from_str(v).ok());
        if let Some(value) = value {
            map.insert(name, value);
        }
    }
    map
}

/// The value of a header (first match, name compared case-insensitively).
pub fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a str> {
    let head = std::str::from_utf8(head).ok()?;
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_announced() {
        assert!(!announces_body(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!announces_body(
            b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(announces_body(
            b"GET / HTTP/1.1\r\ncontent-length: 12\r\n\r\n"
        ));
        assert!(announces_body(
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(announces_body(
            b"GET / HTTP/1.1\r\nContent-Length: 0, 5\r\n\r\n"
        ));
    }

    #[test]
    fn heads_end_at_the_empty_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\nrest"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line(b"GET /x HTTP/1.1\r"),
            Some(RequestLine {
                method: "GET",
                target: "/x"
            })
        );
        assert_eq!(parse_request_line(b"GET"), None);
        assert_eq!(parse_request_line(b"get /x HTTP/1.1"), None);
    }

    #[test]
    fn push_targets() {
        assert_eq!(
            parse_push_target("/push/abc/longpoll/demo.r5/other?x=1", "/push"),
            Some(PushTarget {
                host_id: "abc",
                mode: "longpoll",
                channels: "demo.r5/other",
                query: Some("x=1"),
            })
        );
        assert_eq!(
            parse_push_target("/PUSH/abc/iframe/a", "/push")
                .unwrap()
                .mode,
            "iframe"
        );
        assert_eq!(parse_push_target("/push/abc/longpoll/", "/push"), None);
        assert_eq!(parse_push_target("/push/a-b/longpoll/x", "/push"), None);
        assert_eq!(parse_push_target("/pushy/a/b/c", "/push"), None);
        assert_eq!(parse_push_target("/x/a/b/c", "/x").unwrap().channels, "c");
    }

    #[test]
    fn headers() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\nuser-agent: Test/1.0\r\n\r\n";
        assert_eq!(header(head, "User-Agent"), Some("Test/1.0"));
        assert_eq!(header(head, "Referer"), None);
    }
}
