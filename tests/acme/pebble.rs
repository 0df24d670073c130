//! Pebble, Let's Encrypt's ACME test server (Debian's `pebble` package),
//! run on loopback ports for one test.
//!
//! Debian's package ships the program only, not the test certificates of
//! the upstream repository, so each run makes its own: a CA (made here)
//! signs the certificate of pebble's HTTPS listener, and meteord trusts
//! that CA through ACMECAFile. Pebble makes a new root and intermediate
//! for what it issues at every start; they are read from its management
//! port (`/roots/0`, `/intermediates/0`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::common::{connector, free_port};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How pebble is set up for one test.
#[derive(Default)]
pub struct Options {
    /// Where its validations go: meteord's plain and TLS subscriber ports.
    pub http_port: u16,
    pub tls_port: u16,
    /// Lifetime of the certificates it issues, in seconds (0: its default).
    pub validity: u64,
    /// Names it refuses to issue for.
    pub blocklist: Vec<String>,
    /// Its ACME port (0: a free one).
    pub listen_port: u16,
}

pub struct Pebble {
    pub dir: tempfile::TempDir,
    pub listen: SocketAddr,
    pub management: SocketAddr,
    /// The CA of pebble's own HTTPS, for ACMECAFile.
    pub ca_file: PathBuf,
    ca_der: CertificateDer<'static>,
    child: Option<Child>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Pebble {
    /// Start pebble and wait until it listens.
    pub fn start(mut options: Options) -> Pebble {
        if options.listen_port == 0 {
            options.listen_port = free_port();
        }
        let pebble = Pebble::prepare(options);
        pebble.run()
    }

    /// Everything but the process: files and ports (start it with
    /// [`Pebble::run`]).
    pub fn prepare(options: Options) -> Pebble {
        let dir = tempfile::tempdir().unwrap();
        let (ca_der, ca_pem, cert_pem, key_pem) = https_certificate();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        std::fs::write(dir.path().join("pebble.crt"), cert_pem).unwrap();
        std::fs::write(dir.path().join("pebble.key"), key_pem).unwrap();
        let listen: SocketAddr = format!("127.0.0.1:{}", options.listen_port)
            .parse()
            .unwrap();
        let management: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut config = serde_json::json!({
            "pebble": {
                "listenAddress": listen.to_string(),
                "managementListenAddress": management.to_string(),
                "certificate": dir.path().join("pebble.crt"),
                "privateKey": dir.path().join("pebble.key"),
                "httpPort": options.http_port,
                "tlsPort": options.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "domainBlocklist": options.blocklist,
            }
        });
        if options.validity > 0 {
            config["pebble"]["certificateValidityPeriod"] = options.validity.into();
        }
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        Pebble {
            dir,
            listen,
            management,
            ca_file,
            ca_der,
            child: None,
            log: Arc::default(),
        }
    }

    /// Start the process (again, after [`Pebble::kill`]: a new pebble on
    /// the same ports, which has forgotten every account and order).
    pub fn run(mut self) -> Pebble {
        self.restart();
        self
    }

    pub fn restart(&mut self) {
        let config = self.dir.path().join("pebble.json");
        let mut child = Command::new("pebble")
            .arg("-config")
            .arg(&config)
            // Validate at once, accept every nonce, and never reuse an
            // earlier authorization: each order is really validated.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run pebble ({e}): the ACME tests need Debian's pebble package \
                     (apt-get install pebble; scripts/test.sh installs it)"
                )
            });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = self.log.clone();
            let ready = ready_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("Listening on") || line.contains("listening on") {
                        let _ = ready.send(());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let listening = std::net::TcpStream::connect(self.listen).is_ok()
                && std::net::TcpStream::connect(self.management).is_ok();
            if listening {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pebble did not start: {:?}",
                self.log.lock().unwrap()
            );
            let _ = ready_rx.recv_timeout(Duration::from_millis(50));
        }
    }

    /// Stop it: its ACME port refuses connections until it runs again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The ACME directory URL, for ACMEDirectory.
    pub fn directory(&self) -> String {
        format!("https://{}/dir", self.listen)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The intermediate certificate this run of pebble issues with.
    pub async fn intermediate(&self) -> CertificateDer<'static> {
        let pem = self.management_get("/intermediates/0").await;
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM intermediate")
    }

    /// GET over HTTPS on the management port; the body.
    async fn management_get(&self, path: &str) -> String {
        let connector = connector(std::slice::from_ref(&self.ca_der), &[]);
        let tcp = TcpStream::connect(self.management).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.management
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        let _ = tls.read_to_end(&mut reply).await;
        let reply = String::from_utf8(reply).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_string()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost: the
/// CA's DER and PEM, the certificate's PEM and its key's PEM.
fn https_certificate() -> (CertificateDer<'static>, String, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pebble HTTPS test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        ca_cert.der().clone(),
        ca_cert.pem(),
        cert.pem(),
        key.serialize_pem(),
    )
}
