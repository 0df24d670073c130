//! The answers to ACME challenges while a certificate is being obtained:
//! HTTP-01 (a key authorization served at
//! `/.well-known/acme-challenge/<token>` on the subscriber ports) and
//! TLS-ALPN-01 (a special certificate handed to TLS clients that offer the
//! `acme-tls/1` protocol for the name being validated).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::server::ClientHello;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The ALPN protocol of TLS-ALPN-01 validations (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// The path prefix of HTTP-01 validations (RFC 8555, section 8.3).
pub const HTTP_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// The challenges being answered now, by token (HTTP-01) and by name
/// (TLS-ALPN-01). Empty outside an order.
#[derive(Debug, Default)]
pub struct Challenges {
    http: Mutex<HashMap<String, String>>,
    tls_alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// The key authorization to answer an HTTP-01 request for `token` with.
    pub fn http(&self, token: &str) -> Option<String> {
        lock(&self.http).get(token).cloned()
    }

    /// The certificate to answer a TLS-ALPN-01 validation of `name` with.
    pub fn tls_alpn(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        lock(&self.tls_alpn)
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    pub(super) fn add_http(&self, token: &str, key_authorization: &str) {
        lock(&self.http).insert(token.to_string(), key_authorization.to_string());
    }

    pub(super) fn add_tls_alpn(&self, name: &str, certificate: CertifiedKey) {
        lock(&self.tls_alpn).insert(name.to_ascii_lowercase(), Arc::new(certificate));
    }

    /// Forget every answer (the order is over, whatever its outcome).
    pub(super) fn clear(&self) {
        lock(&self.http).clear();
        lock(&self.tls_alpn).clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Does this client ask for a TLS-ALPN-01 validation?
pub fn is_validation(hello: &ClientHello<'_>) -> bool {
    hello
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN))
}

/// The self-signed certificate that proves control of `name` for
/// TLS-ALPN-01: the name, and the digest of the key authorization in the
/// critical acmeIdentifier extension.
pub fn tls_alpn_certificate(
    name: &str,
    key_authorization_digest: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot make the TLS-ALPN-01 certificate: {e}");
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(|e| fail(&e))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(
        key_authorization_digest,
    )];
    let key = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
    let cert = params.self_signed(&key).map_err(|e| fail(&e))?;
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| fail(&e))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// Is `token` one an ACME server could have made (base64url)? Anything
/// else is not looked up.
pub fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, X509Certificate};

    #[test]
    fn the_tls_alpn_certificate_carries_the_name_and_the_digest() {
        let provider = rustls::crypto::ring::default_provider();
        let digest = [7u8; 32];
        let key = tls_alpn_certificate("push.example.com", &digest, &provider).unwrap();
        let der = key.end_entity_cert().unwrap();
        let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
        let acme = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("an acmeIdentifier extension");
        assert!(acme.critical);
        // An OCTET STRING of the 32-byte digest.
        assert_eq!(acme.value, [&[0x04, 32][..], &digest].concat());
        let names = crate::tls::info::read(der.as_ref()).unwrap().names;
        assert_eq!(names, ["push.example.com"]);
    }

    #[test]
    fn answers_are_kept_until_cleared_and_tokens_checked() {
        let challenges = Challenges::default();
        challenges.add_http("tok-EN_1", "tok-EN_1.thumb");
        assert_eq!(
            challenges.http("tok-EN_1").as_deref(),
            Some("tok-EN_1.thumb")
        );
        assert_eq!(challenges.http("other"), None);
        challenges.clear();
        assert_eq!(challenges.http("tok-EN_1"), None);
        assert!(valid_token("abc-DEF_123"));
        assert!(!valid_token("../etc"));
        assert!(!valid_token(""));
        assert!(!valid_token(&"a".repeat(300)));
    }
}
