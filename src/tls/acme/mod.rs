//! `TLS acme`: certificates obtained from an ACME certificate authority
//! (Let's Encrypt, or a team's own such as step-ca) and renewed by
//! themselves.
//!
//! [`maintain`] runs beside the listeners: it orders a certificate when
//! none is saved (the server meanwhile serves a temporary self-signed one),
//! then again when a third of its lifetime is left. A failure keeps the
//! certificate in use and is tried again later, a minute after the first
//! failure and twice as long after each next one; the dashboard and the
//! log say what went wrong and when the next try is.

mod client;
mod files;
mod order;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::challenges::Challenges;
use super::{CertError, CertificateSource, Tls};
use crate::config::{AcmeChallenge, AcmeSettings};
use client::Https;
use files::{Files, Ordered};

/// One whole order (validation and issuance included) gets this long.
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);
/// A long wait is cut in steps this long, so that a changed clock (a
/// machine waking from sleep) is noticed.
const RECHECK: Duration = Duration::from_secs(3600);

/// The ACME side of the TLS service: settings, files, the challenges being
/// answered and how the last tries went.
pub struct Acme {
    settings: AcmeSettings,
    files: Files,
    https: Https,
    pub(super) challenges: Arc<Challenges>,
    progress: Mutex<AcmeStatus>,
    /// Cut a wait short (SIGHUP after a failure).
    wake: Notify,
}

/// How obtaining the certificate goes, for the dashboard.
#[derive(Debug, Clone)]
pub struct AcmeStatus {
    /// The CA's directory URL.
    pub directory: String,
    pub names: Vec<String>,
    /// The challenge types used, in turn after failures.
    pub challenges: Vec<AcmeChallenge>,
    /// An order is under way now.
    pub ordering: bool,
    /// When the last certificate was obtained (by this run).
    pub last_success: Option<SystemTime>,
    /// What went wrong the last time, until a try succeeds.
    pub last_error: Option<String>,
    /// Failed tries in a row.
    pub failures: u32,
    /// When the next order (renewal or retry) starts.
    pub next_try: Option<SystemTime>,
}

impl Acme {
    /// Read the settings' CA file (an error names it) and find the saved
    /// files.
    pub(super) fn new(settings: AcmeSettings, data_directory: &Path) -> Result<Acme, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = Https::new(settings.ca_file.as_deref(), provider)?;
        let progress = AcmeStatus {
            directory: settings.directory.clone(),
            names: settings.names.clone(),
            challenges: settings.challenges.clone(),
            ordering: false,
            last_success: None,
            last_error: None,
            failures: 0,
            next_try: None,
        };
        Ok(Acme {
            settings,
            files: Files::in_dir(data_directory),
            https,
            challenges: Arc::default(),
            progress: Mutex::new(progress),
            wake: Notify::new(),
        })
    }

    /// How obtaining the certificate goes.
    pub fn status(&self) -> AcmeStatus {
        self.progress().clone()
    }

    /// The files of the certificate obtained earlier, if any.
    pub(super) fn saved_certificate(&self) -> Option<(PathBuf, PathBuf)> {
        self.files.saved()
    }

    /// After a failure, try again now rather than at the planned time.
    pub(super) fn retry_now_if_failing(&self) {
        if self.progress().failures > 0 {
            self.wake.notify_one();
        }
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, AcmeStatus> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the next order should start, given the certificate in use.
    fn due(&self, tls: &Tls) -> SystemTime {
        let progress = self.progress();
        if progress.failures > 0 {
            return progress.next_try.unwrap_or_else(SystemTime::now);
        }
        drop(progress);
        let ordered_for = Ordered {
            directory: self.settings.directory.clone(),
            names: self.settings.names.clone(),
        };
        if tls.source() != CertificateSource::Acme || self.files.ordered() != Some(ordered_for) {
            // None yet, or one for other names or another CA.
            return SystemTime::now();
        }
        match tls.certificate() {
            Some(info) => UNIX_EPOCH + Duration::from_secs(info.renew_at().max(0) as u64),
            None => SystemTime::now(),
        }
    }

    /// The wait before the next try after `failures` failures in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.settings
            .first_retry
            .saturating_mul(1 << doublings)
            .min(AcmeSettings::MAX_RETRY)
    }
}

