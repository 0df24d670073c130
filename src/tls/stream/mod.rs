//! A server-side TLS stream over TCP that owns its buffers, so that an idle
//! connection holds none: bytes received but not yet processed, records
//! not yet sent and plaintext not yet read each live in a buffer that is
//! freed as soon as it is empty. (A buffered rustls connection keeps a
//! 4 KiB receive buffer for its whole life; with thousands of idle
//! subscribers that is most of their memory.)
//!
//! Writes encrypt everything they are given at once, into as few records
//! as the record size allows, and go straight to the socket when it has
//! room.
//!
//! rustls runs the handshake. A TLS 1.3 connection then moves to our own
//! record layer (`src/tls/records.rs`), which keeps a fraction of rustls' state;
//! TLS 1.2 stays with rustls.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
    WriteTraffic,
};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::records::{Opened, Records, MAX_PLAINTEXT};

/// Bytes read from the socket per read.
const READ_CHUNK: usize = 4096;
/// A write waits for the socket once this much is already queued.
const WRITE_QUEUE: usize = 64 * 1024;
/// Worst-case bytes a record adds to its payload (header, nonce, tag,
/// content type) in TLS 1.2 or 1.3.
const RECORD_OVERHEAD: usize = 64;

/// One TLS connection.
pub struct TlsStream {
    tcp: TcpStream,
    session: Session,
    /// Received TLS bytes not yet processed (a partial record).
    incoming: Vec<u8>,
    /// TLS bytes to send; `sent` of them already went out.
    outgoing: Vec<u8>,
    sent: usize,
    /// Decrypted bytes not yet read; `taken` of them already were.
    plaintext: Vec<u8>,
    taken: usize,
    /// The peer sent close_notify or closed the socket.
    peer_closed: bool,
    /// We queued our close_notify.
    closing: bool,
}

/// Who protects the records.
enum Session {
    /// rustls: during the handshake, and for TLS 1.2 throughout. Boxed so
    /// that a connection that moved on does not keep its room.
    Rustls(Box<UnbufferedServerConnection>),
    /// Our own record layer, for TLS 1.3 after the handshake.
    Records(Box<Records>),
}

/// Something to do once the connection may carry application data.
enum Action<'a> {
    Nothing,
    Encrypt(&'a [u8]),
    CloseNotify,
}

/// Where the connection stands after processing what it has.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    /// The handshake needs more bytes from the peer.
    Handshaking,
    /// Application data may flow.
    Traffic,
    /// Both sides have closed.
    Closed,
}

impl TlsStream {
    /// Run the server side of the handshake on `tcp`.
    pub async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<Self> {
        let conn = UnbufferedServerConnection::new(config).map_err(invalid)?;
        let mut stream = TlsStream {
            tcp,
            session: Session::Rustls(Box::new(conn)),
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            plaintext: Vec::new(),
            taken: 0,
            peer_closed: false,
            closing: false,
        };
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The protocol agreed by ALPN, if any (known until
    /// [`Self::take_over_records`]).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.session {
            Session::Rustls(conn) => conn.alpn_protocol(),
            Session::Records(_) => None,
        }
    }

