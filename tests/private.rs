//! Private channels: signed subscribe tokens minted by another language's
//! JWT library (Node's jsonwebtoken), scoped API tokens, and the authorize
//! callback — through real sockets on every transport.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::tokens::node_mint;
use common::ws::ws_connect;
use common::{get, request, Stream, TestServer, WAIT};
use serde_json::{json, Value};

const SECRET: &str = "a secret shared with the backend";

fn now() -> u64 {
    meteord::hub::unix_now()
}

/// A token for `channels`, signed with the shared secret, valid `secs`.
fn token(channels: &[&str], secs: u64, sub: &str) -> String {
    node_mint(&json!({
        "claims": {"channels": channels, "exp": now() + secs, "sub": sub},
        "secret": SECRET,
    }))
}

fn key_pair(kind: &str) -> (String, String) {
    let pair: Value = serde_json::from_str(&node_mint(&json!({ "keypair": kind }))).unwrap();
    (
        pair["private"].as_str().unwrap().to_string(),
        pair["public"].as_str().unwrap().to_string(),
    )
}

async fn private_server(extra: &[(&str, &str)]) -> TestServer {
    let mut options = vec![("TokenSecret", SECRET), ("PrivateChannels", "room*")];
    options.extend_from_slice(extra);
    TestServer::start(&options).await
}

