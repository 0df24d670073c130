//! Reading certificate chains and keys from PEM files, and making the
//! self-signed certificate used for LAN installs.

use std::path::{Path, PathBuf};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// A problem with a certificate or key; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct CertError {
    pub path: PathBuf,
    pub message: String,
}

fn fail(path: &Path, message: impl Into<String>) -> CertError {
    CertError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Load a PEM certificate chain (leaf first) and its private key.
pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, CertError> {
    let cert_pem = std::fs::read(cert).map_err(|e| fail(cert, format!("cannot read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(cert, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(fail(cert, "no CERTIFICATE block found"));
    }
    let key_pem = std::fs::read(key).map_err(|e| fail(key, format!("cannot read: {e}")))?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        fail(
            key,
            format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM expected): {e}"),
        )
    })?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| fail(key, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(_) => Err(fail(
            key,
            format!(
                "this key does not belong to the certificate in {}",
                cert.display()
            ),
        )),
    }
}

/// SHA-256 of the leaf certificate, as browsers show it (`AB:CD:...`).
pub fn fingerprint(key: &CertifiedKey) -> String {
    let leaf = key.end_entity_cert().map(|c| c.as_ref()).unwrap_or(&[]);
    Sha256::digest(leaf)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Where the self-signed certificate lives in the data directory.
pub struct SelfSigned {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The names it was made for and when it expires, to know when to
    /// make a new one.
    stamp: PathBuf,
}

/// A self-signed certificate is renewed this long before it expires.
const RENEW_BEFORE: time::Duration = time::Duration::days(30);
/// How long a new self-signed certificate is valid.
const VALIDITY: time::Duration = time::Duration::days(397);

impl SelfSigned {
    pub fn in_dir(data_directory: &Path) -> SelfSigned {
        let dir = data_directory.join("tls");
        SelfSigned {
            cert: dir.join("self-signed.crt"),
            key: dir.join("self-signed.key"),
            stamp: dir.join("self-signed.names"),
        }
    }

    /// Make sure a certificate for `names` exists and is not about to
    /// expire; make a new one otherwise. Returns true if one was made.
    pub fn ensure(&self, names: &[String]) -> Result<bool, CertError> {
        let now = time::OffsetDateTime::now_utc();
        if self.current(names, now) {
            return Ok(false);
        }
        let mut params = rcgen::CertificateParams::new(names.to_vec())
            .map_err(|e| fail(&self.cert, format!("cannot make a certificate: {e}")))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "meteord (self-signed)");
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + VALIDITY;
        let key = rcgen::KeyPair::generate()
            .map_err(|e| fail(&self.key, format!("cannot make a key: {e}")))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| fail(&self.cert, format!("cannot sign the certificate: {e}")))?;
        let dir = self.cert.parent().expect("inside the data directory");
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, format!("cannot create: {e}")))?;
        write_private(&self.key, key.serialize_pem().as_bytes())?;
        std::fs::write(&self.cert, cert.pem())
            .map_err(|e| fail(&self.cert, format!("cannot write: {e}")))?;
        let stamp = format!(
            "{}\n{}\n",
            params.not_after.unix_timestamp(),
            names.join(" ")
        );
        std::fs::write(&self.stamp, stamp)
            .map_err(|e| fail(&self.stamp, format!("cannot write: {e}")))?;
        Ok(true)
    }

    /// Is the certificate on disk made for `names` and valid for a while?
    fn current(&self, names: &[String], now: time::OffsetDateTime) -> bool {
        let Ok(stamp) = std::fs::read_to_string(&self.stamp) else {
            return false;
        };
        let mut lines = stamp.lines();
        let expires = lines.next().and_then(|l| l.trim().parse::<i64>().ok());
        let made_for = lines.next().unwrap_or_default();
        expires.is_some_and(|t| t > (now + RENEW_BEFORE).unix_timestamp())
            && made_for == names.join(" ")
            && self.cert.exists()
            && self.key.exists()
    }
}

/// Write a private key readable by its owner only.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| fail(path, format!("cannot write: {e}")))?;
    std::io::Write::write_all(&mut file, bytes)
        .map_err(|e| fail(path, format!("cannot write: {e}")))
}

/// The names a self-signed certificate covers: this machine's usual
/// names plus the ones configured.
pub fn self_signed_names(extra: &[String]) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = hostname() {
        names.push(host);
    }
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// This machine's name, if it is a valid DNS name.
fn hostname() -> Option<String> {
    let name = crate::config::machine_name()?;
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then(|| name.to_ascii_lowercase())
}
