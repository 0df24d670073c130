//! TLS for the subscriber port, the admin UI and, if asked, the control
//! port: one certificate for all of them — from files, self-signed, or
//! obtained and renewed from an ACME certificate authority ([`acme`]) —
//! replaced without dropping connections when its files change, on SIGHUP,
//! or when ACME brings a new one.

pub mod acme;
pub mod certs;
pub mod challenges;
pub mod conn;
pub mod info;
mod records;
pub mod stream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

pub use crate::config::TlsMode;
pub use acme::{Acme, AcmeStatus};
pub use certs::CertError;
use challenges::Challenges;
pub use conn::Conn;
pub use info::CertificateInfo;
use stream::TlsStream;

/// A client gets this long to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often certificate files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The server's TLS state.
pub struct Tls {
    config: Arc<ServerConfig>,
    resolver: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
    source: Source,
    /// The files of the certificate in use.
    current: Mutex<Current>,
}

/// Where the certificate comes from.
enum Source {
    /// TLSCertificateFile and TLSKeyFile.
    Files,
    /// Made here, for these names.
    SelfSigned {
        files: certs::SelfSigned,
        names: Vec<String>,
    },
    /// From an ACME CA; a temporary self-signed one until the first
    /// arrives.
    Acme {
        acme: Arc<Acme>,
        temporary: certs::SelfSigned,
    },
}

/// What the certificate in use is, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateSource {
    Files,
    SelfSigned,
    Acme,
    /// Self-signed, until ACME brings the first certificate.
    AcmePending,
}

impl std::fmt::Display for CertificateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertificateSource::Files => "files",
            CertificateSource::SelfSigned => "self-signed",
            CertificateSource::Acme => "ACME",
            CertificateSource::AcmePending => "temporary self-signed (waiting for ACME)",
        })
    }
}

/// The files of the certificate in use, and their modification stamps
/// when last loaded (or tried).
struct Current {
    cert: PathBuf,
    key: PathBuf,
    stamps: Stamps,
}

type Stamps = [(Option<SystemTime>, u64); 2];

/// Hands every handshake the current certificate; swapping it affects new
/// handshakes only, so open connections carry on. An ACME server's
/// TLS-ALPN-01 validation gets the challenge certificate instead.
#[derive(Debug)]
struct Resolver {
    current: ArcSwap<CertifiedKey>,
    challenges: Arc<Challenges>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if challenges::is_validation(&hello) {
            // Only the challenge certificate will do (RFC 8737); without
            // one for this name, the handshake fails.
            return hello
                .server_name()
                .and_then(|name| self.challenges.tls_alpn(name));
        }
        Some(self.current.load_full())
    }
}

