//! HTTPS, WSS and TLS on the control port: a test CA made here, a real TLS
//! client for every transport, certificate reloads under live subscribers,
//! and clear errors for bad files.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A certificate authority made for one test, and the files of a server
/// certificate it signed.
struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "meteord test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki {
            cert: dir.path().join("server.crt"),
            key: dir.path().join("server.key"),
            dir,
            ca: rcgen::Issuer::new(params, key),
            ca_der: ca_cert.der().clone(),
            ca_pem: ca_cert.pem(),
        };
        pki.issue("first");
        pki
    }

    /// Sign a new server certificate (new key) for localhost and 127.0.0.1
    /// and write it (with the CA after it, as a chain) over the files.
    /// Returns its fingerprint.
    fn issue(&self, name: &str) -> String {
        let (cert, key) = self.make(name);
        // The key first: a watcher seeing only the new certificate would
        // find it does not match the old key.
        write_replacing(&self.key, key.serialize_pem().as_bytes());
        let chain = format!("{}{}", cert.pem(), self.ca_pem);
        write_replacing(&self.cert, chain.as_bytes());
        fingerprint(cert.der())
    }

    fn make(&self, name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        (params.signed_by(&key, &self.ca).unwrap(), key)
    }

    fn options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TLS", "on".into()),
            ("TLSCertificateFile", self.cert.display().to_string()),
            ("TLSKeyFile", self.key.display().to_string()),
        ]
    }

    fn connector(&self) -> TlsConnector {
        connector(std::slice::from_ref(&self.ca_der), &[])
    }
}

