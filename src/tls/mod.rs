//! TLS for the subscriber port, the admin UI and, if asked, the control
//! port: one certificate for all of them, reloaded without dropping
//! connections when its files change or on SIGHUP.

pub mod certs;
pub mod conn;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use std::net::SocketAddr;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

pub use crate::config::TlsMode;
pub use certs::CertError;
pub use conn::Conn;

/// A client gets this long to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often certificate files are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The server's TLS state.
pub struct Tls {
    acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
    provider: Arc<CryptoProvider>,
    cert: PathBuf,
    key: PathBuf,
    /// For a self-signed certificate: its files and the names it is for.
    self_signed: Option<(certs::SelfSigned, Vec<String>)>,
    /// The files' modification stamps when last loaded (or tried).
    stamps: Mutex<Option<Stamps>>,
}

type Stamps = [(Option<SystemTime>, u64); 2];

/// Hands every handshake the current certificate; swapping it affects new
/// handshakes only, so open connections carry on.
#[derive(Debug)]
struct Resolver {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl Tls {
    /// Load (or make) the certificate `mode` asks for; `None` when TLS is off.
    pub fn start(mode: &TlsMode, data_directory: &Path) -> Result<Option<Arc<Tls>>, CertError> {
        let (cert, key, self_signed) = match mode {
            TlsMode::Off => return Ok(None),
            TlsMode::Files { cert, key } => (cert.clone(), key.clone(), None),
            TlsMode::SelfSigned { names } => {
                let files = certs::SelfSigned::in_dir(data_directory);
                let names = certs::self_signed_names(names);
                if files.ensure(&names)? {
                    info!("made a self-signed certificate for {}", names.join(", "));
                }
                (files.cert.clone(), files.key.clone(), Some((files, names)))
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamps = stamps(&cert, &key);
        let loaded = certs::load(&cert, &key, &provider)?;
        let resolver = Arc::new(Resolver {
            current: ArcSwap::from_pointee(loaded),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| certs_error(&cert, e))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // Every listener speaks HTTP/1.1 (or the line protocol, whose
        // clients offer no ALPN at all).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            provider,
            cert,
            key,
            self_signed,
            stamps: Mutex::new(Some(stamps)),
        };
        info!(
            "TLS certificate {} (SHA-256 {})",
            tls.cert.display(),
            tls.fingerprint()
        );
        Ok(Some(Arc::new(tls)))
    }

    /// Finish the handshake on a new connection: `None` (logged) when it
    /// fails or times out, or when shutdown comes first.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        shutdown: &CancellationToken,
    ) -> Option<Conn> {
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp));
        tokio::select! {
            _ = shutdown.cancelled() => None,
            result = handshake => match result {
                Ok(Ok(stream)) => Some(Conn::Tls(Box::new(stream))),
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

    /// The certificate file in use.
    pub fn certificate_file(&self) -> &Path {
        &self.cert
    }

    /// Is the certificate the self-signed one?
    pub fn is_self_signed(&self) -> bool {
        self.self_signed.is_some()
    }

    /// Read the files again and use them for new connections. On error
    /// the certificate in use stays.
    pub fn reload(&self) -> Result<(), CertError> {
        if let Some((files, names)) = &self.self_signed {
            // Renews a self-signed certificate close to expiry.
            files.ensure(names)?;
        }
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(stamps(&self.cert, &self.key));
        let loaded = certs::load(&self.cert, &self.key, &self.provider)?;
        self.resolver.current.store(Arc::new(loaded));
        info!(
            "TLS certificate reloaded from {} (SHA-256 {})",
            self.cert.display(),
            self.fingerprint()
        );
        Ok(())
    }

    /// Reload if either file changed since it was last read.
    fn reload_if_changed(&self) -> Result<bool, CertError> {
        let now = stamps(&self.cert, &self.key);
        let before = *self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if before == Some(now) {
            return Ok(false);
        }
        self.reload().map(|()| true)
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
