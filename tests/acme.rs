//! `TLS acme` against a real ACME server on this machine (pebble, see
//! `acme/pebble.rs`): certificates obtained with TLS-ALPN-01 and HTTP-01,
//! verified by a real TLS client against pebble's intermediate, reused
//! after a restart, renewed under a live subscriber, and an ACME server
//! that is down or refuses: a clear error on the dashboard, the certificate
//! in use kept, tried again later.

mod common;
#[path = "acme/pebble.rs"]
mod pebble;

use std::path::Path;
use std::time::Duration;

use common::*;
use meteord::config::TlsMode;
use meteord::tls::{CertificateSource, Tls};
use pebble::{Options, Pebble};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Issuing takes pebble well under a second; this leaves room for a busy
/// machine.
const ISSUE_WAIT: Duration = Duration::from_secs(60);

/// The keys of `TLS acme` for `localhost` at this pebble.
fn acme_options(
    pebble: &Pebble,
    data: &Path,
    subscriber_port: u16,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut options = vec![
        ("TLS", "acme".to_string()),
        ("TLSHostnames", "localhost".to_string()),
        ("ACMEDirectory", pebble.directory()),
        ("ACMECAFile", pebble.ca_file.display().to_string()),
        ("ACMEEmail", "ops@example.com".to_string()),
        ("SubscriberPort", subscriber_port.to_string()),
        ("DataDirectory", data.display().to_string()),
    ];
    options.extend(extra.iter().cloned());
    options
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Start meteord; failed tries are tried again after `first_retry`.
async fn start(options: &[(String, String)], first_retry: Duration) -> TestServer {
    let options: Vec<(&str, &str)> = options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    TestServer::start_tweaked(&options, |config| {
        if let TlsMode::Acme(acme) = &mut config.tls {
            acme.first_retry = first_retry;
        }
    })
    .await
}

/// Wait until the certificate from pebble is in use.
async fn wait_for_certificate(server: &TestServer, pebble: &Pebble) {
    wait_until("a certificate from pebble", server, pebble, |tls| {
        tls.source() == CertificateSource::Acme
    })
    .await;
}

fn tls_of(server: &TestServer) -> &Tls {
    server.node.tls.as_deref().expect("TLS is on")
}

/// Wait until `done` holds, or fail with ACME's status and pebble's log.
async fn wait_until(what: &str, server: &TestServer, pebble: &Pebble, done: impl Fn(&Tls) -> bool) {
    let tls = tls_of(server);
    let waited = timeout(ISSUE_WAIT, async {
        while !done(tls) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if waited.is_err() {
        panic!(
            "{what}: not within {ISSUE_WAIT:?}; ACME status {:?}; pebble said:\n{}",
            tls.acme().map(|a| a.status()),
            pebble.log_text()
        );
    }
}

async fn handshake(
    tls: &TlsConnector,
    addr: std::net::SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    timeout(WAIT, tls.connect(name, tcp))
        .await
        .expect("handshake timed out")
}

/// The fingerprint of the certificate a new connection is given, verified
/// by a client that trusts `roots` only.
async fn served(roots: &[CertificateDer<'static>], addr: std::net::SocketAddr) -> String {
    let stream = handshake(&connector(roots, &[b"http/1.1"]), addr)
        .await
        .expect("the served certificate does not verify");
    fingerprint(stream.get_ref().1.peer_certificates().unwrap()[0].as_ref())
}

/// The temporary self-signed certificate, as a root to trust.
fn temporary_root(data: &Path) -> CertificateDer<'static> {
    let pem = std::fs::read(data.join("tls/self-signed.crt")).unwrap();
    CertificateDer::from_pem_slice(&pem).unwrap()
}

/// One request over TLS, the whole answer.
async fn tls_request(tls: &TlsConnector, addr: std::net::SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = handshake(tls, addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut reply = Vec::new();
    let _ = timeout(WAIT, stream.read_to_end(&mut reply)).await;
    parse_response(&reply)
}

/// Set the admin password through the admin UI; the session cookie.
async fn sign_in(server: &TestServer, tls: &TlsConnector) -> String {
    let body = b"username=admin&password=correct+horse+battery&password2=correct+horse+battery";
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let bytes = request_bytes("POST", "/setup", &headers, body);
    let done = tls_request(tls, server.admin.unwrap(), &bytes).await;
    assert_eq!(done.status, 303, "{}", done.head);
    session_cookie(&done.head)
}

/// The dashboard's HTML, through the admin UI.
async fn dashboard(server: &TestServer, tls: &TlsConnector, cookie: &str) -> String {
    let bytes = request_bytes("GET", "/", &[("Cookie", cookie)], b"");
    let page = tls_request(tls, server.admin.unwrap(), &bytes).await;
    assert_eq!(page.status, 200, "{}", page.head);
    page.body_text()
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn tls_alpn_01_certificate_is_served_shown_and_reused_after_a_restart() {
    let port = free_port();
    let pebble = Pebble::start(Options {
        tls_port: port,
        http_port: free_port(),
        ..Options::default()
    });
    let data = tempfile::tempdir().unwrap();
    let options = acme_options(
        &pebble,
        data.path(),
        port,
        &[("ACMEChallenge", "tls-alpn-01".into())],
    );
    let server = start(&options, Duration::from_secs(60)).await;
    wait_for_certificate(&server, &pebble).await;

    // A client that trusts pebble's intermediate only verifies it for the name.
    let intermediate = pebble.intermediate().await;
    let first = served(std::slice::from_ref(&intermediate), server.subscriber).await;
    let tls = tls_of(&server);
    assert_eq!(first, tls.fingerprint());
    let info = tls.certificate().unwrap();
    assert_eq!(info.names, ["localhost"]);
    assert!(info.issuer.contains("Pebble Intermediate CA"), "{info:?}");
    // Validated on the TLS port: pebble fetched nothing over HTTP.
    assert!(!pebble.log_text().contains("validate w/ HTTP"));
    let status = tls.acme().unwrap().status();
    assert_eq!(status.last_error, None);
    assert_eq!(status.failures, 0);
    assert!(status.last_success.is_some());

    // A TLS-ALPN-01 validation with no order pending gets no certificate.
    let validator = connector(std::slice::from_ref(&intermediate), &[b"acme-tls/1"]);
    assert!(handshake(&validator, server.subscriber).await.is_err());

    // Account and certificate are kept, the keys for the owner only.
    let files = data.path().join("tls/acme");
    for file in ["account.json", "certificate.key", "certificate.pem"] {
        assert!(files.join(file).exists(), "{file}");
    }
    #[cfg(unix)]
    {
        assert_eq!(mode_of(&files.join("certificate.key")), 0o600);
        assert_eq!(mode_of(&files.join("account.json")), 0o600);
    }

    // The dashboard shows names, issuer, expiry and fingerprint.
    let https = connector(std::slice::from_ref(&intermediate), &[]);
    let cookie = sign_in(&server, &https).await;
    let page = dashboard(&server, &https, &cookie).await;
    assert!(
        page.contains("TLS certificate <span class=\"muted\">· ACME</span>"),
        "{page}"
    );
    assert!(
        page.contains("<dd id=\"tls-names\">localhost</dd>"),
        "{page}"
    );
    assert!(page.contains("Pebble Intermediate CA"), "{page}");
    assert!(
        page.contains(&format!("data-unix=\"{}\"", info.not_after)),
        "{page}"
    );
    assert!(page.contains(&first), "{page}");
    assert!(
        page.contains("port 443 of each name must reach SubscriberPort"),
        "{page}"
    );
    assert!(page.contains("id=\"acme-state\">ok<"), "{page}");
    server.stop().await;

    // A restart serves the same certificate at once and orders nothing.
    let again = start(&options, Duration::from_secs(60)).await;
    let tls = tls_of(&again);
    assert_eq!(tls.source(), CertificateSource::Acme);
    assert_eq!(tls.fingerprint(), first);
    assert_eq!(
        served(std::slice::from_ref(&intermediate), again.subscriber).await,
        first
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tls.acme().unwrap().status();
    assert!(
        !status.ordering && status.last_success.is_none(),
        "{status:?}"
    );
    let renewal = status.next_try.expect("a renewal planned");
    assert!(
        renewal > std::time::SystemTime::now() + Duration::from_secs(86_400),
        "{status:?}"
    );
    again.stop().await;
}

#[tokio::test]
async fn http_01_is_answered_on_the_plain_subscriber_port() {
    let (port, plain) = (free_port(), free_port());
    let pebble = Pebble::start(Options {
        tls_port: free_port(),
        http_port: plain,
        ..Options::default()
    });
    let data = tempfile::tempdir().unwrap();
    let options = acme_options(
        &pebble,
        data.path(),
        port,
        &[
            ("ACMEChallenge", "http-01".into()),
            ("PlainSubscriberPort", plain.to_string()),
        ],
    );
    let server = start(&options, Duration::from_secs(60)).await;
    wait_for_certificate(&server, &pebble).await;
    let intermediate = pebble.intermediate().await;
    let served = served(std::slice::from_ref(&intermediate), server.subscriber).await;
    assert_eq!(served, tls_of(&server).fingerprint());
    // Pebble checked the answer on meteord's plain port.
    let log = pebble.log_text();
    let fetched = format!("validate w/ HTTP: http://localhost:{plain}/.well-known/acme-challenge/");
    assert!(log.contains(&fetched), "{log}");
    // Outside an order, challenge paths are answered 404, never as files.
    let plain = server.plain_subscriber.unwrap();
    let unknown = request(
        plain,
        "GET",
        "/.well-known/acme-challenge/abc_DEF-1",
        &[],
        b"",
    )
    .await;
    assert_eq!(unknown.status, 404);
    let odd = request(plain, "GET", "/.well-known/acme-challenge/../x", &[], b"").await;
    assert_eq!(odd.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn renewal_under_a_live_subscriber_and_a_renewal_that_fails() {
    let port = free_port();
    // Certificates valid for 24 s: renewed 16 s after they are issued.
    let mut pebble = Pebble::start(Options {
        tls_port: port,
        http_port: free_port(),
        validity: 24,
        ..Options::default()
    });
    let data = tempfile::tempdir().unwrap();
    let options = acme_options(&pebble, data.path(), port, &[]);
    let server = start(&options, Duration::from_secs(1)).await;
    wait_for_certificate(&server, &pebble).await;
    let first = tls_of(&server).fingerprint();
    let info = tls_of(&server).certificate().unwrap();
    assert!(info.not_after - info.not_before <= 25, "{info:?}");

    // A subscriber over TLS, from before the renewal.
    let intermediate = pebble.intermediate().await;
    let roots = std::slice::from_ref(&intermediate);
    let stream = handshake(&connector(roots, &[]), server.subscriber)
        .await
        .unwrap();
    let mut sse = Stream::request(stream, "/sse/live").await;
    sse.until(b"retry:").await;
    server.wait_subscribers("live", 1).await;

    wait_until("the renewal", &server, &pebble, |tls| {
        tls.fingerprint() != first
    })
    .await;
    let second = tls_of(&server).fingerprint();
    assert_eq!(served(roots, server.subscriber).await, second);
    server.publish("live", "after-renewal").await;
    sse.until(b"\"text\":\"after-renewal\"").await;

    // The CA goes away: the next renewal fails, the certificate stays.
    pebble.kill();
    wait_until("a failed renewal", &server, &pebble, |tls| {
        tls.acme().unwrap().status().failures > 0
    })
    .await;
    let status = tls_of(&server).acme().unwrap().status();
    let error = status.last_error.clone().unwrap();
    assert!(error.contains(&pebble.listen.to_string()), "{error}");
    assert!(error.contains("cannot connect"), "{error}");
    assert!(status.next_try.unwrap() > std::time::SystemTime::now() - Duration::from_secs(1));
    assert_eq!(tls_of(&server).fingerprint(), second);
    assert_eq!(served(roots, server.subscriber).await, second);

    // Back (a new pebble that forgot the account): a later try succeeds,
    // with a new account, and the subscriber is still there.
    pebble.restart();
    wait_until("a certificate after the outage", &server, &pebble, |tls| {
        tls.acme().unwrap().status().failures == 0 && tls.fingerprint() != second
    })
    .await;
    let intermediate = pebble.intermediate().await;
    let third = served(std::slice::from_ref(&intermediate), server.subscriber).await;
    assert_eq!(third, tls_of(&server).fingerprint());
    server.publish("live", "after-outage").await;
    sse.until(b"\"text\":\"after-outage\"").await;
    server.stop().await;
}

#[tokio::test]
async fn a_ca_that_is_down_at_start_is_retried_and_the_dashboard_says_why() {
    let (port, plain) = (free_port(), free_port());
    // Prepared, not started: its port refuses connections.
    let pebble = Pebble::prepare(Options {
        tls_port: port,
        http_port: free_port(),
        listen_port: free_port(),
        ..Options::default()
    });
    let data = tempfile::tempdir().unwrap();
    let options = acme_options(
        &pebble,
        data.path(),
        port,
        &[("PlainSubscriberPort", plain.to_string())],
    );
    let server = start(&options, Duration::from_secs(2)).await;
    wait_until("a failed first try", &server, &pebble, |tls| {
        tls.acme().unwrap().status().failures > 0
    })
    .await;
    // The TLS port answers with the temporary self-signed certificate...
    let tls = tls_of(&server);
    assert_eq!(tls.source(), CertificateSource::AcmePending);
    let temporary = temporary_root(data.path());
    assert_eq!(
        served(std::slice::from_ref(&temporary), server.subscriber).await,
        fingerprint(temporary.as_ref())
    );
    // ...and the plain port serves subscribers meanwhile.
    let plain_addr = server.plain_subscriber.unwrap();
    let mut legacy = Stream::open(plain_addr, "/push/h1/xhrinteractive/wait").await;
    server.wait_subscribers("wait", 1).await;
    server.publish("wait", "meanwhile").await;
    legacy.until(b"meanwhile").await;

    // The dashboard says why, and when the next try is.
    let https = connector(std::slice::from_ref(&temporary), &[]);
    let cookie = sign_in(&server, &https).await;
    let page = dashboard(&server, &https, &cookie).await;
    assert!(
        page.contains("Serving a temporary self-signed certificate"),
        "{page}"
    );
    assert!(page.contains("cannot connect"), "{page}");
    assert!(page.contains(&pebble.listen.to_string()), "{page}");
    assert!(page.contains("Next try"), "{page}");
    assert!(page.contains("failing ("), "{page}");
    assert!(
        page.contains("port 80 of each name must reach PlainSubscriberPort"),
        "{page}"
    );

    // The CA comes up: a later try brings the certificate by itself.
    let pebble = pebble.run();
    wait_for_certificate(&server, &pebble).await;
    let intermediate = pebble.intermediate().await;
    let https = connector(std::slice::from_ref(&intermediate), &[]);
    let page = dashboard(&server, &https, &cookie).await;
    assert!(
        !page.contains("Serving a temporary self-signed certificate"),
        "{page}"
    );
    assert!(page.contains("Pebble Intermediate CA"), "{page}");
    assert!(
        page.contains("id=\"acme-last-error\" class=\"\">none<"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_ca_that_refuses_gives_a_clear_error_and_sighup_tries_again() {
    let port = free_port();
    let pebble = Pebble::start(Options {
        tls_port: port,
        http_port: free_port(),
        blocklist: vec!["localhost".into()],
        ..Options::default()
    });
    let data = tempfile::tempdir().unwrap();
    let options = acme_options(&pebble, data.path(), port, &[]);
    // The next try would be an hour away.
    let server = start(&options, Duration::from_secs(3600)).await;
    wait_until("a refused order", &server, &pebble, |tls| {
        tls.acme().unwrap().status().failures > 0
    })
    .await;
    let status = tls_of(&server).acme().unwrap().status();
    let error = status.last_error.unwrap();
    assert!(error.contains("the CA refused the order"), "{error}");
    assert!(error.contains("localhost"), "{error}");
    let next = status.next_try.unwrap();
    assert!(next > std::time::SystemTime::now() + Duration::from_secs(3000));
    assert_eq!(tls_of(&server).source(), CertificateSource::AcmePending);

    // A reload (what SIGHUP does) tries again at once.
    server.node.reload().unwrap();
    wait_until("a second try", &server, &pebble, |tls| {
        tls.acme().unwrap().status().failures > 1
    })
    .await;
    server.stop().await;
}

fn config_of(options: &[(&str, &str)]) -> Result<meteord::Config, String> {
    use meteord::config::{ConfigFile, LegacyArgs, Source, BUILTIN_CONFIG};
    let mut args = LegacyArgs::default();
    for (key, value) in options {
        args.set(key, None, *value);
    }
    let file = ConfigFile::parse(BUILTIN_CONFIG.as_bytes(), "test.conf", Source::File).unwrap();
    meteord::Config::from_parts(&args, &file, None).map_err(|e| e.to_string())
}

fn config_error(options: &[(&str, &str)]) -> String {
    match config_of(options) {
        Ok(_) => panic!("accepted {options:?}"),
        Err(e) => e,
    }
}

#[test]
fn acme_settings_from_the_keys() {
    use meteord::config::{AcmeChallenge, AcmeSettings};
    let acme = |options: &[(&str, &str)]| match config_of(options).unwrap().tls {
        TlsMode::Acme(settings) => settings,
        other => panic!("{other:?}"),
    };
    let settings = acme(&[
        ("TLS", "acme"),
        (
            "TLSHostnames",
            "Push.Example.com. push.example.com www.example.com",
        ),
    ]);
    assert_eq!(settings.names, ["push.example.com", "www.example.com"]);
    assert_eq!(
        settings.directory,
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!((settings.email, settings.ca_file), (None, None));
    assert_eq!(settings.challenges, [AcmeChallenge::TlsAlpn01]);
    assert_eq!(settings.first_retry, AcmeSettings::FIRST_RETRY);
    // With a plain port, HTTP-01 takes its turn after a failure.
    let settings = acme(&[
        ("TLS", "acme"),
        ("TLSHostnames", "push.example.com"),
        ("PlainSubscriberPort", "80"),
        ("ACMEEmail", "ops@example.com"),
    ]);
    assert_eq!(
        settings.challenges,
        [AcmeChallenge::TlsAlpn01, AcmeChallenge::Http01]
    );
    assert_eq!(settings.email.as_deref(), Some("ops@example.com"));
    // Without TLS, PlainSubscriberPort is not read at all.
    assert!(config_of(&[("PlainSubscriberPort", "nope")]).is_ok());
}

#[tokio::test]
async fn bad_acme_settings_are_named() {
    let error = config_error(&[("TLS", "acme")]);
    assert!(error.contains("TLSHostnames"), "{error}");
    let error = config_error(&[("TLS", "acme"), ("TLSHostnames", "*.example.com")]);
    assert!(error.contains("wildcard"), "{error}");
    let error = config_error(&[("TLS", "acme"), ("TLSHostnames", "10.0.0.5")]);
    assert!(error.contains("is an address"), "{error}");
    let error = config_error(&[("TLS", "acme"), ("TLSHostnames", "bad_name.example")]);
    assert!(error.contains("not a DNS name"), "{error}");
    let error = config_error(&[
        ("TLS", "acme"),
        ("TLSHostnames", "push.example.com"),
        ("ACMEDirectory", "http://ca.lan/directory"),
    ]);
    assert!(error.contains("ACMEDirectory"), "{error}");
    let error = config_error(&[
        ("TLS", "acme"),
        ("TLSHostnames", "push.example.com"),
        ("ACMEChallenge", "http-01"),
    ]);
    assert!(error.contains("PlainSubscriberPort"), "{error}");
    let error = config_error(&[
        ("TLS", "acme"),
        ("TLSHostnames", "push.example.com"),
        ("ACMEEmail", "nobody"),
    ]);
    assert!(error.contains("ACMEEmail"), "{error}");

    // A CA file that is not there stops the start and is named.
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("missing-ca.pem");
    let mut args = meteord::config::LegacyArgs::default();
    for (key, value) in [
        ("ControllerPort", "0"),
        ("SubscriberPort", "0"),
        ("SubscriberIP", "127.0.0.1"),
        ("AdminUI", "0"),
        ("Persistence", "off"),
        ("DataDirectory", data.path().to_str().unwrap()),
        ("TLS", "acme"),
        ("TLSHostnames", "push.example.com"),
        ("ACMECAFile", missing.to_str().unwrap()),
    ] {
        args.set(key, None, value);
    }
    let file = meteord::config::ConfigFile::parse(
        meteord::config::BUILTIN_CONFIG.as_bytes(),
        "test.conf",
        meteord::config::Source::File,
    )
    .unwrap();
    let config = meteord::Config::from_parts(&args, &file, None).unwrap();
    let error = match meteord::Server::bind(config, args).await {
        Ok(_) => panic!("started with a missing ACMECAFile"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains(missing.to_str().unwrap()), "{error}");
}

#[cfg(unix)]
#[test]
fn the_real_binary_logs_why_and_when_and_retries_on_sighup() {
    let dead = format!("https://127.0.0.1:{}/dir", free_port());
    let server = Process::start(&[
        "-TLS",
        "acme",
        "-TLSHostnames",
        "push.example.com",
        "-ACMEDirectory",
        &dead,
    ]);
    server.wait_log("serving a temporary self-signed one");
    server.wait_log("next try in 60s, at ");
    let failures = |server: &Process| {
        let log = server.log.lock().unwrap();
        log.iter()
            .filter(|l| l.contains("ACME: no certificate for push.example.com"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let first = failures(&server);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].contains(&dead) && first[0].contains("cannot connect"),
        "{first:?}"
    );
    // SIGHUP tries again at once, not in a minute.
    server.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while failures(&server).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no second try after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log.lock().unwrap().join("\n");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}