/// Replace a file the way tools do: write a new one, rename it over.
fn write_replacing(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("new");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

async fn connect(tls: &TlsConnector, addr: SocketAddr, name: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    timeout(WAIT, tls.connect(name, tcp))
        .await
        .expect("handshake timed out")
        .expect("handshake failed")
}

/// The fingerprint of the certificate a new connection is given.
async fn served_fingerprint(tls: &TlsConnector, addr: SocketAddr) -> String {
    let stream = connect(tls, addr, "localhost").await;
    let (_, session) = stream.get_ref();
    fingerprint(session.peer_certificates().unwrap()[0].as_ref())
}

/// One request over TLS; the whole response.
async fn tls_request(tls: &TlsConnector, addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = connect(tls, addr, "localhost").await;
    stream.write_all(bytes).await.unwrap();
    let mut reply = Vec::new();
    // A peer that closes without close_notify is an error to rustls; the
    // bytes read until then are what matters.
    let _ = timeout(WAIT, stream.read_to_end(&mut reply))
        .await
        .expect("response never ended");
    parse_response(&reply)
}

async fn tls_get(tls: &TlsConnector, addr: SocketAddr, path: &str) -> Response {
    tls_request(tls, addr, &request_bytes("GET", path, &[], b"")).await
}

/// A streaming response over TLS, read as it comes.
async fn tls_stream(
    tls: &TlsConnector,
    addr: SocketAddr,
    path: &str,
) -> Stream<TlsStream<TcpStream>> {
    Stream::request(connect(tls, addr, "localhost").await, path).await
}

async fn tls_server(pki: &Pki, extra: &[(&str, &str)]) -> TestServer {
    let options = pki.options();
    let mut all: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    TestServer::start(&all).await
}

#[tokio::test]
async fn legacy_push_over_tls_sends_the_same_bytes_as_plain_http() {
    let pki = Pki::new();
    let plain_port = free_port().to_string();
    let server = tls_server(&pki, &[("PlainSubscriberPort", &plain_port)]).await;
    let tls = pki.connector();
    let plain = server.plain_subscriber.expect("a plain port");
    assert_eq!(plain.port().to_string(), plain_port);

    server.publish("news", "first").await;
    let mut secure = tls_stream(&tls, server.subscriber, "/push/h1/xhrinteractive/news.r0").await;
    let mut legacy = Stream::open(plain, "/push/h2/xhrinteractive/news.r0").await;
    server.wait_subscribers("news", 2).await;
    server.publish("news", "second").await;
    secure.until(b"second").await;
    let over_tls = secure.text();
    let over_plain = legacy.until(b"second").await.to_vec();
    assert!(over_tls.starts_with("HTTP/1.1 200 OK\r\n"), "{over_tls}");
    assert_eq!(over_tls.as_bytes(), &over_plain[..over_tls.len()]);
    assert!(over_tls.contains("first"), "{over_tls}");
    // A plain HTTP request to the TLS port gets no answer in clear.
    let raw = http_raw(server.subscriber, b"GET /meteor.js HTTP/1.1\r\n\r\n").await;
    assert!(!raw.starts_with(b"HTTP/1.1 200"), "{raw:?}");
    server.stop().await;
}

#[tokio::test]
async fn static_files_sse_poll_api_and_health_over_tls() {
    let pki = Pki::new();
    let plain_port = free_port().to_string();
    let server = tls_server(
        &pki,
        &[("HSTSMaxAge", "600"), ("PlainSubscriberPort", &plain_port)],
    )
    .await;
    let tls = pki.connector();

    let script = tls_get(&tls, server.subscriber, "/meteor.js").await;
    assert_eq!(script.status, 200, "{}", script.head);
    assert!(script
        .header("Content-Type")
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(script.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(
        script.header("Strict-Transport-Security"),
        Some("max-age=600")
    );
    assert!(String::from_utf8_lossy(&script.body).contains("Meteor"));
    // Legacy frame pages keep working on https pages.
    let frame = tls_get(&tls, server.subscriber, "/stream.html").await;
    assert_eq!(frame.status, 200);
    assert_eq!(frame.header("Origin-Agent-Cluster"), Some("?0"));
    // HSTS only ever comes over TLS.
    let clear = request(
        server.plain_subscriber.unwrap(),
        "GET",
        "/meteor.js",
        &[],
        b"",
    )
    .await;
    assert_eq!(clear.status, 200);
    assert_eq!(clear.header("Strict-Transport-Security"), None);

    let health = tls_get(&tls, server.subscriber, "/healthz").await;
    assert_eq!((health.status, &health.body[..]), (200, &b"ok\n"[..]));
    assert_eq!(
        health.header("Strict-Transport-Security"),
        Some("max-age=600")
    );
    let api = tls_get(&tls, server.subscriber, "/api/stats").await;
    assert_eq!(api.status, 401);
    assert!(api.json()["error"].is_string());

    let zero = server.publish("feed", "zero").await;
    server.publish("feed", "one").await;
    let poll = tls_get(&tls, server.subscriber, &format!("/poll/feed?after={zero}")).await;
    assert_eq!(poll.status, 200);
    let line: Value = serde_json::from_slice(
        poll.body
            .split(|b| *b == b'\n')
            .find(|l| l.starts_with(b"{"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["text"], "one");

    let mut sse = tls_stream(&tls, server.subscriber, "/sse/feed").await;
    sse.until(b"retry:").await;
    server.wait_subscribers("feed", 1).await;
    let id = server.publish("feed", "live").await;
    sse.until(b"\"text\":\"live\"").await;
    let text = sse.text();
    assert!(text.contains(&format!("id: {id}\n")), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn websocket_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]).await;
    let stream = connect(&pki.connector(), server.subscriber, "localhost").await;
    let url = format!("wss://localhost:{}/ws", server.subscriber.port());
    let (mut ws, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(response.status(), 101);
    ws.send(
        json!({"type": "subscribe", "channel": "w", "after": 0})
            .to_string()
            .into(),
    )
    .await
    .unwrap();
    let mut saw = Vec::new();
    loop {
        // Subscribed before the publish, so the message comes live.
        let frame = timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        let value: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        saw.push(value.clone());
        if value["type"] == "subscribed" {
            server.publish("w", "over wss").await;
        }
        if value["type"] == "message" {
            assert_eq!(value["text"], "over wss", "{saw:?}");
            break;
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn admin_ui_over_tls_sets_secure_cookies() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[("HSTSMaxAge", "60")]).await;
    let admin = server.admin.unwrap();
    let tls = pki.connector();
    let setup = tls_get(&tls, admin, "/setup").await;
    assert_eq!(setup.status, 200, "{}", setup.head);
    assert_eq!(
        setup.header("Strict-Transport-Security"),
        Some("max-age=60")
    );
    let body = b"username=admin&password=correct+horse+battery&password2=correct+horse+battery";
    let done = tls_request(
        &tls,
        admin,
        &request_bytes(
            "POST",
            "/setup",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body,
        ),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.head);
    let session = done
        .head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: meteord_session=")
        })
        .unwrap_or_else(|| panic!("no session cookie: {}", done.head));
    assert!(session.contains("; Secure"), "{session}");
    // The dashboard names the certificate and its fingerprint.
    let cookie = session_cookie(&done.head);
    let dashboard = tls_request(
        &tls,
        admin,
        &request_bytes("GET", "/", &[("Cookie", &cookie)], b""),
    )
    .await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.head);
    let page = String::from_utf8_lossy(&dashboard.body);
    let fingerprint = server.node.tls.as_ref().unwrap().fingerprint();
    assert!(page.contains(&fingerprint), "no fingerprint on: {page}");
    assert!(page.contains(&pki.cert.display().to_string()), "{page}");
    assert!(page.contains("Subscribers (HTTPS)"), "{page}");
    // Plain HTTP to the admin port is not answered in clear.
    let raw = http_raw(admin, b"GET /login HTTP/1.1\r\n\r\n").await;
    assert!(!raw.starts_with(b"HTTP/1.1"), "{raw:?}");
    server.stop().await;
}

#[tokio::test]
async fn control_port_speaks_tls_when_asked() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[("ControllerTLS", "1")]).await;
    let mut control = connect(&pki.connector(), server.control, "localhost").await;
    control.write_all(b"ADDMESSAGE c secret\r\n").await.unwrap();
    let mut reply = [0u8; 64];
    let n = timeout(WAIT, control.read(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply[..n].starts_with(b"OK\t"), "{:?}", &reply[..n]);
    // A plain publisher gets nothing and publishes nothing.
    let mut plain = Control::connect(server.control).await;
    plain.send(b"ADDMESSAGE c clear\r\n").await;
    let rest = plain.read_to_end().await;
    assert!(!rest.starts_with(b"OK"), "{rest:?}");
    assert_eq!(server.node.hub.messages(b"c").len(), 1);
    // Without ControllerTLS the control port stays plain.
    let other = tls_server(&pki, &[]).await;
    other.publish("c", "plain").await;
    server.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn changed_certificate_files_are_used_for_new_connections_without_dropping_old_ones() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]).await;
    let tls = pki.connector();
    let first = served_fingerprint(&tls, server.subscriber).await;
    assert_eq!(first, server.node.tls.as_ref().unwrap().fingerprint());

    let mut live = tls_stream(&tls, server.subscriber, "/push/h1/xhrinteractive/r").await;
    let mut sse = tls_stream(&tls, server.subscriber, "/sse/r").await;
    server.wait_subscribers("r", 2).await;

    // Renewal: new files, picked up by the watcher.
    let second = pki.issue("second");
    assert_ne!(first, second);
    let seen = timeout(Duration::from_secs(15), async {
        loop {
            let now = served_fingerprint(&tls, server.subscriber).await;
            if now == second {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the new certificate was never served");
    assert_eq!(seen, server.node.tls.as_ref().unwrap().fingerprint());

    // The subscribers from before the reload still get messages.
    server.publish("r", "after-reload").await;
    live.until(b"after-reload").await;
    sse.until(b"\"text\":\"after-reload\"").await;

    // A broken certificate file is refused; the one in use stays.
    std::fs::write(&pki.cert, "not a certificate").unwrap();
    let error = server.node.tls.as_ref().unwrap().reload().unwrap_err();
    assert!(
        error.to_string().contains(&pki.cert.display().to_string()),
        "{error}"
    );
    assert_eq!(served_fingerprint(&tls, server.subscriber).await, second);

    // A reload (what SIGHUP does) takes a good pair again at once.
    let third = pki.issue("third");
    server.node.reload().unwrap();
    assert_eq!(served_fingerprint(&tls, server.subscriber).await, third);
    server.publish("r", "after-third").await;
    live.until(b"after-third").await;
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_certificate_of_the_real_binary() {
    let pki = Pki::new();
    let options = pki.options();
    let mut args: Vec<&str> = Vec::new();
    for (key, value) in &options {
        args.push(match *key {
            "TLS" => "-TLS",
            "TLSCertificateFile" => "-TLSCertificateFile",
            _ => "-TLSKeyFile",
        });
        args.push(value);
    }
    let server = Process::start(&args);
    let tls = pki.connector();
    let before = served_fingerprint(&tls, server.subscriber).await;
    let after = pki.issue("renewed");
    server.signal(libc::SIGHUP);
    server.wait_log("TLS certificate reloaded");
    assert_ne!(before, after);
    assert_eq!(served_fingerprint(&tls, server.subscriber).await, after);
}

fn config_of(args: &meteord::config::LegacyArgs) -> Result<meteord::Config, String> {
    use meteord::config::{ConfigFile, Source, BUILTIN_CONFIG};
    let file = ConfigFile::parse(BUILTIN_CONFIG.as_bytes(), "test.conf", Source::File).unwrap();
    meteord::Config::from_parts(args, &file, None).map_err(|e| e.to_string())
}

#[tokio::test]
async fn bad_certificate_files_are_named_in_the_error() {
    let pki = Pki::new();
    let start = |cert: &Path, key: &Path| {
        let cert = cert.display().to_string();
        let key = key.display().to_string();
        async move {
            let data = tempfile::tempdir().unwrap();
            let mut args = meteord::config::LegacyArgs::default();
            for (k, v) in [
                ("ControllerPort", "0"),
                ("SubscriberPort", "0"),
                ("SubscriberIP", "127.0.0.1"),
                ("AdminUI", "0"),
                ("Persistence", "off"),
                ("DataDirectory", data.path().to_str().unwrap()),
                ("TLS", "on"),
                ("TLSCertificateFile", &cert),
                ("TLSKeyFile", &key),
            ] {
                args.set(k, None, v);
            }
            let config = config_of(&args).unwrap();
            match meteord::Server::bind(config, args).await {
                Ok(_) => panic!("started with {cert} and {key}"),
                Err(e) => format!("{e:#}"),
            }
        }
    };

    // A key of another certificate.
    let (_, other_key) = pki.make("other");
    let wrong_key = pki.dir.path().join("other.key");
    std::fs::write(&wrong_key, other_key.serialize_pem()).unwrap();
    let error = start(&pki.cert, &wrong_key).await;
    assert!(error.contains(&wrong_key.display().to_string()), "{error}");
    assert!(error.contains("does not belong"), "{error}");

    // Files that are not there, or not PEM.
    let missing = pki.dir.path().join("missing.crt");
    let error = start(&missing, &pki.key).await;
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(error.contains("cannot read"), "{error}");
    let garbage = pki.dir.path().join("garbage.crt");
    std::fs::write(&garbage, "hello").unwrap();
    let error = start(&garbage, &pki.key).await;
    assert!(error.contains(&garbage.display().to_string()), "{error}");
    let error = start(&pki.cert, &garbage).await;
    assert!(error.contains(&garbage.display().to_string()), "{error}");
    assert!(error.contains("private key"), "{error}");

    // TLS on without files names the missing key.
    let mut args = meteord::config::LegacyArgs::default();
    args.set("TLS", None, "on");
    args.set("TLSCertificateFile", None, "/x.crt");
    let error = config_of(&args).unwrap_err();
    assert!(error.to_string().contains("TLSKeyFile"), "{error}");

    // The real binary says which file is wrong and exits non-zero.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meteord"))
        .args([
            "-ControllerPort",
            "0",
            "-SubscriberPort",
            "0",
            "-AdminUI",
            "0",
            "-Persistence",
            "off",
            "-DataDirectory",
            pki.dir.path().to_str().unwrap(),
            "-TLS",
            "on",
            "-TLSCertificateFile",
            pki.cert.to_str().unwrap(),
            "-TLSKeyFile",
            wrong_key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(wrong_key.to_str().unwrap()), "{stderr}");
}

#[tokio::test]
async fn self_signed_certificate_is_made_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = TestServer::start(&[
        ("TLS", "self-signed"),
        ("TLSHostnames", "meteor.lan"),
        ("DataDirectory", data),
    ])
    .await;
    let files = dir.path().join("tls");
    let cert_pem = std::fs::read(files.join("self-signed.crt")).unwrap();
    use rustls::pki_types::pem::PemObject;
    let cert = CertificateDer::from_pem_slice(&cert_pem).unwrap();
    // Trusting exactly that certificate, a client verifies the extra name.
    let tls = connector(std::slice::from_ref(&cert), &[]);
    let stream = connect(&tls, server.subscriber, "meteor.lan").await;
    let served = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(served, cert);
    drop(stream);
    let shown = server.node.tls.as_ref().unwrap().fingerprint();
    assert_eq!(shown, fingerprint(cert.as_ref()));
    assert!(server.node.tls.as_ref().unwrap().is_self_signed());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(files.join("self-signed.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
    }

    // A restart with the same data directory serves the same certificate.
    server.stop().await;
    let again = TestServer::start(&[
        ("TLS", "self-signed"),
        ("TLSHostnames", "meteor.lan"),
        ("DataDirectory", data),
    ])
    .await;
    assert_eq!(again.node.tls.as_ref().unwrap().fingerprint(), shown);
    // Other names make a new one.
    again.stop().await;
    let renamed = TestServer::start(&[
        ("TLS", "self-signed"),
        ("TLSHostnames", "other.lan"),
        ("DataDirectory", data),
    ])
    .await;
    assert_ne!(renamed.node.tls.as_ref().unwrap().fingerprint(), shown);
    renamed.stop().await;
}

#[tokio::test]
async fn tls_subscribers_get_large_and_queued_messages_whole_and_their_leaving_is_seen() {
    let pki = Pki::new();
    let server = tls_server(&pki, &[]).await;
    let tls = pki.connector();
    let mut reader = tls_stream(&tls, server.subscriber, "/push/h1/xhrinteractive/big").await;
    server.wait_subscribers("big", 1).await;
    // Larger than one TLS record, and more in all than the socket buffers
    // hold while the reader does not read: the rest waits in the server.
    let mut control = server.control().await;
    let mut sent = Vec::new();
    for i in 0..24 {
        let text = format!("m{i:02}:{}", "x".repeat(30_000 + i));
        let reply = control.command(&format!("ADDMESSAGE big {text}")).await;
        assert!(reply.starts_with("OK"), "{reply}");
        sent.push(text);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    reader.until(sent[23].as_bytes()).await;
    let text = reader.text();
    let mut at = 0;
    for message in &sent {
        let found = text[at..]
            .find(message.as_str())
            .unwrap_or_else(|| panic!("{} missing or out of order", &message[..3]));
        at += found + message.len();
    }
    // A client that says close_notify and leaves is seen gone at once.
    reader.stream.shutdown().await.unwrap();
    drop(reader);
    server.wait_subscribers("big", 0).await;
    server.stop().await;
}