    /// After the handshake: protect a TLS 1.3 connection's records
    /// ourselves from now on, and let rustls' state go.
    pub fn take_over_records(mut self) -> io::Result<Self> {
        // The handshake's last records must be out before the keys move.
        if self.queued() > 0 {
            return Err(io::Error::other("handshake records still queued"));
        }
        self.session = match self.session {
            Session::Rustls(conn) => match Records::take_over(*conn).map_err(invalid)? {
                Ok(records) => Session::Records(Box::new(records)),
                Err(tls12) => Session::Rustls(Box::new(tls12)),
            },
            records => records,
        };
        Ok(self)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let stage = self.process(Action::Nothing)?;
            // Handshake records go out before we wait for the peer.
            if self.poll_send(cx)?.is_pending() {
                return Poll::Pending;
            }
            match stage {
                Stage::Traffic => return Poll::Ready(Ok(())),
                Stage::Closed => return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                Stage::Handshaking => {
                    if self.peer_closed {
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    if self.poll_receive(cx)?.is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// Open what has arrived, collect what must be sent in reply, and do
    /// `action` once application data may be written.
    fn process(&mut self, action: Action<'_>) -> io::Result<Stage> {
        match &mut self.session {
            Session::Rustls(_) => self.process_rustls(action),
            Session::Records(records) => {
                let done = records
                    .open(&mut self.incoming, &mut self.plaintext, &mut self.outgoing)
                    .and_then(|opened| {
                        self.peer_closed |= opened == Opened::PeerClosed;
                        match action {
                            Action::Nothing => Ok(()),
                            Action::Encrypt(data) => records.seal(data, &mut self.outgoing),
                            Action::CloseNotify => records.seal_close_notify(&mut self.outgoing),
                        }
                    });
                if self.incoming.is_empty() {
                    self.incoming = Vec::new();
                }
                if let Err(e) = done {
                    // What explains it (an alert, our last close_notify)
                    // goes out if the socket takes it.
                    let _ = self.try_send();
                    return Err(invalid(e));
                }
                Ok(if self.peer_closed && self.closing {
                    Stage::Closed
                } else {
                    Stage::Traffic
                })
            }
        }
    }

    /// [`Self::process`] while rustls has the connection.
    fn process_rustls(&mut self, mut action: Action<'_>) -> io::Result<Stage> {
        loop {
            let Session::Rustls(conn) = &mut self.session else {
                return Err(io::Error::other("TLS session moved on"));
            };
            let UnbufferedStatus { discard, state } = conn.process_tls_records(&mut self.incoming);
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    self.incoming.drain(..discard);
                    self.queue_alert();
                    return Err(invalid(e));
                }
            };
            let stage = match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(invalid)?;
                        self.plaintext.extend_from_slice(record.payload);
                    }
                    None
                }
                ConnectionState::ReadEarlyData(mut early) => {
                    // Early data is not enabled; drain it should a peer send any.
                    while let Some(record) = early.next_record() {
                        record.map_err(invalid)?;
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append(
                        &mut self.outgoing,
                        512,
                        |out| encode.encode(out),
                        |e| match e {
                            EncodeError::InsufficientSize(InsufficientSizeError {
                                required_size,
                            }) => Some(*required_size),
                            _ => None,
                        },
                    )
                    .map_err(io::Error::other)?;
                    None
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    // Queued in order in `outgoing`; they go out before
                    // anything is awaited from the peer.
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Stage::Handshaking),
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    self.peer_closed = true;
                    Some(Stage::Closed)
                }
                ConnectionState::WriteTraffic(mut traffic) => {
                    match std::mem::replace(&mut action, Action::Nothing) {
                        Action::Nothing => Some(Stage::Traffic),
                        Action::Encrypt(data) => {
                            encrypt(&mut traffic, data, &mut self.outgoing)?;
                            None
                        }
                        Action::CloseNotify => {
                            append(
                                &mut self.outgoing,
                                RECORD_OVERHEAD,
                                |out| traffic.queue_close_notify(out),
                                required,
                            )
                            .map_err(io::Error::other)?;
                            None
                        }
                    }
                }
                _ => Some(Stage::Closed),
            };
            self.incoming.drain(..discard);
            if let Some(stage) = stage {
                if self.incoming.is_empty() {
                    self.incoming = Vec::new();
                }
                return Ok(stage);
            }
        }
    }

    /// After a protocol error rustls may have an alert for the peer: queue
    /// it so the peer learns why (sent if the socket takes it at once).
    fn queue_alert(&mut self) {
        let Session::Rustls(conn) = &mut self.session else {
            return;
        };
        let status = conn.process_tls_records(&mut []);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            let _ = append(&mut self.outgoing, 64, |out| encode.encode(out), |_| None);
            let _ = self.tcp.try_write(&self.outgoing[self.sent..]);
        }
    }

    /// Read what the socket has into `incoming`; ready once something was
    /// read or the peer closed.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.tcp.poll_read_ready(cx)?.is_pending() {
                return Poll::Pending;
            }
            // On the stack: an idle connection keeps no receive buffer.
            let mut chunk = [0u8; READ_CHUNK];
            match self.tcp.try_read(&mut chunk) {
                Ok(0) => {
                    self.peer_closed = true;
                    return Poll::Ready(Ok(()));
                }
                Ok(n) => {
                    self.incoming.extend_from_slice(&chunk[..n]);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Write queued records without waiting; true when none are left.
    fn try_send(&mut self) -> io::Result<bool> {
        while self.sent < self.outgoing.len() {
            match self.tcp.try_write(&self.outgoing[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.outgoing = Vec::new();
        self.sent = 0;
        Ok(true)
    }

    /// Write all queued records, waiting for room.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.try_send()? {
                return Poll::Ready(Ok(()));
            }
            if self.tcp.poll_write_ready(cx)?.is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Queued bytes not yet sent.
    fn queued(&self) -> usize {
        self.outgoing.len() - self.sent
    }

    /// Encrypt `data` and send what the socket takes now; the rest stays
    /// queued for [`Self::poll_send`].
    pub fn write_now(&mut self, data: &[u8]) -> io::Result<bool> {
        if self.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.process(Action::Encrypt(data))? == Stage::Closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.try_send()
    }

    /// [`Self::write_now`] for a buffer the caller gives up: when it fits
    /// in one record and nothing is queued before it, it is encrypted where
    /// it lies and sent with its header and tag around it, instead of being
    /// copied into the send queue first (most writes to a subscriber fit).
    /// `data` holds ciphertext afterwards.
    pub fn write_now_owned(&mut self, data: &mut Vec<u8>) -> io::Result<bool> {
        if self.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        // What arrived first (a key update to answer) goes first.
        if self.process(Action::Nothing)? == Stage::Closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let sealed = match &mut self.session {
            Session::Records(records) if self.outgoing.is_empty() => {
                records.seal_in_place(data).map_err(invalid)?
            }
            _ => None,
        };
        let Some((header, tag)) = sealed else {
            return self.write_now(data);
        };
        let parts = [
            io::IoSlice::new(&header),
            io::IoSlice::new(data),
            io::IoSlice::new(tag.as_ref()),
        ];
        let total = header.len() + data.len() + tag.as_ref().len();
        let sent = match self.tcp.try_write_vectored(&parts) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        if sent == total {
            return Ok(true);
        }
        // The socket took part: the rest waits in the send queue.
        self.outgoing.reserve(total);
        for part in &parts {
            self.outgoing.extend_from_slice(part);
        }
        self.sent = sent;
        Ok(false)
    }

    /// Wait until every queued record has gone out.
    pub async fn send_queued(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_send(cx)).await
    }

    /// Ready when the peer has closed; reads and discards whatever else it
    /// sends, counting its plaintext bytes into `received`.
    pub fn poll_peer_closed(&mut self, cx: &mut Context<'_>, received: &mut u64) -> Poll<()> {
        loop {
            *received += (self.plaintext.len() - self.taken) as u64;
            self.plaintext = Vec::new();
            self.taken = 0;
            if self.peer_closed {
                return Poll::Ready(());
            }
            match self.poll_receive(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    if self.process(Action::Nothing).is_err() {
                        return Poll::Ready(());
                    }
                    // A key update may need an answer.
                    if self.try_send().is_err() {
                        return Poll::Ready(());
                    }
                }
            }
        }
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.taken < this.plaintext.len() {
                let n = buf.remaining().min(this.plaintext.len() - this.taken);
                buf.put_slice(&this.plaintext[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.plaintext.len() {
                    this.plaintext = Vec::new();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed {
                return Poll::Ready(Ok(()));
            }
            if this.poll_receive(cx)?.is_pending() {
                return Poll::Pending;
            }
            this.process(Action::Nothing)?;
            this.try_send()?;
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Back-pressure: with a full queue, wait for the socket first.
        while this.queued() >= WRITE_QUEUE {
            if this.try_send()? {
                break;
            }
            if this.tcp.poll_write_ready(cx)?.is_pending() {
                return Poll::Pending;
            }
        }
        let n = buf.len().min(WRITE_QUEUE);
        this.write_now(&buf[..n])?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.closing = true;
            // A peer that already left cannot be told; just close.
            let _ = this.process(Action::CloseNotify);
        }
        if this.poll_send(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// Encrypt `data` into records appended to `out`.
fn encrypt(
    traffic: &mut WriteTraffic<'_, ServerConnectionData>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let records = data.len().div_ceil(MAX_PLAINTEXT).max(1);
    let guess = data.len() + records * RECORD_OVERHEAD;
    append(out, guess, |buf| traffic.encrypt(data, buf), required).map_err(io::Error::other)
}

fn required(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    }
}

/// Let `write` fill the end of `out`, growing it to the size `write` asks
/// for when the first guess is too small.
fn append<E>(
    out: &mut Vec<u8>,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let start = out.len();
    let mut size = guess;
    loop {
        out.resize(start + size, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => match required(&e) {
                Some(needed) if needed > size => size = needed,
                _ => {
                    out.truncate(start);
                    return Err(e);
                }
            },
        }
    }
}

/// A TLS error (rustls' or our record layer's) as an I/O error.
fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests;