fn status_line(response: &[u8]) -> String {
    String::from_utf8_lossy(response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_signed_token_opens_a_private_channel_on_every_transport_and_backlog_form() {
    let server = private_server(&[]).await;
    for text in ["one", "two", "three"] {
        server.publish("roomA", text).await;
    }
    let granted = token(&["room*"], 300, "ann");
    let s = server.subscriber;

    // Legacy /push, every backlog form: with the token, and refused without.
    for spec in ["roomA.h", "roomA.b2", "roomA.r1"] {
        let with = get(s, &format!("/push/1/longpoll/{spec}?token={granted}")).await;
        assert!(
            status_line(&with).contains("200"),
            "{spec}: {}",
            status_line(&with)
        );
        assert!(common::find(&with, b"three").is_some(), "{spec}");
        let without = get(s, &format!("/push/1/longpoll/{spec}")).await;
        assert!(
            status_line(&without).contains("403"),
            "{spec}: {}",
            status_line(&without)
        );
        assert!(common::find(&without, b"three").is_none());
    }
    // SSE: Last-Event-ID with the token in the query, or as a bearer header.
    let headers = [("Last-Event-ID", "0")];
    let anonymous = request(s, "GET", "/sse/roomA", &headers, b"").await;
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous.body_text().contains("private"),
        "{}",
        anonymous.body_text()
    );
    let mut sse = Stream::open(s, &format!("/sse/roomA?token={granted}&lastEventId=0")).await;
    sse.until(b"three").await;
    assert!(
        common::find(&sse.received, b"one").is_none(),
        "after id 0 only"
    );
    // Long-poll with `after` and a bearer header.
    let bearer = format!("Bearer {granted}");
    let poll = request(
        s,
        "GET",
        "/poll/roomA?after=0&timeout=0",
        &[("Authorization", &bearer)],
        b"",
    )
    .await;
    assert_eq!(poll.status, 200);
    assert!(poll.body_text().contains("three") && !poll.body_text().contains("one"));
    let refused = request(s, "GET", "/poll/roomA?after=0&timeout=0", &[], b"").await;
    assert_eq!(refused.status, 401);
    // WebSocket: after, last and history; the token in the command.
    let mut ws = ws_connect(s, "").await;
    ws.send(json!({"type": "subscribe", "channel": "roomA", "history": true}))
        .await;
    let no = ws.next().await;
    assert_eq!(
        (no["type"].as_str(), no["status"].as_u64()),
        (Some("error"), Some(401))
    );
    for (i, form) in [
        json!({"after": 1}),
        json!({"last": 1}),
        json!({"history": true}),
    ]
    .iter()
    .enumerate()
    {
        let mut ws = ws_connect(s, "").await;
        let mut subscribe = json!({"type": "subscribe", "channel": "roomA", "token": granted});
        subscribe
            .as_object_mut()
            .unwrap()
            .extend(form.as_object().unwrap().clone());
        ws.send(subscribe).await;
        assert_eq!(ws.next().await["type"], "subscribed", "form {i}");
        let mut texts = Vec::new();
        while texts.last().map(String::as_str) != Some("three") {
            texts.push(ws.next().await["text"].as_str().unwrap().to_string());
        }
        assert!(!texts.is_empty());
    }
    // A public channel needs nothing.
    let public = request(s, "GET", "/poll/lobby?timeout=0", &[], b"").await;
    assert_eq!(public.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn tokens_that_must_be_refused_are_and_say_why() {
    let (rsa_private, rsa_public) = key_pair("rsa");
    let (other_private, _) = key_pair("rsa");
    let keys = tempfile::tempdir().unwrap();
    let public_file = keys.path().join("token-key.pem");
    std::fs::write(&public_file, &rsa_public).unwrap();
    let server = private_server(&[("TokenPublicKeyFile", public_file.to_str().unwrap())]).await;
    let claims = |channels: &[&str], exp: u64| json!({"channels": channels, "exp": exp});
    let s = server.subscriber;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "expired",
            node_mint(&json!({"claims": claims(&["room*"], now() - 600), "secret": SECRET})),
            401,
            "expired",
        ),
        (
            "not yet valid",
            node_mint(
                &json!({"claims": {"channels": ["room*"], "exp": now() + 600, "nbf": now() + 300}, "secret": SECRET}),
            ),
            401,
            "not valid yet",
        ),
        (
            "wrong secret",
            node_mint(&json!({"claims": claims(&["room*"], now() + 60), "secret": "guessed"})),
            401,
            "signature",
        ),
        (
            "another RSA key",
            node_mint(
                &json!({"claims": claims(&["room*"], now() + 60), "key": other_private, "alg": "RS256"}),
            ),
            401,
            "signature",
        ),
        (
            "alg none",
            node_mint(&json!({"claims": claims(&["room*"], now() + 60), "alg": "none"})),
            401,
            "",
        ),
        (
            "not granted",
            node_mint(
                &json!({"claims": claims(&["lobby", "other*"], now() + 60), "secret": SECRET}),
            ),
            403,
            "does not grant",
        ),
    ];
    for (what, token, status, reason) in cases {
        let answer = poll_with(s, &token).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.body_text());
        assert!(
            answer.body_text().contains(reason),
            "{what}: {}",
            answer.body_text()
        );
    }
    // The right RSA key, and a pattern that grants.
    let signed = node_mint(
        &json!({"claims": claims(&["room*"], now() + 60), "key": rsa_private, "alg": "RS256"}),
    );
    assert_eq!(poll_with(s, &signed).await.status, 200);
    let exact = node_mint(&json!({"claims": claims(&["roomA"], now() + 60), "secret": SECRET}));
    assert_eq!(poll_with(s, &exact).await.status, 200);
    server.stop().await;

    // HS256 "signed" with the public key (algorithm confusion), against a
    // server that has only the public key.
    let server = TestServer::start(&[
        ("PrivateChannels", "room*"),
        ("TokenPublicKeyFile", public_file.to_str().unwrap()),
    ])
    .await;
    let confused =
        node_mint(&json!({"claims": claims(&["room*"], now() + 60), "secret": rsa_public}));
    let answer = poll_with(server.subscriber, &confused).await;
    assert_eq!(answer.status, 401, "{}", answer.body_text());
    assert!(
        answer.body_text().contains("HS256"),
        "{}",
        answer.body_text()
    );
    server.stop().await;
}

/// Publish "hi" through the API with `token`.
async fn post(addr: SocketAddr, token: &str, channel: &str) -> common::Response {
    let auth = format!("Bearer {token}");
    let path = format!("/api/channels/{channel}/messages");
    request(addr, "POST", &path, &[("Authorization", &auth)], b"hi").await
}

