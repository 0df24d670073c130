//! TLS 1.3 records sealed and opened here, with the keys rustls agreed in
//! the handshake.
//!
//! rustls keeps about 3 KiB per connection for its record layer (the
//! connection state, the handshake deframer, both expanded keys), and none
//! of it can be freed while the connection lives. After a TLS 1.3
//! handshake we take over instead, through the interface rustls offers for
//! kernel TLS: it hands over the traffic keys, and its key schedule
//! derives the next generation of keys for each direction at once, after
//! which it is dropped too (it would keep ~850 bytes per connection).
//!
//! Keys are kept as rustls hands them over and expanded for each batch of
//! records sealed or opened (~0.1 µs with AES instructions, next to
//! microseconds for the system call that sends the batch): an expanded
//! AES-GCM key is 544 bytes, more than a quarter of what an idle plain
//! subscriber costs.
//!
//! What this layer handles besides application data (RFC 8446): alerts
//! (close_notify ends the peer's side, user_canceled is ignored, any other
//! is fatal), KeyUpdate (following the peer's, answering its request, and
//! replacing our own key before the cipher suite's confidentiality limit,
//! 2^24 records for AES-GCM), zero padding. One key update each way is
//! possible; a connection that would need a second ends with close_notify
//! and its client reconnects — browsers do not send KeyUpdate, and our own
//! limit comes after millions of records. Post-handshake messages other
//! than KeyUpdate are refused, as are handshake messages split across
//! records (KeyUpdate is five bytes and must end its record).

use ring::aead::{self, Aad, LessSafeKey, UnboundKey};
use rustls::crypto::cipher::{AeadKey, Iv, Nonce};
use rustls::server::UnbufferedServerConnection;
use rustls::{ConnectionTrafficSecrets, ProtocolVersion, SupportedCipherSuite};

/// The largest payload of one record.
pub const MAX_PLAINTEXT: usize = 16 * 1024;
/// RFC 8446 5.2: a protected record may be up to 256 bytes longer.
const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
const HEADER: usize = 5;
const TAG: usize = 16;

const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
const HANDSHAKE_KEY_UPDATE: u8 = 24;

const ALERT_CLOSE_NOTIFY: u8 = 0;
const ALERT_UNEXPECTED_MESSAGE: u8 = 10;
const ALERT_BAD_RECORD_MAC: u8 = 20;
const ALERT_RECORD_OVERFLOW: u8 = 22;
const ALERT_DECODE_ERROR: u8 = 50;
const ALERT_INTERNAL_ERROR: u8 = 80;
const ALERT_USER_CANCELED: u8 = 90;

/// Our key is replaced this many records before the suite's limit.
const KEY_UPDATE_MARGIN: u64 = 1 << 10;

/// Why a connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The connection cannot go on (mostly: the peer broke the protocol);
    /// `alert` tells the peer why.
    #[error("TLS record layer: {reason}")]
    Protocol { alert: u8, reason: &'static str },
    #[error("peer sent a fatal TLS alert ({0})")]
    PeerAlert(u8),
    /// A key update was needed and none is left: the connection ends
    /// (with close_notify) and the client reconnects.
    #[error("TLS connection out of key updates")]
    KeysUsedUp,
    #[error("TLS key schedule: {0}")]
    Keys(#[from] rustls::Error),
}

/// What opening the received records found.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// Application data (if any) was appended; more may follow.
    More,
    /// The peer sent close_notify: nothing more will come.
    PeerClosed,
}

/// The record layer of one TLS 1.3 connection after its handshake.
pub struct Records {
    tx: Secret,
    tx_seq: u64,
    rx: Secret,
    rx_seq: u64,
    /// The keys after a key update, derived in advance.
    next_tx: Option<Secret>,
    next_rx: Option<Secret>,
    /// Records after which our key is replaced.
    rotate_at: u64,
}

