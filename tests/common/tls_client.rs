//! A real TLS client for the tests of HTTPS: trusting exactly the roots a
//! test gives, and telling which certificate a server served.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsConnector;

/// A client trusting exactly `roots`, offering `alpn` (none if empty).
/// Every connection is a full handshake: a resumed session would report
/// the certificate of the session it resumes.
pub fn connector(roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// SHA-256 of a certificate, as meteord and browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The admin session cookie (`meteord_session=...`) a response head sets.
pub fn session_cookie(head: &str) -> String {
    let line = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: meteord_session=")
        })
        .unwrap_or_else(|| panic!("no session cookie: {head}"));
    let (_, value) = line.split_once(':').unwrap();
    value.split(';').next().unwrap().trim().to_string()
}