/// A long-poll of the private channel with `token` in its URL.
async fn poll_with(addr: SocketAddr, token: &str) -> common::Response {
    request(
        addr,
        "GET",
        &format!("/poll/roomA?timeout=0&token={token}"),
        &[],
        b"",
    )
    .await
}

#[tokio::test]
async fn elliptic_and_edwards_keys_verify_too() {
    for kind in ["ec", "ed25519"] {
        let (private, public) = key_pair(kind);
        let keys = tempfile::tempdir().unwrap();
        let file = keys.path().join("key.pem");
        std::fs::write(&file, &public).unwrap();
        let server = TestServer::start(&[
            ("PrivateChannels", "room*"),
            ("TokenPublicKeyFile", file.to_str().unwrap()),
        ])
        .await;
        let alg = if kind == "ec" { "ES256" } else { "EdDSA" };
        let token = node_mint(&json!({
            "claims": {"channels": ["room*"], "exp": now() + 60},
            "key": private,
            "alg": alg,
        }));
        let path = format!("/poll/roomA?timeout=0&token={token}");
        assert_eq!(
            request(server.subscriber, "GET", &path, &[], b"")
                .await
                .status,
            200,
            "{kind}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires_and_says_so() {
    let server = private_server(&[]).await;
    let short = token(&["room*"], 2, "ann");
    let mut sse = Stream::open(server.subscriber, &format!("/sse/roomA?token={short}")).await;
    sse.until(b"retry:").await;
    let mut ws = ws_connect(server.subscriber, "").await;
    ws.send(json!({"type": "subscribe", "channel": "roomA", "token": short}))
        .await;
    assert_eq!(ws.next().await["type"], "subscribed");
    // The event, then the end of the response (the connection may stay).
    sse.until(b"event: close\ndata: token expired\n\n\r\n0\r\n\r\n")
        .await;
    let closed = ws.next().await;
    assert_eq!(
        (closed["type"].as_str(), closed["reason"].as_str()),
        (Some("close"), Some("token expired"))
    );
    // The user is shown while subscribed.
    let long = token(&["room*"], 300, "bob");
    let mut again = Stream::open(server.subscriber, &format!("/sse/roomA?token={long}")).await;
    again.until(b"retry:").await;
    server.wait_subscribers("roomA", 1).await;
    let (_, info) = server.node.hub.channel_subscribers(b"roomA").remove(0);
    assert_eq!(info.user.as_deref(), Some("bob"));
    server.stop().await;
}

#[tokio::test]
async fn scoped_api_tokens_do_what_they_may_and_nothing_else() {
    let server = private_server(&[]).await;
    let accounts = server.node.accounts.clone().unwrap();
    use meteord::store::accounts::Scope;
    let all = vec!["*".to_string()];
    let (_, reader) = accounts
        .create_scoped_token("reader", &[Scope::Subscribe], &all)
        .unwrap();
    let news = vec!["news.*".to_string()];
    let (_, newsroom) = accounts
        .create_scoped_token("newsroom", &[Scope::Publish], &news)
        .unwrap();
    let (_, admin) = accounts
        .create_scoped_token("setup", &[Scope::Manage], &all)
        .unwrap();
    let s = server.subscriber;
    assert_eq!(
        post(s, &reader, "roomA").await.status,
        403,
        "subscribe-only cannot publish"
    );
    assert_eq!(
        post(s, &newsroom, "chat").await.status,
        403,
        "news.* cannot publish to chat"
    );
    assert_eq!(post(s, &newsroom, "news.today").await.status, 201);
    assert_eq!(post(s, &admin, "news.today").await.status, 403);
    // The reader may subscribe to private channels with its token.
    let path = format!("/poll/roomA?timeout=0&token={reader}");
    assert_eq!(request(s, "GET", &path, &[], b"").await.status, 200);
    let path = format!("/poll/roomA?timeout=0&token={newsroom}");
    assert_eq!(request(s, "GET", &path, &[], b"").await.status, 403);
    // Manage: rules and private channels by API, in force at once.
    let auth = format!("Bearer {admin}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let put = request(
        s,
        "PUT",
        "/api/rules/vip",
        &headers,
        br#"{"anonymous": false, "max_messages": 5}"#,
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body_text());
    assert_eq!(
        request(s, "GET", "/poll/vip?timeout=0", &[], b"")
            .await
            .status,
        401
    );
    let rules = request(s, "GET", "/api/rules", &headers, b"").await.json();
    assert_eq!(rules[0]["pattern"], "vip");
    let set = request(
        s,
        "PUT",
        "/api/private-channels",
        &headers,
        br#"{"patterns": ["secret*"]}"#,
    )
    .await;
    assert_eq!(set.json()["patterns"], json!(["secret*"]));
    assert_eq!(
        request(s, "GET", "/poll/secretX?timeout=0", &[], b"")
            .await
            .status,
        401
    );
    assert_eq!(
        request(s, "GET", "/poll/roomA?timeout=0", &[], b"")
            .await
            .status,
        200,
        "no longer private"
    );
    assert_eq!(
        request(s, "DELETE", "/api/rules/vip", &headers, b"")
            .await
            .status,
        200
    );
    let bad = request(
        s,
        "PUT",
        "/api/private-channels",
        &headers,
        br#"{"patterns": ["has space"]}"#,
    )
    .await;
    assert_eq!(bad.status, 422);
    // Only manage may.
    let reader_auth = format!("Bearer {reader}");
    let as_reader = [("Authorization", reader_auth.as_str())];
    assert_eq!(
        request(s, "GET", "/api/rules", &as_reader, b"")
            .await
            .status,
        403
    );
    assert_eq!(
        request(s, "GET", "/api/stats", &as_reader, b"")
            .await
            .status,
        403
    );
    assert_eq!(
        request(s, "GET", "/api/stats", &headers, b"").await.status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn tokens_made_before_scopes_keep_their_full_power() {
    let data = tempfile::tempdir().unwrap();
    let token = "mtd_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    {
        // A database as the version before scopes left it.
        let db = rusqlite::Connection::open(data.path().join("meteord.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, channel BLOB NOT NULL, text BLOB NOT NULL, ts INTEGER NOT NULL);
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created INTEGER NOT NULL);
             CREATE TABLE sessions (token_hash BLOB PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL, expires INTEGER NOT NULL);
             CREATE TABLE api_tokens (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, token_hash BLOB UNIQUE NOT NULL, created INTEGER NOT NULL, last_used INTEGER);
             CREATE TABLE channel_settings (pattern TEXT PRIMARY KEY, max_messages INTEGER, max_age INTEGER, persist INTEGER, transports TEXT, anonymous INTEGER NOT NULL DEFAULT 1, updated INTEGER NOT NULL);
             CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated INTEGER NOT NULL);
             PRAGMA user_version = 2;",
        )
        .unwrap();
        use sha2::Digest;
        let hash = sha2::Sha256::digest(token.as_bytes()).to_vec();
        db.execute(
            "INSERT INTO api_tokens (name, token_hash, created) VALUES ('old', ?1, 0)",
            [hash],
        )
        .unwrap();
    }
    let dir = data.path().to_str().unwrap().to_string();
    let server = private_server(&[("DataDirectory", &dir)]).await;
    let auth = format!("Bearer {token}");
    let s = server.subscriber;
    let published = request(
        s,
        "POST",
        "/api/channels/roomA/messages",
        &[("Authorization", &auth)],
        b"x",
    )
    .await;
    assert_eq!(published.status, 201);
    assert_eq!(
        request(s, "GET", "/api/stats", &[("Authorization", &auth)], b"")
            .await
            .status,
        200
    );
    let path = format!("/poll/roomA?timeout=0&token={token}");
    assert_eq!(request(s, "GET", &path, &[], b"").await.status, 200);
    server.stop().await;
}

/// The application's side of the authorize callback: a session cookie
/// decides; every request it gets is counted and kept.
async fn application() -> (
    SocketAddr,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<Value>>>,
) {
    use axum::http::{HeaderMap, StatusCode};
    let calls = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, b) = (calls.clone(), bodies.clone());
    let app = axum::Router::new().route(
        "/authorize",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (c, b) = (c.clone(), b.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                let mut seen: Value = serde_json::from_str(&body).unwrap();
                seen["cookie"] = json!(headers.get("cookie").and_then(|v| v.to_str().ok()));
                b.lock().unwrap().push(seen);
                let cookie = headers
                    .get("cookie")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                match cookie {
                    "session=good" => {
                        (StatusCode::OK, r#"{"sub": "bob", "cache": 60}"#.to_string())
                    }
                    "session=slow" => {
                        tokio::time::sleep(Duration::from_secs(8)).await;
                        (StatusCode::OK, "{}".to_string())
                    }
                    _ => (StatusCode::FORBIDDEN, String::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, calls, bodies)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authorize_callback_decides_for_browsers_with_sessions() {
    let (app, calls, bodies) = application().await;
    let url = format!("http://{app}/authorize");
    let server = private_server(&[("AuthorizeURL", &url)]).await;
    let s = server.subscriber;
    let ask = |cookie: &'static str| async move {
        request(
            s,
            "GET",
            "/poll/roomA?timeout=0",
            &[("Cookie", cookie)],
            b"",
        )
        .await
    };
    // Allowed, with the user it named; the second time from the cache.
    assert_eq!(ask("session=good").await.status, 200);
    assert_eq!(ask("session=good").await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the decision was kept");
    let seen = bodies.lock().unwrap()[0].clone();
    assert_eq!(seen["channel"], "roomA");
    assert_eq!(seen["transport"], "poll");
    assert_eq!(seen["ip"], "127.0.0.1");
    assert_eq!(seen["cookie"], "session=good");
    // Refused: 403 with the reason.
    let refused = ask("session=bad").await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body_text().contains("refused"),
        "{}",
        refused.body_text()
    );
    // No answer in time: refused, saying so, and asked again next time.
    let slow = ask("session=slow").await;
    assert_eq!(slow.status, 403);
    assert!(
        slow.body_text().contains("no answer"),
        "{}",
        slow.body_text()
    );
    // Legacy and WebSocket subscriptions ask too.
    let legacy = common::http_raw(
        s,
        b"GET /push/7/longpoll/roomA.h HTTP/1.1\r\nHost: localhost\r\nCookie: session=bad\r\n\r\n",
    )
    .await;
    assert!(status_line(&legacy).contains("403"));
    server.stop().await;
}

#[test]
fn tokens_never_reach_the_log() {
    let granted = token(&["room*"], 300, "ann");
    let mut process = common::Process::start(&[
        "-Debug",
        "1",
        "-TokenSecret",
        SECRET,
        "-PrivateChannels",
        "room*",
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let s = process.subscriber;
        get(s, &format!("/push/1/simplepoll/roomA?token={granted}")).await;
        let path = format!("/poll/roomA?timeout=0&token={granted}");
        request(s, "GET", &path, &[], b"").await;
        let bearer = format!("Bearer {granted}");
        request(
            s,
            "GET",
            "/poll/roomA?timeout=0",
            &[("Authorization", &bearer)],
            b"",
        )
        .await;
    });
    process.signal(libc::SIGTERM);
    assert_eq!(process.wait_exit(WAIT), Some(0));
    let log = process.log.lock().unwrap().join("\n");
    assert!(
        log.contains("joinchannel"),
        "the requests were logged: {log}"
    );
    let signature = granted.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a token reached the log");
    assert!(!log.contains(SECRET), "the secret reached the log");
}