impl Tls {
    /// Load (or make) the certificate `mode` asks for; `None` when TLS is
    /// off. With ACME, the certificate obtained earlier, or a temporary
    /// self-signed one: [`acme::maintain`] brings the real one.
    pub fn start(mode: &TlsMode, data_directory: &Path) -> Result<Option<Arc<Tls>>, CertError> {
        let (cert, key, source) = match mode {
            TlsMode::Off => return Ok(None),
            TlsMode::Files { cert, key } => (cert.clone(), key.clone(), Source::Files),
            TlsMode::SelfSigned { names } => {
                let files = certs::SelfSigned::in_dir(data_directory);
                let names = certs::self_signed_names(names);
                if files.ensure(&names)? {
                    info!("made a self-signed certificate for {}", names.join(", "));
                }
                (
                    files.cert.clone(),
                    files.key.clone(),
                    Source::SelfSigned { files, names },
                )
            }
            TlsMode::Acme(settings) => {
                let acme = Arc::new(Acme::new(settings.clone(), data_directory)?);
                let temporary = certs::SelfSigned::in_dir(data_directory);
                let (cert, key) = match acme.saved_certificate() {
                    Some(files) => files,
                    None => {
                        warn!(
                            "no certificate from {} yet: serving a temporary self-signed one until it comes",
                            settings.directory
                        );
                        temporary.ensure(&certs::self_signed_names(&settings.names))?;
                        (temporary.cert.clone(), temporary.key.clone())
                    }
                };
                (cert, key, Source::Acme { acme, temporary })
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamps = stamps(&cert, &key);
        let loaded = certs::load(&cert, &key, &provider)?;
        let challenges = match &source {
            Source::Acme { acme, .. } => acme.challenges.clone(),
            _ => Arc::default(),
        };
        let resolver = Arc::new(Resolver {
            current: ArcSwap::from_pointee(loaded),
            challenges,
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| certs_error(&cert, e))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // Every listener speaks HTTP/1.1 (or the line protocol, whose
        // clients offer no ALPN at all); ACME's validations speak their own.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // TLS 1.3 connections move to our own record layer after the
        // handshake (stream.rs), which takes the keys out of rustls.
        config.enable_secret_extraction = true;
        if matches!(source, Source::Acme { .. }) {
            config
                .alpn_protocols
                .push(challenges::ACME_TLS_ALPN.to_vec());
        }
        let tls = Tls {
            config: Arc::new(config),
            resolver,
            provider,
            source,
            current: Mutex::new(Current { cert, key, stamps }),
        };
        info!(
            "TLS certificate {} (SHA-256 {})",
            tls.certificate_file().display(),
            tls.fingerprint()
        );
        Ok(Some(Arc::new(tls)))
    }

    /// Finish the handshake on a new connection: `None` (logged) when it
    /// fails or times out, or when shutdown comes first, and after an ACME
    /// validation (which ends with the handshake).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        shutdown: &CancellationToken,
    ) -> Option<Conn> {
        let handshake = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            TlsStream::accept(tcp, self.config.clone()),
        );
        tokio::select! {
            _ = shutdown.cancelled() => None,
            result = handshake => match result {
                Ok(Ok(mut stream)) => {
                    if stream.alpn_protocol() == Some(challenges::ACME_TLS_ALPN) {
                        debug!(%peer, "answered a TLS-ALPN-01 validation");
                        let _ = stream.shutdown().await;
                        return None;
                    }
                    match stream.take_over_records() {
                        Ok(stream) => Some(Conn::Tls(Box::new(stream))),
                        Err(e) => {
                            debug!(%peer, "TLS record layer: {e}");
                            None
                        }
                    }
                }
                Ok(Err(e)) => {
                    debug!(%peer, "TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    None
                }
            },
        }
    }

    /// The SHA-256 fingerprint of the certificate in use.
    pub fn fingerprint(&self) -> String {
        certs::fingerprint(&self.resolver.current.load())
    }

    /// Names, issuer, validity and fingerprint of the certificate in use.
    pub fn certificate(&self) -> Option<CertificateInfo> {
        CertificateInfo::of(&self.resolver.current.load())
    }

    /// The certificate file in use.
    pub fn certificate_file(&self) -> PathBuf {
        self.lock_current().cert.clone()
    }

    /// Where the certificate in use comes from.
    pub fn source(&self) -> CertificateSource {
        match &self.source {
            Source::Files => CertificateSource::Files,
            Source::SelfSigned { .. } => CertificateSource::SelfSigned,
            Source::Acme { temporary, .. } => {
                if self.lock_current().cert == temporary.cert {
                    CertificateSource::AcmePending
                } else {
                    CertificateSource::Acme
                }
            }
        }
    }

    /// Is the certificate in use self-signed (browsers ask to trust it)?
    pub fn is_self_signed(&self) -> bool {
        matches!(
            self.source(),
            CertificateSource::SelfSigned | CertificateSource::AcmePending
        )
    }

    /// The ACME side, with `TLS acme`.
    pub fn acme(&self) -> Option<&Arc<Acme>> {
        match &self.source {
            Source::Acme { acme, .. } => Some(acme),
            _ => None,
        }
    }

    /// The answer to an HTTP-01 validation of `token`, while an ACME order
    /// waits for it.
    pub fn http_challenge(&self, token: &str) -> Option<String> {
        self.acme()?.challenges.http(token)
    }

    /// Read the files again and use them for new connections. On error
    /// the certificate in use stays. With ACME, a failing renewal is also
    /// tried again at once.
    pub fn reload(&self) -> Result<(), CertError> {
        if let Some(acme) = self.acme() {
            acme.retry_now_if_failing();
        }
        self.reload_files()
    }

    fn reload_files(&self) -> Result<(), CertError> {
        match &self.source {
            // Renews a self-signed certificate close to expiry.
            Source::SelfSigned { files, names } => {
                files.ensure(names)?;
            }
            Source::Acme { acme, .. } => {
                if let Some((cert, key)) = acme.saved_certificate() {
                    return self.install(&cert, &key);
                }
            }
            Source::Files => {}
        }
        let (cert, key) = {
            let current = self.lock_current();
            (current.cert.clone(), current.key.clone())
        };
        self.install(&cert, &key)
    }

    /// Use the certificate in these files for new connections (and watch
    /// them from now on). On error the certificate in use stays.
    fn install(&self, cert: &Path, key: &Path) -> Result<(), CertError> {
        let stamps = stamps(cert, key);
        let loaded = certs::load(cert, key, &self.provider);
        {
            // Remembered even on error, so that the watcher waits for the
            // next change instead of failing every tick.
            let mut current = self.lock_current();
            *current = Current {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                stamps,
            };
        }
        self.resolver.current.store(Arc::new(loaded?));
        info!(
            "TLS certificate reloaded from {} (SHA-256 {})",
            cert.display(),
            self.fingerprint()
        );
        Ok(())
    }

    /// Reload if either file changed since it was last read.
    fn reload_if_changed(&self) -> Result<bool, CertError> {
        let (cert, key, before) = {
            let current = self.lock_current();
            (current.cert.clone(), current.key.clone(), current.stamps)
        };
        if stamps(&cert, &key) == before {
            return Ok(false);
        }
        self.reload_files().map(|()| true)
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn certs_error(path: &Path, e: rustls::Error) -> CertError {
    CertError {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn stamps(cert: &Path, key: &Path) -> Stamps {
    let stamp = |path: &Path| match std::fs::metadata(path) {
        Ok(meta) => (meta.modified().ok(), meta.len()),
        Err(_) => (None, 0),
    };
    [stamp(cert), stamp(key)]
}

/// Reload the certificate whenever its files change, until shutdown.
/// A failed reload (often: the cert written but not yet its key) is
/// logged and tried again at the next change.
pub async fn watch(tls: Arc<Tls>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let tls = tls.clone();
        let result = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
        if let Ok(Err(e)) = result {
            error!("keeping the TLS certificate in use: {e}");
        }
    }
}
