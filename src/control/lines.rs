//! Splitting the control stream into lines.
//!
//! A line ends at LF, with an optional CR before it. A CR anywhere else
//! makes the line malformed (meteord hung on it; we answer ERR and go on).
//! A line longer than the limit is answered once with an error and skipped
//! up to its end, without buffering it.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    Line(Bytes),
    Malformed,
    TooLong,
}

pub struct LineBuffer {
    buf: BytesMut,
    max: usize,
    /// Inside an over-long line: drop bytes until its LF.
    skipping: bool,
    /// Bytes already searched for LF (so each byte is scanned once).
    scanned: usize,
}

impl LineBuffer {
    pub fn new(max: usize) -> LineBuffer {
        LineBuffer {
            buf: BytesMut::new(),
            max,
            skipping: false,
            scanned: 0,
        }
    }

    /// Where the next read from the socket goes.
    pub fn read_target(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        &mut self.buf
    }

    #[cfg(test)]
    fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, if one is buffered.
    pub fn next_line(&mut self) -> Option<Framed> {
        loop {
            match memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                Some(offset) => {
                    let end = self.scanned + offset;
                    self.scanned = 0;
                    let mut line = self.buf.split_to(end + 1).freeze();
                    if self.skipping {
                        self.skipping = false;
                        continue;
                    }
                    line.truncate(end);
                    if line.last() == Some(&b'\r') {
                        line.truncate(end - 1);
                    }
                    if line.len() > self.max {
                        return Some(Framed::TooLong);
                    }
                    if memchr::memchr(b'\r', &line).is_some() {
                        return Some(Framed::Malformed);
                    }
                    return Some(Framed::Line(line));
                }
                None => {
                    self.scanned = self.buf.len();
                    if self.buf.len() > self.max + 1 {
                        self.buf.advance(self.buf.len());
                        self.scanned = 0;
                        if !self.skipping {
                            self.skipping = true;
                            return Some(Framed::TooLong);
                        }
                    }
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &mut LineBuffer) -> Vec<Framed> {
        std::iter::from_fn(|| buf.next_line()).collect()
    }

    #[test]
    fn crlf_lf_and_partial_lines() {
        let mut b = LineBuffer::new(100);
        b.extend(b"A\r\nB\nC");
        assert_eq!(
            all(&mut b),
            [
                Framed::Line(Bytes::from("A")),
                Framed::Line(Bytes::from("B"))
            ]
        );
        b.extend(b"D\r");
        assert_eq!(all(&mut b), []);
        b.extend(b"\n");
        assert_eq!(all(&mut b), [Framed::Line(Bytes::from("CD"))]);
    }

    #[test]
    fn stray_cr_is_malformed_and_the_stream_goes_on() {
        let mut b = LineBuffer::new(100);
        b.extend(b"SHOWSTATS\rQUIT\r\nQUIT\r\n");
        assert_eq!(
            all(&mut b),
            [Framed::Malformed, Framed::Line(Bytes::from("QUIT"))]
        );
    }

    #[test]
    fn long_lines_are_refused_once_and_skipped() {
        let mut b = LineBuffer::new(8);
        b.extend(b"0123456789");
        assert_eq!(all(&mut b), [Framed::TooLong]);
        b.extend(b"0123456789");
        assert_eq!(all(&mut b), []);
        b.extend(b"xx\nOK\n");
        assert_eq!(all(&mut b), [Framed::Line(Bytes::from("OK"))]);
        // A long line that arrives whole is refused too.
        b.extend(b"0123456789abc\nOK\n");
        assert_eq!(
            all(&mut b),
            [Framed::TooLong, Framed::Line(Bytes::from("OK"))]
        );
    }
}
