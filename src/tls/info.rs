//! What a certificate says, for people (the dashboard, the log) and for
//! deciding when to renew it: its names, issuer and validity.

use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The leaf certificate of a chain, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The DNS names and addresses it is valid for (its subject
    /// alternative names, else its common name).
    pub names: Vec<String>,
    /// Who signed it, as a distinguished name (`CN=..., O=...`).
    pub issuer: String,
    /// Its validity, in seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the certificate, as browsers show it.
    pub fingerprint: String,
}

impl CertificateInfo {
    /// Read the leaf of `key`'s chain; `None` if it is not X.509 DER.
    pub fn of(key: &CertifiedKey) -> Option<CertificateInfo> {
        let leaf = key.end_entity_cert().ok()?;
        let mut info = read(leaf.as_ref())?;
        info.fingerprint = super::certs::fingerprint(key);
        Some(info)
    }

    /// The second at which a third of its lifetime is left: when an
    /// automatic renewal starts.
    pub fn renew_at(&self) -> i64 {
        let lifetime = (self.not_after - self.not_before).max(0);
        self.not_after - lifetime / 3
    }
}

/// Read a DER certificate (without its fingerprint).
pub fn read(der: &[u8]) -> Option<CertificateInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_address(bytes) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        if let Some(cn) = cert.subject().iter_common_name().next() {
            names.extend(cn.as_str().ok().map(str::to_string));
        }
    }
    let validity = cert.validity();
    Some(CertificateInfo {
        names,
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        fingerprint: String::new(),
    })
}

fn ip_address(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(<[u8; 4]>::try_from(bytes).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(bytes).ok()?.into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_issuer_and_validity_of_a_made_certificate() {
        let mut params = rcgen::CertificateParams::new(vec![
            "push.example.com".to_string(),
            "192.0.2.7".to_string(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "meteord test");
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(1_700_000_900).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = read(cert.der()).unwrap();
        assert_eq!(info.names, ["push.example.com", "192.0.2.7"]);
        assert_eq!(info.issuer, "CN=meteord test");
        assert_eq!(
            (info.not_before, info.not_after),
            (1_700_000_000, 1_700_000_900)
        );
        // A third of 900 s is left at 600 s.
        assert_eq!(info.renew_at(), 1_700_000_600);
        assert_eq!(read(b"not a certificate"), None);
    }
}