/// A traffic key as rustls hands it over, not yet expanded.
struct Secret {
    algorithm: &'static aead::Algorithm,
    key: AeadKey,
    iv: Iv,
}

impl Records {
    /// Take over a TLS 1.3 connection whose handshake is complete and
    /// whose handshake records are all sent; a TLS 1.2 connection is
    /// handed back (`Ok(Err(conn))`) to stay with rustls.
    pub fn take_over(
        conn: UnbufferedServerConnection,
    ) -> Result<Result<Self, UnbufferedServerConnection>, RecordError> {
        if conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
            return Ok(Err(conn));
        }
        let (secrets, mut schedule) = conn.dangerous_into_kernel_connection()?;
        let rotate_at = match schedule.negotiated_cipher_suite() {
            SupportedCipherSuite::Tls13(suite) => suite
                .common
                .confidentiality_limit
                .saturating_sub(KEY_UPDATE_MARGIN),
            _ => return Err(fault(ALERT_INTERNAL_ERROR, "not a TLS 1.3 cipher suite")),
        };
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        let (_, next_tx) = schedule.update_tx_secret()?;
        let (_, next_rx) = schedule.update_rx_secret()?;
        Ok(Ok(Records {
            tx: Secret::of(tx)?,
            tx_seq,
            rx: Secret::of(rx)?,
            rx_seq,
            next_tx: Some(Secret::of(next_tx)?),
            next_rx: Some(Secret::of(next_rx)?),
            rotate_at,
        }))
    }

    /// Seal `data` as application data, in records of at most 16 KiB,
    /// appended to `out`.
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let records = data.len().div_ceil(MAX_PLAINTEXT).max(1);
        out.reserve(data.len() + records * (HEADER + 1 + TAG));
        let mut key = self.tx.expand()?;
        for chunk in data.chunks(MAX_PLAINTEXT) {
            self.seal_record(&mut key, CONTENT_APPLICATION_DATA, chunk, out)?;
        }
        if data.is_empty() {
            self.seal_record(&mut key, CONTENT_APPLICATION_DATA, &[], out)?;
        }
        Ok(())
    }

    /// Seal `data` as one application-data record where it lies, when it
    /// fits in one and our key is not due for replacement: `data` becomes
    /// the record's body, and its header and tag are returned to be sent
    /// around it. `None` (with `data` untouched) means it must go through
    /// [`Self::seal`].
    pub fn seal_in_place(
        &mut self,
        data: &mut Vec<u8>,
    ) -> Result<Option<([u8; HEADER], aead::Tag)>, RecordError> {
        if data.len() > MAX_PLAINTEXT || self.tx_seq >= self.rotate_at {
            return Ok(None);
        }
        let key = self.tx.expand()?;
        let header = record_header(data.len());
        data.push(CONTENT_APPLICATION_DATA);
        let tag = seal_body(&key, &self.tx.iv, self.tx_seq, header, data)?;
        self.tx_seq += 1;
        Ok(Some((header, tag)))
    }

    /// Append our close_notify to `out`.
    pub fn seal_close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.seal_alert(ALERT_CLOSE_NOTIFY, out)
    }

    /// Open every complete record at the front of `incoming` (removing
    /// them), append their application data to `plaintext`, and append to
    /// `out` what the peer must be sent in reply (a KeyUpdate, or the alert
    /// that explains an error).
    pub fn open(
        &mut self,
        incoming: &mut Vec<u8>,
        plaintext: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Opened, RecordError> {
        let mut done = 0;
        let result = self.open_records(incoming, &mut done, plaintext, out);
        incoming.drain(..done);
        if let Err(error) = &result {
            let alert = match error {
                RecordError::Protocol { alert, .. } => *alert,
                RecordError::PeerAlert(_) => return result,
                RecordError::KeysUsedUp => ALERT_CLOSE_NOTIFY,
                RecordError::Keys(_) => ALERT_INTERNAL_ERROR,
            };
            let _ = self.seal_alert(alert, out);
        }
        result
    }

    fn open_records(
        &mut self,
        incoming: &mut [u8],
        done: &mut usize,
        plaintext: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Opened, RecordError> {
        let mut key: Option<LessSafeKey> = None;
        while incoming.len() - *done >= HEADER {
            let record = &mut incoming[*done..];
            let length = u16::from_be_bytes([record[3], record[4]]) as usize;
            if length > MAX_CIPHERTEXT {
                return Err(fault(ALERT_RECORD_OVERFLOW, "record too long"));
            }
            // After the handshake every record is protected, so its outer
            // type is application data.
            if record[0] != CONTENT_APPLICATION_DATA {
                return Err(fault(ALERT_UNEXPECTED_MESSAGE, "unprotected record"));
            }
            if record.len() < HEADER + length {
                break;
            }
            let (header, body) = record[..HEADER + length].split_at_mut(HEADER);
            let aad = Aad::from([header[0], header[1], header[2], header[3], header[4]]);
            let opener = match &mut key {
                Some(key) => key,
                None => key.insert(self.rx.expand()?),
            };
            let inner = opener
                .open_in_place(nonce(&self.rx.iv, self.rx_seq), aad, body)
                .map_err(|_| fault(ALERT_BAD_RECORD_MAC, "decryption failed"))?;
            self.rx_seq += 1;
            *done += HEADER + length;
            // The real content type is the last byte that is not padding.
            let end = inner.iter().rposition(|b| *b != 0).ok_or(fault(
                ALERT_UNEXPECTED_MESSAGE,
                "record without a content type",
            ))?;
            let (content, kind) = (&inner[..end], inner[end]);
            match kind {
                CONTENT_APPLICATION_DATA => plaintext.extend_from_slice(content),
                CONTENT_ALERT => match content {
                    [_, ALERT_CLOSE_NOTIFY] => return Ok(Opened::PeerClosed),
                    [_, ALERT_USER_CANCELED] => {}
                    [_, description] => return Err(RecordError::PeerAlert(*description)),
                    _ => return Err(fault(ALERT_DECODE_ERROR, "malformed alert")),
                },
                CONTENT_HANDSHAKE => {
                    let update = key_update(content)?;
                    self.rx = self.next_rx.take().ok_or(RecordError::KeysUsedUp)?;
                    self.rx_seq = 0;
                    key = None;
                    if update == KeyUpdate::Requested {
                        let mut key = self.tx.expand()?;
                        self.update_tx(&mut key, out)?;
                    }
                }
                _ => return Err(fault(ALERT_UNEXPECTED_MESSAGE, "unknown content type")),
            }
        }
        Ok(Opened::More)
    }

    fn seal_alert(&mut self, description: u8, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let mut key = self.tx.expand()?;
        self.seal_record(&mut key, CONTENT_ALERT, &alert(description), out)
    }

    /// Seal one record with `key` (our current key, expanded), replacing
    /// the key first when it is due.
    fn seal_record(
        &mut self,
        key: &mut LessSafeKey,
        kind: u8,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        if self.tx_seq >= self.rotate_at {
            if self.next_tx.is_none() {
                // Still under the limit (by the margin): say goodbye.
                let close_notify = alert(ALERT_CLOSE_NOTIFY);
                seal(
                    key,
                    &self.tx.iv,
                    self.tx_seq,
                    CONTENT_ALERT,
                    &close_notify,
                    out,
                )?;
                self.tx_seq += 1;
                return Err(RecordError::KeysUsedUp);
            }
            self.update_tx(key, out)?;
        }
        seal(key, &self.tx.iv, self.tx_seq, kind, data, out)?;
        self.tx_seq += 1;
        Ok(())
    }

    /// Tell the peer our key changes, then change it (and `key`).
    fn update_tx(&mut self, key: &mut LessSafeKey, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let next = self.next_tx.take().ok_or(RecordError::KeysUsedUp)?;
        let not_requested = [HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0];
        seal(
            key,
            &self.tx.iv,
            self.tx_seq,
            CONTENT_HANDSHAKE,
            &not_requested,
            out,
        )?;
        self.tx = next;
        self.tx_seq = 0;
        *key = self.tx.expand()?;
        Ok(())
    }

    /// Replace our key every `records` records (for tests of the key
    /// update; the suite's limit is millions).
    #[cfg(test)]
    pub fn rotate_after(&mut self, records: u64) {
        self.rotate_at = records;
    }

    /// Records sealed since our key was last replaced.
    #[cfg(test)]
    pub fn sent_with_this_key(&self) -> u64 {
        self.tx_seq
    }
}

/// Append one record carrying `data` of content type `kind`, sealed with
/// `key` as record number `seq`.
fn seal(
    key: &LessSafeKey,
    iv: &Iv,
    seq: u64,
    kind: u8,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    let start = out.len();
    let header = record_header(data.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out.push(kind);
    let tag = seal_body(key, iv, seq, header, &mut out[start + HEADER..])?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Encrypt a record's `body` (its content and content type) where it lies,
/// as record number `seq` under `header`; the tag is returned.
fn seal_body(
    key: &LessSafeKey,
    iv: &Iv,
    seq: u64,
    header: [u8; HEADER],
    body: &mut [u8],
) -> Result<aead::Tag, RecordError> {
    key.seal_in_place_separate_tag(nonce(iv, seq), Aad::from(header), body)
        .map_err(|_| fault(ALERT_INTERNAL_ERROR, "record too long to seal"))
}

/// The header of a protected record carrying `plaintext` bytes (its
/// content type and tag come on top).
fn record_header(plaintext: usize) -> [u8; HEADER] {
    let [high, low] = ((plaintext + 1 + TAG) as u16).to_be_bytes();
    [CONTENT_APPLICATION_DATA, 3, 3, high, low]
}

impl Secret {
    fn of(secrets: ConnectionTrafficSecrets) -> Result<Self, RecordError> {
        let (algorithm, key, iv) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&aead::AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&aead::AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&aead::CHACHA20_POLY1305, key, iv)
            }
            _ => return Err(fault(ALERT_INTERNAL_ERROR, "unsupported cipher suite")),
        };
        Ok(Secret { algorithm, key, iv })
    }

    fn expand(&self) -> Result<LessSafeKey, RecordError> {
        UnboundKey::new(self.algorithm, self.key.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| fault(ALERT_INTERNAL_ERROR, "key of the wrong length"))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum KeyUpdate {
    NotRequested,
    Requested,
}

/// The handshake content of one record: after the handshake, only a
/// single KeyUpdate is acceptable.
fn key_update(content: &[u8]) -> Result<KeyUpdate, RecordError> {
    match content {
        [HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0] => Ok(KeyUpdate::NotRequested),
        [HANDSHAKE_KEY_UPDATE, 0, 0, 1, 1] => Ok(KeyUpdate::Requested),
        [HANDSHAKE_KEY_UPDATE, ..] => Err(fault(ALERT_DECODE_ERROR, "malformed handshake message")),
        _ => Err(fault(
            ALERT_UNEXPECTED_MESSAGE,
            "unexpected handshake message",
        )),
    }
}

/// An alert's content. TLS 1.3 ignores the level; close_notify is a
/// warning, the rest fatal.
fn alert(description: u8) -> [u8; 2] {
    let level = if description == ALERT_CLOSE_NOTIFY {
        1
    } else {
        2
    };
    [level, description]
}

fn fault(alert: u8, reason: &'static str) -> RecordError {
    RecordError::Protocol { alert, reason }
}

/// The per-record nonce: the IV with the sequence number mixed in.
fn nonce(iv: &Iv, seq: u64) -> aead::Nonce {
    aead::Nonce::assume_unique_for_key(Nonce::new(iv, seq).0)
}
