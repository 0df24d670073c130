//! The dashboard's TLS card: the certificate in use, whatever its source
//! (files, self-signed, ACME), and with `TLS acme` how obtaining and
//! renewing it goes and which ports the CA must reach.

use std::time::{SystemTime, UNIX_EPOCH};

use super::view;
use crate::config::{AcmeChallenge, Config};
use crate::tls::{CertificateSource, Tls};

/// The certificate in use.
pub struct TlsCard {
    pub source: String,
    pub file: String,
    /// Self-signed: a browser asks to trust it once.
    pub self_signed: bool,
    pub names: String,
    pub issuer: String,
    /// Seconds since the epoch.
    pub not_after: Option<u64>,
    /// "in 89d 23h", or "expired".
    pub expires: String,
    pub fingerprint: String,
    pub acme: Option<AcmeCard>,
}

/// How ACME goes.
pub struct AcmeCard {
    pub directory: String,
    pub names: String,
    /// Each challenge used, with what the CA must reach for it.
    pub challenges: Vec<(String, String)>,
    /// Serving the temporary self-signed certificate.
    pub pending: bool,
    pub ordering: bool,
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    pub failures: u32,
    pub next_try: Option<u64>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn tls_card(tls: &Tls, config: &Config) -> TlsCard {
    let info = tls.certificate();
    let now = unix(SystemTime::now());
    let not_after = info.as_ref().map(|i| i.not_after.max(0) as u64);
    let source = tls.source();
    TlsCard {
        source: source.to_string(),
        file: tls.certificate_file().display().to_string(),
        self_signed: tls.is_self_signed(),
        names: info
            .as_ref()
            .map_or_else(|| "—".into(), |i| i.names.join(", ")),
        issuer: info
            .as_ref()
            .map_or_else(|| "—".into(), |i| i.issuer.clone()),
        not_after,
        expires: match not_after {
            Some(t) if t > now => format!("in {}", view::duration(t - now)),
            Some(_) => "expired".into(),
            None => String::new(),
        },
        fingerprint: tls.fingerprint(),
        acme: tls.acme().map(|acme| {
            let status = acme.status();
            AcmeCard {
                directory: status.directory,
                names: status.names.join(", "),
                challenges: status
                    .challenges
                    .iter()
                    .map(|c| (c.to_string(), reach(*c, config)))
                    .collect(),
                pending: source == CertificateSource::AcmePending,
                ordering: status.ordering,
                last_success: status.last_success.map(unix),
                last_error: status.last_error,
                failures: status.failures,
                next_try: status.next_try.map(unix),
            }
        }),
    }
}

/// What the CA must reach to check a challenge, with this configuration.
fn reach(challenge: AcmeChallenge, config: &Config) -> String {
    let port = |key: &str, port: u16| match port {
        0 => format!("{key} (chosen at start: see the log)"),
        n => format!("{key} (now {n})"),
    };
    match challenge {
        AcmeChallenge::Http01 => format!(
            "port 80 of each name must reach {}",
            port("PlainSubscriberPort", config.plain_subscriber_port)
        ),
        _ => format!(
            "port 443 of each name must reach {}",
            port("SubscriberPort", config.subscriber_port)
        ),
    }
}
