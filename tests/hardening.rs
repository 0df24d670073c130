//! What an attacker tried, through real sockets: each test fails against a
//! server without its fix (RELIABILITY.md lists them).

mod common;

use std::time::Duration;

use common::{find, get, http_raw, request, Control, Process, Stream, TestServer, WAIT};
use meteord::hub::{ChannelRule, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PASSWORD: &str = "correct horse battery";

/// What the server answered before it closed.
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("the server closed the connection")
        .ok();
    out
}

fn status(response: &[u8]) -> String {
    String::from_utf8_lossy(response)
        .split("\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

// ---- 1. a web page publishing through the control port -------------------

#[tokio::test]
async fn http_on_the_control_port_is_closed_unanswered_and_publishes_nothing() {
    let server = TestServer::start(&[]).await;
    let attack = b"POST / HTTP/1.1\r\nHost: 127.0.0.1:4671\r\nContent-Type: text/plain\r\n\
                   Content-Length: 48\r\n\r\nADDMESSAGE demo <script>alert(1)</script>\r\n";
    assert_eq!(exchange(server.control, attack).await, b"");
    // A Host header alone (the request line split off) is enough too.
    let header_only = b"Host: 127.0.0.1\r\nADDMESSAGE demo sneaky\r\n";
    assert_eq!(exchange(server.control, header_only).await, b"");
    let mut c = server.control().await;
    // Nothing was published; a text that merely mentions HTTP still is.
    assert_eq!(
        c.command("ADDMESSAGE demo GET / HTTP/1.1").await,
        "OK\t0\r\n"
    );
    assert_eq!(c.command("COUNTSUBSCRIBERS demo").await, "OK 0\r\n");
    server.stop().await;
}

// ---- 2. one request naming thousands of channels ---------------------------

#[tokio::test]
async fn a_subscription_names_a_bounded_number_of_channels_on_every_transport() {
    let server = TestServer::start(&[("MaxChannelsPerSubscription", "3")]).await;
    let four = "a/b/c/d";
    let legacy = get(server.subscriber, &format!("/push/1/longpoll/{four}")).await;
    assert!(status(&legacy).contains(" 400 "), "{}", status(&legacy));
    let sse = request(server.subscriber, "GET", &format!("/sse/{four}"), &[], b"").await;
    assert_eq!(sse.status, 400);
    assert!(
        sse.body_text().contains("at most 3 channels"),
        "{}",
        sse.body_text()
    );
    let poll = request(
        server.subscriber,
        "GET",
        &format!("/poll/{four}?timeout=0"),
        &[],
        b"",
    )
    .await;
    assert_eq!(poll.status, 400);
    // Three is fine.
    let three = request(server.subscriber, "GET", "/poll/a/b/c?timeout=0", &[], b"").await;
    assert_eq!(three.status, 200);
    // WebSocket: the fourth channel of a connection is refused.
    let url = format!("ws://{}/ws", server.subscriber);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    for channel in ["a", "b", "c", "d"] {
        let subscribe = format!(r#"{{"type":"subscribe","channel":"{channel}"}}"#);
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            subscribe.into(),
        ))
        .await
        .unwrap();
    }
    let mut replies = Vec::new();
    while replies.len() < 4 {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        replies.push(frame.into_text().unwrap().to_string());
    }
    assert!(replies[3].contains("too many channels"), "{replies:?}");
    server.stop().await;
}

#[tokio::test]
async fn subscribers_alone_cannot_fill_the_server_with_channels() {
    let server = TestServer::start(&[("MaxChannels", "4")]).await;
    server.publish("news", "kept").await;
    let mut first = Stream::open(server.subscriber, "/push/1/xhrinteractive/a/b/c").await;
    first.until(b"</script>").await;
    server.wait_subscribers("c", 1).await;
    // A fifth channel would be one too many; existing ones are fine.
    let refused = get(server.subscriber, "/push/2/longpoll/d").await;
    assert!(status(&refused).contains(" 503 "), "{}", status(&refused));
    let sse = request(server.subscriber, "GET", "/sse/d", &[], b"").await;
    assert_eq!(sse.status, 503);
    let mut existing = Stream::open(server.subscriber, "/push/3/xhrinteractive/news.h").await;
    existing.until(b"kept").await;
    // Publishing is never refused.
    let mut c = server.control().await;
    assert!(c.command("ADDMESSAGE fresh x").await.starts_with("OK"));
    // A channel with no message and no subscriber left costs nothing.
    drop(first);
    drop(existing);
    let hub = server.node.hub.clone();
    tokio::time::timeout(WAIT, async {
        while hub.channel_count() != 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the subscribers' empty channels go with them");
    server.stop().await;
}

#[tokio::test]
async fn a_pipelined_request_naming_thousands_of_channels_is_refused_at_once() {
    let server = TestServer::start(&[]).await;
    // A small first request hands the connection to the HTTP router, whose
    // head limit lets the second request's URL name thousands of channels.
    let many: Vec<String> = (0..8_000).map(|i| format!("c{i}")).collect();
    let mut pipelined = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    pipelined.extend_from_slice(
        format!(
            "GET /sse/{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            many.join("/")
        )
        .as_bytes(),
    );
    let answers = http_raw(server.subscriber, &pipelined).await;
    let text = String::from_utf8_lossy(&answers);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("HTTP/1.1 400"), "{text}");
    assert!(text.contains("at most 256 channels"), "{text}");
    assert_eq!(server.node.hub.channel_count(), 0, "no channel was made");
    server.stop().await;
}

// ---- 3. first-run takeover from the network -------------------------------

/// A request to the admin UI as a reverse proxy on this machine relays it
/// for `client` (TrustedProxies lets the server believe it).
async fn from(
    admin: std::net::SocketAddr,
    client: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> common::Response {
    let headers = [
        ("X-Forwarded-For", client),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    request(admin, method, path, &headers, body).await
}

fn setup_form(code: &str) -> Vec<u8> {
    format!("username=admin&password={PASSWORD}&password2={PASSWORD}&setup_code={code}")
        .replace(' ', "+")
        .into_bytes()
}

#[tokio::test]
async fn a_first_run_from_another_machine_needs_the_setup_code() {
    let server = TestServer::start(&[("TrustedProxies", "127.0.0.1")]).await;
    let admin = server.admin.unwrap();
    let code_file = server.data.path().join("setup-code");
    let code = std::fs::read_to_string(&code_file)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(server.node.setup_code().as_deref(), Some(code.as_str()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&code_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The page asks another machine for the code.
    let page = from(admin, "192.0.2.7", "GET", "/setup", b"").await;
    assert!(page.body_text().contains("name=\"setup_code\""));
    let accounts = server.node.accounts.clone().unwrap();
    for wrong in ["", "AAAA-BBBB-CCCC"] {
        let refused = from(admin, "192.0.2.7", "POST", "/setup", &setup_form(wrong)).await;
        assert_eq!(refused.status, 422, "{}", refused.body_text());
        assert!(!accounts.has_users().unwrap(), "no password was set");
    }
    let done = from(
        admin,
        "192.0.2.7",
        "POST",
        "/setup",
        &setup_form(&code.to_lowercase()),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body_text());
    assert!(accounts.has_users().unwrap());
    assert!(!code_file.exists(), "the code is spent");
    assert_eq!(server.node.setup_code(), None);
    server.stop().await;
}

#[tokio::test]
async fn an_untrusted_local_proxy_does_not_make_its_clients_local() {
    // No TrustedProxies: a request with forwarding headers came through a
    // proxy, so it may be anyone's.
    let server = TestServer::start(&[]).await;
    let admin = server.admin.unwrap();
    let relayed = from(admin, "127.0.0.1", "GET", "/setup", b"").await;
    assert!(relayed.body_text().contains("name=\"setup_code\""));
    let refused = from(admin, "127.0.0.1", "POST", "/setup", &setup_form("")).await;
    assert_eq!(refused.status, 422);
    // Straight from this machine: as easy as ever.
    let local = request(
        admin,
        "POST",
        "/setup",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &setup_form(""),
    )
    .await;
    assert_eq!(local.status, 303, "{}", local.body_text());
    server.stop().await;
}

#[tokio::test]
async fn the_first_run_answers_only_to_this_machines_own_names() {
    let server = TestServer::start(&[]).await;
    let admin = server.admin.unwrap();
    for host in ["evil", "evil.example.com", "10.1.2.3"] {
        let raw = format!(
            "POST /setup HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            setup_form("").len()
        );
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(&setup_form(""));
        let answer = http_raw(admin, &bytes).await;
        assert!(
            status(&answer).contains(" 403 "),
            "{host}: {}",
            status(&answer)
        );
    }
    assert!(!server.node.accounts.clone().unwrap().has_users().unwrap());
    server.stop().await;
}

#[test]
fn the_setup_code_is_in_the_log_at_start() {
    let mut process = Process::start(&["-AdminUI", "1"]);
    process.wait_log("setup code: ");
    let data = process.data.as_ref().unwrap().path().to_path_buf();
    let code = std::fs::read_to_string(data.join("setup-code")).unwrap();
    process.wait_log(code.trim());
    process.signal(libc::SIGTERM);
    assert_eq!(process.wait_exit(WAIT), Some(0));
}

// ---- 4. sign-in flood -------------------------------------------------------

async fn admin_with_password(options: &[(&str, &str)]) -> TestServer {
    let server = TestServer::start(options).await;
    let accounts = server.node.accounts.clone().unwrap();
    assert!(accounts.create_first_user("admin", PASSWORD).unwrap());
    server
}

fn login_form(password: &str) -> Vec<u8> {
    format!("username=admin&password={password}")
        .replace(' ', "+")
        .into_bytes()
}

#[tokio::test]
async fn a_flood_of_wrong_passwords_is_counted_before_any_hash() {
    let server = admin_with_password(&[]).await;
    let admin = server.admin.unwrap();
    let attempts: Vec<_> = (0..100)
        .map(|i| {
            tokio::spawn(async move {
                let body = login_form(&format!("guess number {i}"));
                let headers = [("Content-Type", "application/x-www-form-urlencoded")];
                request(admin, "POST", "/login", &headers, &body)
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        checked <= 5,
        "{checked} passwords were hashed: {statuses:?}"
    );
    assert_eq!(checked + refused, 100, "{statuses:?}");
    server.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_lockout() {
    let server = admin_with_password(&[("TrustedProxies", "127.0.0.1")]).await;
    let admin = server.admin.unwrap();
    for _ in 0..5 {
        let wrong = from(admin, "198.51.100.1", "POST", "/login", &login_form("nope")).await;
        assert_eq!(wrong.status, 401);
    }
    let locked = from(
        admin,
        "198.51.100.1",
        "POST",
        "/login",
        &login_form(PASSWORD),
    )
    .await;
    assert_eq!(locked.status, 429);
    // Another client behind the same proxy is not locked out.
    let other = from(
        admin,
        "198.51.100.2",
        "POST",
        "/login",
        &login_form(PASSWORD),
    )
    .await;
    assert_eq!(other.status, 303);
    // ... and over https at the proxy, its cookie is Secure.
    let headers = [
        ("X-Forwarded-For", "198.51.100.3"),
        ("X-Forwarded-Proto", "https"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let secure = request(admin, "POST", "/login", &headers, &login_form(PASSWORD)).await;
    let cookie = secure.header("set-cookie").unwrap_or_default().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let plain = from(
        admin,
        "198.51.100.4",
        "POST",
        "/login",
        &login_form(PASSWORD),
    )
    .await;
    assert!(!plain
        .header("set-cookie")
        .unwrap_or_default()
        .contains("Secure"));
    server.stop().await;
}

#[tokio::test]
async fn forwarding_headers_from_anyone_else_are_ignored() {
    let server = admin_with_password(&[]).await;
    let admin = server.admin.unwrap();
    // Spoofing a new address each time does not get around the lockout.
    for i in 0..5 {
        let client = format!("203.0.113.{i}");
        let wrong = from(admin, &client, "POST", "/login", &login_form("nope")).await;
        assert_eq!(wrong.status, 401);
    }
    let locked = from(
        admin,
        "203.0.113.99",
        "POST",
        "/login",
        &login_form(PASSWORD),
    )
    .await;
    assert_eq!(locked.status, 429);
    // Nor does X-Forwarded-Proto make a cookie Secure.
    server.stop().await;
}

// ---- 5. request desync ------------------------------------------------------

#[tokio::test]
async fn a_body_on_the_legacy_path_is_refused_not_taken_for_a_request() {
    let server = TestServer::start(&[]).await;
    let smuggled = "GET /push/9/longpoll/x HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let raw = format!(
        "GET /meteor.js HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let answer = exchange(server.subscriber, raw.as_bytes()).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "one answer only: {text}"
    );
    let chunked =
        "GET /meteor.js HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let answer = exchange(server.subscriber, chunked.as_bytes()).await;
    assert!(status(&answer).contains(" 400 "), "{}", status(&answer));
    // Without a body, as before.
    let fine = get(server.subscriber, "/meteor.js").await;
    assert!(status(&fine).contains(" 200 "));
    server.stop().await;
}

// ---- 6. memory by backlog ---------------------------------------------------

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn clients_that_ask_for_a_large_backlog_and_never_read_hold_little() {
    let process = Process::start(&["-MaxMessagesPerChannel", "0", "-MaxMessageAge", "3600"]);
    // 32 MiB cached in one channel.
    let text = "x".repeat(512 * 1024);
    let mut control = Control::connect(process.control).await;
    for _ in 0..64 {
        assert!(control
            .command(&format!("ADDMESSAGE big {text}"))
            .await
            .starts_with("OK"));
    }
    let before = rss_kib(process.child.id());
    // 20 clients each ask for all of it and never read: a server that
    // copied the backlog per client would hold 640 MiB.
    let mut idle = Vec::new();
    for i in 0..20 {
        let mut stream = TcpStream::connect(process.subscriber).await.unwrap();
        let request =
            format!("GET /push/h{i}/xhrinteractive/big.h HTTP/1.1\r\nHost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        idle.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = rss_kib(process.child.id()).saturating_sub(before);
    assert!(grown < 100 * 1024, "RSS grew by {grown} KiB");
    // A reading subscriber is served as usual meanwhile.
    let mut reader = Stream::open(process.subscriber, "/push/r/xhrinteractive/big").await;
    reader.until(b"</script>").await;
    control.command("ADDMESSAGE big small").await;
    reader.until(b"small").await;
    drop(idle);
}

#[tokio::test]
async fn stuck_clients_are_dropped_once_the_queues_are_full() {
    let server = TestServer::start(&[("MaxQueuedMB", "1"), ("MaxMessagesPerChannel", "0")]).await;
    let text = "y".repeat(256 * 1024);
    for _ in 0..16 {
        server.publish("big", &text).await;
    }
    let mut stuck = Vec::new();
    for i in 0..8 {
        let mut stream = TcpStream::connect(server.subscriber).await.unwrap();
        let request =
            format!("GET /push/s{i}/xhrinteractive/big.h HTTP/1.1\r\nHost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        stuck.push(stream);
    }
    server.wait_subscribers("big", 8).await;
    // Each holds a batch it cannot write; past 1 MiB together, the ones
    // stuck longest go (after 2 s stuck), until the rest fits.
    let hub = server.node.hub.clone();
    tokio::time::timeout(WAIT, async {
        while hub.count_subscribers(b"big") == 8 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("stuck subscribers are dropped");
    assert!(hub.count_subscribers(b"big") > 0, "not all of them");
    drop(stuck);
    server.stop().await;
}

// ---- 7. update feeds --------------------------------------------------------

#[test]
fn a_plain_http_update_feed_must_be_this_machine() {
    let run = |feed: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_meteord"))
            .args([
                "update",
                "--check",
                "-UpdateFeed",
                feed,
                "-LogDirectory",
                "off",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let refused = run("http://updates.example.com/manifest.json");
    assert!(refused.contains("expected an https:// URL"), "{refused}");
    // Loopback is allowed (nothing listens there: the feed cannot be read).
    let local = run("http://127.0.0.1:9/manifest.json");
    assert!(!local.contains("expected an https:// URL"), "{local}");
    assert!(local.contains("cannot read the release feed"), "{local}");
}

// ---- 8. host ids and credentials --------------------------------------------

#[tokio::test]
async fn an_anonymous_client_cannot_end_a_token_holders_stream() {
    let server = TestServer::start(&[]).await;
    let accounts = server.node.accounts.clone().unwrap();
    let (_, token) = accounts.create_token("app").unwrap();
    let mut rule = ChannelRule::new("private*");
    rule.anonymous = false;
    server.node.set_channel_rule(rule).unwrap();
    let path = format!("/push/host1/xhrinteractive/privateroom?token={token}");
    let mut holder = Stream::open(server.subscriber, &path).await;
    holder.until(b"</script>").await;
    // Same host id, no token: neither replaces nor disconnects it.
    let mut anonymous = Stream::open(server.subscriber, "/push/host1/xhrinteractive/public").await;
    anonymous.until(b"</script>").await;
    let disconnect = get(server.subscriber, "/disconnect/host1").await;
    assert!(status(&disconnect).contains(" 200 "));
    assert!(holder.still_open_after(Duration::from_millis(300)).await);
    server.publish("privateroom", "still here").await;
    holder.until(b"still here").await;
    // With its own token, it does.
    get(
        server.subscriber,
        &format!("/disconnect/host1?token={token}"),
    )
    .await;
    holder.read_to_close().await;
    server.stop().await;
}

// ---- 9, 10. what the subscriber port serves ---------------------------------

#[tokio::test]
async fn file_paths_are_not_settable_from_the_admin_ui() {
    let server = TestServer::start(&[]).await;
    for key in ["SubscriberDocumentRoot", "DataDirectory", "TLSKeyFile"] {
        let refused = server.node.set_global_setting(key, "/etc");
        assert!(refused.is_err(), "{key}");
    }
    assert_ne!(server.node.config.load().document_root, "/etc");
    server.stop().await;
}

#[tokio::test]
async fn a_path_saved_in_the_ui_by_an_older_version_is_ignored() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("secret.html"), "top secret").unwrap();
    {
        let server = TestServer::start(&[("DataDirectory", &dir)]).await;
        let accounts = server.node.accounts.clone().unwrap();
        let root = secret.path().to_str().unwrap();
        accounts
            .save_ui_setting("SubscriberDocumentRoot", root)
            .unwrap();
        server.stop().await;
    }
    let server = TestServer::start(&[("DataDirectory", &dir)]).await;
    let answer = get(server.subscriber, "/secret.html").await;
    assert!(status(&answer).contains(" 404 "), "{}", status(&answer));
    server.stop().await;
}

#[tokio::test]
async fn hidden_files_under_the_document_root_are_not_served() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join(".git")).unwrap();
    std::fs::write(root.path().join(".git/config"), "[remote]").unwrap();
    std::fs::write(root.path().join(".htpasswd"), "admin:hash").unwrap();
    std::fs::write(root.path().join("page.html"), "hello").unwrap();
    let server =
        TestServer::start(&[("SubscriberDocumentRoot", root.path().to_str().unwrap())]).await;
    for hidden in ["/.git/config", "/.htpasswd", "/sub/.hidden/x.html"] {
        let answer = get(server.subscriber, hidden).await;
        assert!(
            status(&answer).contains(" 404 "),
            "{hidden}: {}",
            status(&answer)
        );
        assert!(find(&answer, b"[remote]").is_none() && find(&answer, b"admin:hash").is_none());
    }
    let page = get(server.subscriber, "/page.html").await;
    assert!(find(&page, b"hello").is_some());
    server.stop().await;
}

// ---- 12. the data directory is private --------------------------------------

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let dir = data.to_str().unwrap().to_string();
    let server = TestServer::start(&[("DataDirectory", &dir), ("Persistence", "snapshot")]).await;
    server.publish("c", "x").await;
    server.stop().await;
    assert_eq!(mode(&data), 0o700);
    for file in ["meteord.db", "id-ceiling"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    // Files an older version left open to all are tightened at start.
    let db = data.join("meteord.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = TestServer::start(&[("DataDirectory", &dir)]).await;
    server.stop().await;
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&data), 0o700);
}

// ---- 14. refused UDP datagrams ----------------------------------------------

#[test]
fn refused_udp_datagrams_are_logged_a_few_times_not_each() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut process = Process::start(&["-UDPPort", &port, "-ControllerAllow", "10.0.0.0/8"]);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..200 {
        socket
            .send_to(b"ADDMESSAGE c refused\n", process.udp.unwrap())
            .unwrap();
    }
    process.wait_log("udp datagram refused");
    std::thread::sleep(Duration::from_millis(300));
    process.signal(libc::SIGTERM);
    assert_eq!(process.wait_exit(WAIT), Some(0));
    let lines = process.log.lock().unwrap();
    let warnings = lines.iter().filter(|l| l.contains("udp datagram")).count();
    assert!(
        (1..=2).contains(&warnings),
        "{warnings} warnings: {lines:?}"
    );
}

// ---- 15. channel rule patterns ----------------------------------------------

#[tokio::test]
async fn a_pattern_with_many_stars_does_not_hold_the_hub() {
    let server = TestServer::start(&[]).await;
    let pattern = "*a".repeat(40) + "b";
    let mut rule = ChannelRule::new(&pattern);
    rule.transports = Some(vec![Transport::Sse]);
    server.node.set_channel_rule(rule).unwrap();
    let name = "a".repeat(250);
    // Each publish matches the rule against the name, under the hub's lock.
    let mut c = server.control().await;
    assert!(c
        .command(&format!("ADDMESSAGE {name} x"))
        .await
        .starts_with("OK"));
    let health = get(server.subscriber, "/healthz").await;
    assert!(find(&health, b"ok").is_some());
    server.stop().await;
}