/// Obtain the certificate and keep it renewed, until shutdown.
pub async fn maintain(tls: Arc<Tls>, shutdown: CancellationToken) {
    let Some(acme) = tls.acme().cloned() else {
        return;
    };
    loop {
        let due = acme.due(&tls);
        acme.progress().next_try = Some(due);
        if !wait_until(due, &acme.wake, &shutdown).await {
            return;
        }
        let challenge = {
            let mut progress = acme.progress();
            progress.ordering = true;
            let turns = &acme.settings.challenges;
            turns[progress.failures as usize % turns.len()]
        };
        info!(
            "ACME: ordering a certificate for {} from {} ({challenge})",
            acme.settings.names.join(", "),
            acme.settings.directory
        );
        let obtained = tokio::select! {
            _ = shutdown.cancelled() => {
                acme.challenges.clear();
                return;
            }
            result = tokio::time::timeout(
                ORDER_TIMEOUT,
                order::obtain(&acme, challenge, &tls.provider),
            ) => result.unwrap_or_else(|_| Err(anyhow!("no certificate within {ORDER_TIMEOUT:?}"))),
        };
        acme.challenges.clear();
        let installed = obtained.and_then(|()| {
            let (cert, key) = acme
                .files
                .saved()
                .ok_or_else(|| anyhow!("the certificate files disappeared"))?;
            Ok(tls.install(&cert, &key)?)
        });
        let mut progress = acme.progress();
        progress.ordering = false;
        match installed {
            Ok(()) => {
                progress.failures = 0;
                progress.last_error = None;
                progress.last_success = Some(SystemTime::now());
                drop(progress);
                if let Some(info) = tls.certificate() {
                    info!(
                        "ACME: new certificate for {} from {}, valid until {} (SHA-256 {})",
                        info.names.join(", "),
                        info.issuer,
                        unix_utc(info.not_after),
                        info.fingerprint
                    );
                }
            }
            Err(e) => {
                progress.failures += 1;
                let wait = acme.backoff(progress.failures);
                let next = SystemTime::now() + wait;
                progress.next_try = Some(next);
                progress.last_error = Some(format!("{e:#}"));
                drop(progress);
                let at = next.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                error!(
                    "ACME: no certificate for {} from {}: {e:#}; {}; next try in {}s, at {}",
                    acme.settings.names.join(", "),
                    acme.settings.directory,
                    match tls.source() {
                        CertificateSource::Acme => "the certificate in use stays",
                        _ => "the temporary self-signed certificate stays",
                    },
                    wait.as_secs(),
                    unix_utc(at as i64)
                );
            }
        }
    }
}

/// Sleep until `due`, or until woken; false when shutdown came first.
async fn wait_until(due: SystemTime, wake: &Notify, shutdown: &CancellationToken) -> bool {
    loop {
        let left = due
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = wake.notified() => return true,
            _ = tokio::time::sleep(left.min(RECHECK)) => {}
        }
    }
}

/// A time for the log: `2026-03-01 12:00:00 UTC`.
fn unix_utc(seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => seconds.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_twice_as_long_each_time_up_to_six_hours() {
        let settings = AcmeSettings {
            names: vec!["push.example.com".into()],
            email: None,
            directory: crate::config::values::LETS_ENCRYPT.into(),
            ca_file: None,
            challenges: vec![AcmeChallenge::TlsAlpn01],
            first_retry: AcmeSettings::FIRST_RETRY,
        };
        let dir = tempfile::tempdir().unwrap();
        let acme = Acme::new(settings, dir.path()).unwrap();
        let minutes = |n: u64| Duration::from_secs(60 * n);
        assert_eq!(acme.backoff(1), minutes(1));
        assert_eq!(acme.backoff(2), minutes(2));
        assert_eq!(acme.backoff(5), minutes(16));
        assert_eq!(acme.backoff(9), minutes(256));
        assert_eq!(acme.backoff(10), AcmeSettings::MAX_RETRY);
        assert_eq!(acme.backoff(u32::MAX), AcmeSettings::MAX_RETRY);
    }
}
