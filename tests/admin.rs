//! The admin web UI, through real HTTP requests on its own listener: first
//! run, sessions, CSRF, the sign-in rate limit, and every page's actions
//! reaching the hub, the settings and the database.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::admin::*;
use common::{find, http_raw, request, Redis, Stream, TestServer, WAIT};
use meteord::hub::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn session_valid(server: &TestServer, token: &str) -> bool {
    server
        .node
        .accounts
        .as_ref()
        .unwrap()
        .session(token)
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn first_run_sets_the_password_and_signs_in() {
    let (server, admin) = admin_server().await;
    let accounts = server.node.accounts.clone().unwrap();
    let mut browser = Browser::new(admin);
    // Every page leads to the first-run page, the sign-in page too.
    for path in ["/", "/channels", "/settings", "/login", "/tokens"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(location(&page), "/setup", "{path}");
    }
    let page = browser.get("/setup").await;
    assert_eq!(page.status, 200);
    let body = html(&page);
    assert!(body.contains("<label for=\"password2\">"), "{body}");
    // Static files need nothing.
    let css = browser.get("/static/admin.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));

    // Too short, then two different passwords: refused, nothing stored.
    let short = browser.setup("admin", "short", "short").await;
    assert_eq!(short.status, 422);
    assert!(html(&short).contains("at least 8 characters"));
    let differ = browser.setup("admin", PASSWORD, "something else").await;
    assert_eq!(differ.status, 422);
    assert!(html(&differ).contains("differ"));
    assert!(!accounts.has_users().unwrap());

    // A page reached through a DNS name with dots may not set it.
    let body = form(&[
        ("username", "admin"),
        ("password", PASSWORD),
        ("password2", PASSWORD),
    ]);
    let rebound = http_raw(
        admin,
        format!(
            "POST /setup HTTP/1.1\r\nHost: evil.example.com\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert!(
        rebound.starts_with(b"HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&rebound)
    );
    assert!(!accounts.has_users().unwrap());

    let done = browser.setup("admin", PASSWORD, PASSWORD).await;
    assert_eq!(done.status, 303);
    assert_eq!(location(&done), "/");
    let token = browser.session().expect("a session cookie").to_string();
    assert!(session_valid(&server, &token));
    assert!(accounts.verify_password("admin", PASSWORD).unwrap());
    let dashboard = browser.get("/").await;
    assert_eq!(dashboard.status, 200);
    let body = html(&dashboard);
    assert!(body.contains("<h1>Dashboard</h1>"), "{body}");
    assert!(body.contains("signed in"), "the welcome notice: {body}");
    // The notice is shown once.
    assert!(!html(&browser.get("/").await).contains("Welcome to meteord"));

    // Only once.
    let again = Browser::new(admin)
        .setup("eve", "evil password", "evil password")
        .await;
    assert_eq!(again.status, 403);
    assert!(!accounts.verify_password("eve", "evil password").unwrap());
    let mut stranger = Browser::new(admin);
    assert_eq!(location(&stranger.get("/setup").await), "/login");
    assert!(location(&stranger.get("/").await).starts_with("/login"));
    server.stop().await;
}

#[tokio::test]
async fn sign_in_and_out() {
    let (server, mut first) = signed_in().await;
    let admin = first.addr;
    let mut browser = Browser::new(admin);
    let page = browser.get("/login").await;
    assert_eq!(page.status, 200);
    assert!(html(&page).contains("<label for=\"password\">"));

    let wrong = browser.login("admin", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(html(&wrong).contains("Wrong user name or password"));
    assert!(browser.session().is_none());
    let unknown = browser.login("nobody", PASSWORD).await;
    assert_eq!(unknown.status, 401);

    let ok = browser
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", PASSWORD),
                ("next", "/channels"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(location(&ok), "/channels");
    assert_eq!(browser.get("/channels").await.status, 200);
    // Somewhere else than this UI is not a place to go after signing in.
    let mut other = Browser::new(admin);
    let away = other
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(location(&away), "/");
    // Signed in already: the sign-in page moves on.
    assert_eq!(location(&browser.get("/login").await), "/");

    // Two sessions at once; signing out ends only this one.
    let token = browser.session().unwrap().to_string();
    let out = browser.submit("/", "/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(location(&out), "/login");
    assert!(browser.session().is_none(), "the cookie is cleared");
    assert!(!session_valid(&server, &token));
    assert_eq!(first.get("/").await.status, 200);
    // The old token no longer opens anything.
    let mut replay = Browser::new(admin);
    replay.cookies.insert("meteord_session".into(), token);
    let page = replay.get("/settings").await;
    assert_eq!(page.status, 303);
    assert_eq!(location(&page), "/login?next=%2Fsettings");
    server.stop().await;
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_client() {
    let (server, browser) = signed_in().await;
    let mut client = Browser::new(browser.addr);
    for attempt in 1..=5 {
        let wrong = client.login("admin", &format!("guess {attempt}")).await;
        assert_eq!(wrong.status, 401, "attempt {attempt}");
    }
    // The sixth attempt is refused without a check, even with the password.
    let blocked = client.login("admin", PASSWORD).await;
    assert_eq!(blocked.status, 429);
    assert_eq!(blocked.header("retry-after"), Some("60"));
    assert!(client.session().is_none());
    server.stop().await;
}

#[tokio::test]
async fn every_admin_route_needs_a_session() {
    let (server, browser) = signed_in().await;
    let admin = browser.addr;
    let pages = [
        "/",
        "/live",
        "/channels",
        "/channels/demo",
        "/channel-settings",
        "/settings",
        "/tokens",
        "/nonexistent",
    ];
    let actions = [
        "/logout",
        "/channels/demo/publish",
        "/channels/demo/clear",
        "/channels/demo/kick",
        "/channel-settings",
        "/channel-settings/delete",
        "/settings",
        "/settings/reset",
        "/tokens",
        "/tokens/1/revoke",
        "/password",
    ];
    let bad_cookie = format!("meteord_session={}", "ab".repeat(32));
    for cookie in [
        None,
        Some("meteord_session=garbage"),
        Some(bad_cookie.as_str()),
    ] {
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", *c)).collect();
        for path in pages {
            let reply = request(admin, "GET", path, &headers, b"").await;
            if path == "/nonexistent" {
                assert!(reply.status == 404 || reply.status == 303, "{path}");
                continue;
            }
            assert_eq!(reply.status, 303, "GET {path} with {cookie:?}");
            assert!(
                location(&reply).starts_with("/login"),
                "GET {path}: {}",
                reply.head
            );
        }
        for path in actions {
            let mut h = headers.clone();
            h.push(("Content-Type", "application/x-www-form-urlencoded"));
            let reply = request(
                admin,
                "POST",
                path,
                &h,
                b"csrf=x&text=hi&id=1&key=MaxTime&value=1&name=t&pattern=p",
            )
            .await;
            assert!(
                reply.status == 401 || reply.status == 403,
                "POST {path} with {cookie:?}: {}",
                reply.status
            );
        }
    }
    assert!(server.node.hub.messages(b"demo").is_empty());
    assert!(server.node.channel_rules().is_empty());
    assert!(server
        .node
        .accounts
        .as_ref()
        .unwrap()
        .tokens()
        .unwrap()
        .is_empty());
    server.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_other_sites_change_nothing() {
    let (server, mut browser) = signed_in().await;
    let csrf = browser.csrf("/channels/demo").await;
    let publish = "/channels/demo/publish";
    let missing = browser
        .post(publish, &[("text", "no token"), ("escape", "on")])
        .await;
    assert_eq!(missing.status, 403);
    let wrong = browser
        .post(
            publish,
            &[("csrf", &"0".repeat(64)), ("text", "wrong token")],
        )
        .await;
    assert_eq!(wrong.status, 403);
    let settings = browser
        .post(
            "/settings",
            &[
                ("csrf", "nope"),
                ("key", "MaxMessagesPerChannel"),
                ("value", "3"),
            ],
        )
        .await;
    assert_eq!(settings.status, 403);
    // The right token, but sent by another site's page (another port of
    // the same host is another site too).
    let fields = [("csrf", csrf.as_str()), ("text", "cross site")];
    let other_origin = format!("http://127.0.0.1:{}", server.subscriber.port());
    let cross = browser
        .post_with(publish, &fields, &[("Origin", &other_origin)])
        .await;
    assert_eq!(cross.status, 403);
    let fetch_site = browser
        .post_with(publish, &fields, &[("Sec-Fetch-Site", "same-site")])
        .await;
    assert_eq!(fetch_site.status, 403);
    let null = browser
        .post_with(publish, &fields, &[("Origin", "null")])
        .await;
    assert_eq!(null.status, 403);
    // Sign-in from another site is refused too.
    let login = browser
        .post_with(
            "/login",
            &[("username", "admin"), ("password", PASSWORD)],
            &[("Sec-Fetch-Site", "cross-site")],
        )
        .await;
    assert_eq!(login.status, 403);

    assert!(server.node.hub.messages(b"demo").is_empty());
    assert_ne!(server.node.config.load().max_messages_per_channel, 3);

    // The same form, done right, from this origin.
    let ok = browser
        .post_with(
            publish,
            &[("csrf", &csrf), ("text", "ok")],
            &[
                ("Origin", "http://localhost"),
                ("Sec-Fetch-Site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", html(&ok));
    assert_eq!(server.node.hub.messages(b"demo").len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_new_session_token_at_every_sign_in() {
    let (server, mut browser) = signed_in().await;
    let first = browser.session().unwrap().to_string();
    // Signing in again from a signed-in browser replaces its session.
    let again = browser.login("admin", PASSWORD).await;
    assert_eq!(again.status, 303);
    let second = browser.session().unwrap().to_string();
    assert_ne!(first, second);
    assert!(!session_valid(&server, &first), "the old session ended");
    assert!(session_valid(&server, &second));

    // A token planted before sign-in is not the one signed in.
    let mut victim = Browser::new(browser.addr);
    let planted = "cd".repeat(32);
    victim
        .cookies
        .insert("meteord_session".into(), planted.clone());
    let signed = victim.login("admin", PASSWORD).await;
    assert_eq!(signed.status, 303);
    assert_ne!(victim.session().unwrap(), planted);
    assert!(!session_valid(&server, &planted));

    // Signing out ends the session in the database.
    let token = victim.session().unwrap().to_string();
    assert_eq!(victim.submit("/", "/logout", &[]).await.status, 303);
    assert!(!session_valid(&server, &token));
    server.stop().await;
}

#[tokio::test]
async fn publish_from_the_form_reaches_a_legacy_subscriber() {
    let (server, mut browser) = signed_in().await;
    let mut sub = Stream::open(server.subscriber, "/push/h1/xhrinteractive/news").await;
    server.wait_subscribers("news", 1).await;

    // Escaped (the default): the legacy page gets a valid JavaScript string.
    let text = "say \"hi\"\\\nit's </script>\u{2028}";
    let sent = browser
        .submit(
            "/channels/news",
            "/channels/news/publish",
            &[("text", text), ("escape", "on")],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", html(&sent));
    assert_eq!(location(&sent), "/channels/news");
    sub.until(b"p(0,\"news\",\"say \\\"hi\\\"\\\\\\nit\\'s <\\/script>\\u2028\");</script>")
        .await;
    let page = html(&browser.get("/channels/news").await);
    assert!(page.contains("Message 0 published to news."), "{page}");
    assert!(page.contains("was escaped for legacy pages"), "{page}");

    // Unescaped: sent as typed, with a warning.
    let raw = "plain \"quoted\"";
    let sent = browser
        .submit("/channels/news", "/channels/news/publish", &[("text", raw)])
        .await;
    assert_eq!(sent.status, 303);
    sub.until(b"p(1,\"news\",\"plain \"quoted\"\");</script>")
        .await;
    let page = html(&browser.get("/channels/news").await);
    assert!(
        page.contains("notice notice-warn\" role=\"alert\">Message 1 published"),
        "{page}"
    );
    assert!(page.contains("Sent unescaped"), "{page}");
    assert!(page.contains("a double quote"), "{page}");

    // Harmless text, unescaped: no warning.
    browser
        .submit(
            "/channels/news",
            "/channels/news/publish",
            &[("text", "just <b>bold</b>")],
        )
        .await;
    sub.until(b"p(2,\"news\",\"just <b>bold</b>\");").await;
    let page = html(&browser.get("/channels/news").await);
    assert!(page.contains("Message 2 published to news."), "{page}");
    assert!(!page.contains("Sent unescaped"), "{page}");

    // An empty message is refused.
    let empty = browser
        .submit(
            "/channels/news",
            "/channels/news/publish",
            &[("text", ""), ("escape", "on")],
        )
        .await;
    assert_eq!(empty.status, 422);
    assert_eq!(server.node.hub.messages(b"news").len(), 3);

    // The cached messages are listed (HTML-escaped) on the channel's page.
    let page = html(&browser.get("/channels/news").await);
    assert!(
        page.contains("just &#60;b&#62;bold&#60;/b&#62;")
            || page.contains("just &lt;b&gt;bold&lt;/b&gt;"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn kick_a_subscriber_and_clear_a_cache_from_the_channel_page() {
    let (server, mut browser) = signed_in().await;
    let mut sub = Stream::open(server.subscriber, "/push/kickme/xhrinteractive/room").await;
    server.wait_subscribers("room", 1).await;
    for i in 0..3 {
        server.publish("room", &format!("m{i}")).await;
    }
    sub.until(b"m2").await;

    let page = html(&browser.get("/channels/room").await);
    assert!(page.contains("kickme"), "{page}");
    assert!(page.contains("xhrinteractive"), "{page}");
    let (id, info) = server.node.hub.channel_subscribers(b"room").remove(0);
    assert_eq!(info.host_id.as_deref(), Some(&b"kickme"[..]));
    assert!(
        page.contains(&format!("name=\"id\" value=\"{id}\"")),
        "{page}"
    );

    let kicked = browser
        .submit(
            "/channels/room",
            "/channels/room/kick",
            &[("id", &id.to_string())],
        )
        .await;
    assert_eq!(kicked.status, 303);
    sub.read_to_close().await;
    server.wait_subscribers("room", 0).await;
    assert!(html(&browser.get("/channels/room").await)
        .contains(&format!("Subscriber {id} was disconnected")));

    assert_eq!(server.node.hub.messages(b"room").len(), 3);
    let cleared = browser
        .submit("/channels/room", "/channels/room/clear", &[])
        .await;
    assert_eq!(cleared.status, 303);
    assert!(server.node.hub.messages(b"room").is_empty());
    assert!(html(&browser.get("/channels/room").await).contains("Cleared 3 cached messages"));
    server.stop().await;
}

#[tokio::test]
async fn channel_list_search_and_open() {
    let (server, mut browser) = signed_in().await;
    server.publish("chat.room1", "a").await;
    server.publish("chat.room2", "b").await;
    server.publish("news", "c").await;
    let all = html(&browser.get("/channels").await);
    for name in ["chat.room1", "chat.room2", "news"] {
        assert!(all.contains(&format!("href=\"/channels/{name}\"")), "{all}");
    }
    let some = html(&browser.get("/channels?q=ROOM").await);
    assert!(some.contains("chat.room1") && some.contains("chat.room2"));
    assert!(!some.contains("href=\"/channels/news\""));
    let open = browser.get("/channels?open=brand%2Fnew").await;
    assert_eq!(open.status, 303);
    assert_eq!(location(&open), "/channels/brand%2Fnew");
    let page = html(&browser.get("/channels/brand%2Fnew").await);
    assert!(page.contains("Publishing a message creates it"), "{page}");
    assert_eq!(browser.get("/channels?open=has%20space").await.status, 422);
    server.stop().await;
}

#[tokio::test]
async fn channel_rules_from_the_form() {
    let (server, mut browser) = signed_in().await;
    let page = html(&browser.get("/channel-settings").await);
    for t in Transport::ALL {
        assert!(page.contains(&format!("value=\"{t}\"")), "{page}");
    }
    let saved = browser
        .submit(
            "/channel-settings",
            "/channel-settings",
            &[
                ("pattern", "chat.*"),
                ("max_messages", "5"),
                ("max_age", ""),
                ("persist", "off"),
                ("transports", "sse"),
                ("transports", "websocket"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", html(&saved));
    let rules = server.node.channel_rules();
    assert_eq!(rules.len(), 1);
    let rule = &rules[0];
    assert_eq!(rule.pattern, "chat.*");
    assert_eq!(rule.max_messages, Some(5));
    assert_eq!(rule.max_age, None);
    assert_eq!(rule.persist, Some(false));
    assert_eq!(
        rule.transports,
        Some(vec![Transport::Sse, Transport::WebSocket])
    );
    assert!(!rule.anonymous);
    assert!(server.node.hub.rule_for(b"chat.lobby").is_some());
    let listed = html(&browser.get("/channel-settings").await);
    assert!(
        listed.contains("chat.*") && listed.contains("sse, websocket"),
        "{listed}"
    );

    // Edit: every transport, anonymous allowed.
    let edit = html(&browser.get("/channel-settings?edit=chat.*").await);
    assert!(edit.contains("Edit the rule for"), "{edit}");
    let mut fields = vec![
        ("pattern", "chat.*"),
        ("editing", "1"),
        ("persist", "inherit"),
        ("anonymous", "on"),
    ];
    fields.extend(Transport::ALL.iter().map(|t| ("transports", t.name())));
    assert_eq!(
        browser
            .submit("/channel-settings", "/channel-settings", &fields)
            .await
            .status,
        303
    );
    let rule = &server.node.channel_rules()[0];
    assert_eq!(rule.transports, None);
    assert!(rule.anonymous);
    assert_eq!(rule.max_messages, None);

    // Errors are shown next to the form, and nothing changes.
    let bad = browser
        .submit(
            "/channel-settings",
            "/channel-settings",
            &[("pattern", "has space"), ("transports", "sse")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(html(&bad).contains("spaces"), "{}", html(&bad));
    let bad = browser
        .submit(
            "/channel-settings",
            "/channel-settings",
            &[("pattern", "x"), ("max_age", "soon"), ("transports", "sse")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(html(&bad).contains("Max age is a whole number"));
    assert_eq!(server.node.channel_rules().len(), 1);

    let deleted = browser
        .submit(
            "/channel-settings",
            "/channel-settings/delete",
            &[("pattern", "chat.*")],
        )
        .await;
    assert_eq!(deleted.status, 303);
    assert!(server.node.channel_rules().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn global_settings_from_the_form() {
    let (server, mut browser) = signed_in().await;
    let page = html(&browser.get("/settings").await);
    assert!(page.contains("MaxMessagesPerChannel"));
    assert!(page.contains("change only when the server restarts"));

    let saved = browser
        .submit(
            "/settings",
            "/settings",
            &[("key", "MaxMessagesPerChannel"), ("value", "7")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", html(&saved));
    let config = server.node.config.load();
    assert_eq!(config.max_messages_per_channel, 7);
    let setting = config
        .settings
        .iter()
        .find(|s| s.key == "MaxMessagesPerChannel" && s.mode.is_none())
        .unwrap();
    assert_eq!(setting.raw, "7");
    assert_eq!(setting.source, meteord::config::Source::Ui);
    drop(config);
    let page = html(&browser.get("/settings").await);
    assert!(page.contains("MaxMessagesPerChannel is set to"), "{page}");

    // A bad value: the error is shown and nothing changes.
    let bad = browser
        .submit(
            "/settings",
            "/settings",
            &[("key", "Persistence"), ("value", "sometimes")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(html(&bad).contains("sometimes"), "{}", html(&bad));
    let unknown = browser
        .submit(
            "/settings",
            "/settings",
            &[("key", "NoSuchKey"), ("value", "1")],
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert!(html(&unknown).contains("unknown setting"));

    let reset = browser
        .submit(
            "/settings",
            "/settings/reset",
            &[("key", "MaxMessagesPerChannel")],
        )
        .await;
    assert_eq!(reset.status, 303);
    let config = server.node.config.load();
    assert_ne!(config.max_messages_per_channel, 7);
    assert!(config
        .settings
        .iter()
        .all(|s| s.source != meteord::config::Source::Ui));
    server.stop().await;
}

#[tokio::test]
async fn an_api_token_made_in_the_ui_publishes_through_the_api() {
    let (server, mut browser) = signed_in().await;
    let made = browser
        .submit("/tokens", "/tokens", &[("name", "ci publisher")])
        .await;
    assert_eq!(made.status, 200);
    assert_eq!(made.header("cache-control"), Some("no-store"));
    let body = html(&made);
    let at = body.find("value=\"mtd_").expect("the new token") + "value=\"".len();
    let token = body[at..at + body[at..].find('"').unwrap()].to_string();
    // Shown once: the list does not show it again.
    let listed = html(&browser.get("/tokens").await);
    assert!(listed.contains("ci publisher"));
    assert!(!listed.contains(&token));

    let auth = format!("Bearer {token}");
    let published = request(
        server.subscriber,
        "POST",
        "/api/channels/x/messages",
        &[("Authorization", &auth)],
        b"via the api",
    )
    .await;
    assert_eq!(
        published.status,
        201,
        "{}",
        String::from_utf8_lossy(&published.body)
    );
    assert_eq!(&server.node.hub.messages(b"x")[0].text[..], b"via the api");

    let id = server.node.accounts.as_ref().unwrap().tokens().unwrap()[0].id;
    let revoked = browser
        .submit("/tokens", &format!("/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, 303);
    let refused = request(
        server.subscriber,
        "POST",
        "/api/channels/x/messages",
        &[("Authorization", &auth)],
        b"again",
    )
    .await;
    assert_eq!(refused.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn change_the_password() {
    let (server, mut browser) = signed_in().await;
    let old_token = browser.session().unwrap().to_string();
    let wrong = browser
        .change_password("not it", "a new password", "a new password")
        .await;
    assert_eq!(wrong.status, 422);
    assert!(html(&wrong).contains("current password is wrong"));
    let changed = browser
        .change_password(PASSWORD, "a new password", "a new password")
        .await;
    assert_eq!(changed.status, 303);
    assert!(!session_valid(&server, &old_token));
    assert_eq!(browser.get("/tokens").await.status, 200, "still signed in");
    let accounts = server.node.accounts.as_ref().unwrap();
    assert!(accounts.verify_password("admin", "a new password").unwrap());
    assert!(!accounts.verify_password("admin", PASSWORD).unwrap());
    server.stop().await;
}

#[tokio::test]
async fn the_live_endpoint_streams_samples() {
    let (server, browser) = signed_in().await;
    server.publish("demo", "counted").await;
    let mut stream = TcpStream::connect(browser.addr).await.unwrap();
    stream
        .write_all(
            format!(
                "GET /live HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\n\r\n",
                browser.cookie_header()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    let sample = tokio::time::timeout(WAIT, async {
        loop {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&chunk[..n]);
            // A sample event (not the history) with the counters.
            if let Some(at) = find(&received, b"\ndata: {\"t\":") {
                if let Some(end) = find(&received[at + 1..], b"\n\n") {
                    break String::from_utf8_lossy(&received[at + 7..at + 1 + end]).into_owned();
                }
            }
        }
    })
    .await
    .expect("a sample within the wait");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{text}"
    );
    assert!(text.contains("event: history"), "{text}");
    let sample: serde_json::Value = serde_json::from_str(&sample).unwrap();
    for key in [
        "uptime",
        "channels",
        "subscribers",
        "by_transport",
        "messages_per_s",
        "bytes_out_per_s",
    ] {
        assert!(sample.get(key).is_some(), "{key} in {sample}");
    }
    assert_eq!(sample["channels"], 1);
    // Shutdown ends the stream (the server does not wait for it).
    tokio::time::timeout(Duration::from_secs(5), server.stop())
        .await
        .expect("shutdown with a live stream open");
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    // The real binary with debug logging: passwords, session, CSRF and API
    // tokens must not appear in anything it writes, on standard error or
    // in its log files (JSON here; text files are the same events).
    let logs = tempfile::tempdir().unwrap();
    let mut process = common::Process::start(&[
        "-d",
        "-LogDirectory",
        logs.path().to_str().unwrap(),
        "-LogFormat",
        "json",
    ]);
    process.wait_log("admin listening on ");
    let admin: SocketAddr = {
        let log = process.log.lock().unwrap();
        let line = log
            .iter()
            .find(|l| l.contains("admin listening on "))
            .unwrap();
        line.rsplit("admin listening on ")
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let mut browser = Browser::new(admin);
    let done = browser.setup("admin", PASSWORD, PASSWORD).await;
    assert_eq!(done.status, 303);
    let wrong = browser.login("admin", "a wrong guess").await;
    assert_eq!(wrong.status, 401);
    let signed = browser.login("admin", PASSWORD).await;
    assert_eq!(signed.status, 303);
    let session = browser.session().unwrap().to_string();
    // The dashboard says where the log files are.
    let dashboard = html(&browser.get("/").await);
    assert!(
        dashboard.contains(&format!(
            "<code id=\"log-directory\">{}</code>",
            logs.path().display()
        )),
        "{dashboard}"
    );
    let csrf = browser.csrf("/tokens").await;
    let made = browser
        .post("/tokens", &[("csrf", &csrf), ("name", "logged?")])
        .await;
    let body = html(&made);
    let at = body.find("value=\"mtd_").unwrap() + "value=\"".len();
    let token = body[at..at + body[at..].find('"').unwrap()].to_string();
    assert_eq!(
        browser
            .post("/channels/c/publish", &[("csrf", "bad"), ("text", "x")])
            .await
            .status,
        403
    );
    assert_eq!(
        browser.post("/logout", &[("csrf", &csrf)]).await.status,
        303
    );
    process.wait_log("signed out");
    // Stopped, so that the file writer has flushed everything.
    process.signal(libc::SIGTERM);
    assert_eq!(process.wait_exit(Duration::from_secs(15)), Some(0));
    let mut files = String::new();
    for entry in std::fs::read_dir(logs.path()).unwrap() {
        files.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(files.contains("failed sign-in"), "{files}");
    assert!(files.contains("signed out"), "{files}");
    let log = process.log.lock().unwrap().join("\n") + "\n" + &files;
    assert!(log.contains("failed sign-in"), "{log}");
    for secret in [
        PASSWORD,
        "a wrong guess",
        session.as_str(),
        csrf.as_str(),
        token.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

#[tokio::test]
async fn pause_and_resume_publishing_from_the_dashboard() {
    let (server, mut browser) = signed_in().await;
    let dashboard = html(&browser.get("/").await);
    assert!(dashboard.contains("Pause publishing"), "{dashboard}");
    let paused = browser.submit("/", "/publishing", &[("paused", "1")]).await;
    assert_eq!(paused.status, 303, "{}", html(&paused));
    assert!(server.node.publishing_paused());
    let mut control = server.control().await;
    assert_eq!(
        control.command("ADDMESSAGE c x").await,
        "ERR Publishing is paused\r\n"
    );
    // The publish form says why nothing was published.
    let refused = browser
        .submit("/channels/c", "/channels/c/publish", &[("text", "hello")])
        .await;
    assert_eq!(refused.status, 422);
    assert!(html(&refused).contains("Publishing is paused"));
    assert!(server.node.hub.messages(b"c").is_empty());
    let dashboard = html(&browser.get("/").await);
    assert!(dashboard.contains("Resume publishing"), "{dashboard}");
    let resumed = browser.submit("/", "/publishing", &[("paused", "0")]).await;
    assert_eq!(resumed.status, 303);
    assert_eq!(control.command("ADDMESSAGE c x").await, "OK\t0\r\n");
    server.stop().await;
}

#[tokio::test]
async fn update_buttons_report_a_missing_feed() {
    let (server, mut browser) = signed_in().await;
    let dashboard = html(&browser.get("/").await);
    assert!(
        dashboard.contains("this build carries no release feed (a build from source)"),
        "{dashboard}"
    );
    let checked = browser.submit("/", "/update/check", &[]).await;
    assert_eq!(checked.status, 303);
    let dashboard = html(&browser.get("/").await);
    assert!(
        dashboard.contains("role=\"alert\">Updating is off: this build carries no release feed"),
        "{dashboard}"
    );
    server.stop().await;
}

#[tokio::test]
async fn dashboard_shows_each_node_and_the_redis_password_stays_hidden() {
    let redis = Redis::start_with_password("hunter2-pw");
    let url = redis.url();
    let a = [
        ("Engine", "redis"),
        ("RedisURL", url.as_str()),
        ("NodeName", "node-a"),
    ];
    let b = [
        ("Engine", "redis"),
        ("RedisURL", url.as_str()),
        ("NodeName", "node-b"),
    ];
    let (server, mut browser) = signed_in_with(&a).await;
    let other = TestServer::start(&b).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    let page = loop {
        let page = html(&browser.get("/").await);
        if page.contains("data-node=\"node-b\"") || tokio::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("id=\"cluster\""), "{page}");
    assert!(page.contains("data-node=\"node-a\""), "{page}");
    assert!(page.contains("data-node=\"node-b\""), "{page}");
    assert!(page.contains(">connected<"), "{page}");
    assert!(page.contains("redis://:***@127.0.0.1"), "{page}");
    assert!(!page.contains("hunter2-pw"), "password on the dashboard");

    let settings = html(&browser.get("/settings").await);
    assert!(settings.contains("id=\"setting-RedisURL\""), "{settings}");
    assert!(settings.contains("redis://:***@127.0.0.1"), "{settings}");
    assert!(
        !settings.contains("hunter2-pw"),
        "password on the settings page"
    );
    // Saving the hidden form back would make *** the password: refused.
    let masked = format!("redis://:***@127.0.0.1:{}/", redis.port);
    let refused = browser
        .submit(
            "/settings",
            "/settings",
            &[("key", "RedisURL"), ("value", &masked)],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(html(&refused).contains("never shows it"));

    // A node that goes away shows as down, then is dropped on a clean stop.
    other.stop().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = html(&browser.get("/").await);
        if !page.contains("data-node=\"node-b\"") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node-b still listed: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn tokens_with_scopes_and_a_subscribe_token_secret_from_the_ui() {
    let (server, mut browser) = signed_in().await;
    // A token that may only publish, and only to news.*.
    let made = browser
        .submit(
            "/tokens",
            "/tokens",
            &[
                ("scoped", "1"),
                ("name", "newsroom"),
                ("scopes", "publish"),
                ("channels", "news.*"),
            ],
        )
        .await;
    assert_eq!(made.status, 200);
    let body = html(&made);
    let at = body.find("value=\"mtd_").expect("the new token") + "value=\"".len();
    let token = body[at..at + body[at..].find('"').unwrap()].to_string();
    assert!(body.contains("news.*"), "the list shows its channels");
    let auth = format!("Bearer {token}");
    let post = |channel: &'static str| {
        let auth = auth.clone();
        let addr = server.subscriber;
        async move {
            let path = format!("/api/channels/{channel}/messages");
            request(addr, "POST", &path, &[("Authorization", &auth)], b"x")
                .await
                .status
        }
    };
    assert_eq!(post("news.today").await, 201);
    assert_eq!(post("chat").await, 403);
    // No scope ticked: refused.
    let none = browser
        .submit(
            "/tokens",
            "/tokens",
            &[("scoped", "1"), ("name", "nothing")],
        )
        .await;
    assert_eq!(none.status, 422);

    // The subscribe-token secret: made here, shown once, hidden after.
    let made = browser.submit("/tokens", "/tokens/secret", &[]).await;
    assert_eq!(made.status, 200);
    let body = html(&made);
    let at = body.find("id=\"new-secret\"").expect("the new secret");
    let value = &body[at..];
    let start = value.find("value=\"").unwrap() + "value=\"".len();
    let secret = value[start..start + value[start..].find('"').unwrap()].to_string();
    assert_eq!(secret.len(), 64);
    assert_eq!(server.node.config.load().token_secret, secret);
    let again = html(&browser.get("/tokens").await);
    assert!(!again.contains(&secret), "shown only once");
    assert!(again.contains("set (set in this admin UI)"), "{again}");
    let settings = html(&browser.get("/settings").await);
    assert!(
        !settings.contains(&secret),
        "the settings page never shows it"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_channel_page_lists_who_is_present() {
    let (server, mut browser) = signed_in().await;
    let mut one = Stream::open(server.subscriber, "/sse/lounge?hostid=tab1").await;
    let mut two = Stream::open(server.subscriber, "/push/tab2/xhrinteractive/lounge").await;
    one.until(b"retry").await;
    server.wait_subscribers("lounge", 2).await;
    let deadline = std::time::Instant::now() + WAIT;
    let page = loop {
        let page = html(&browser.get("/channels/lounge").await);
        if page.contains("<strong>2</strong> present") {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        page.contains("host:tab1") && page.contains("host:tab2"),
        "{page}"
    );
    assert!(
        page.contains("sse on ") && page.contains("legacy on "),
        "{page}"
    );
    two.until(b"<script>").await;
    drop((one, two));
    server.stop().await;
}

#[tokio::test]
async fn webhooks_page_shows_dead_letters_and_retries_them_and_sends_a_test() {
    use common::receiver::Receiver;
    let mut receiver = Receiver::start().await;
    let addr = receiver.addr;
    let url = receiver.url();
    receiver.take_down();
    let (server, mut browser) = signed_in_with(&[
        ("WebhookURL", url.as_str()),
        ("WebhookSecret", "page test secret"),
        ("WebhookEvents", "message_published"),
        ("WebhookRetrySeconds", "1"),
    ])
    .await;
    server.publish("letters", "undeliverable").await;
    // Tried for a second with nobody there: a dead letter.
    let queue = server.node.webhooks.queue.clone().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while queue.counts().unwrap().dead < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "never became a dead letter"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = html(&browser.get("/webhooks").await);
    assert!(page.contains("<strong>1</strong> dead letter"), "{page}");
    assert!(page.contains("data-state=\"dead\""), "{page}");
    assert!(
        page.contains("message_published") && page.contains(&url),
        "{page}"
    );
    assert!(
        !page.contains("page test secret"),
        "the secret stays hidden"
    );
    let row = queue.recent(None, 1).unwrap()[0].row.to_string();

    // The application is back: retry by hand, and send a test event.
    let receiver = Receiver::start_on(addr).await;
    let retried = browser
        .submit("/webhooks", "/webhooks/retry", &[("row", &row)])
        .await;
    assert_eq!(retried.status, 303);
    let tested = browser.submit("/webhooks", "/webhooks/test", &[]).await;
    assert_eq!(tested.status, 303);
    let events = receiver
        .wait_until("the retried message and the test", |e| e.len() >= 2)
        .await;
    let mut kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["message_published", "test"]);
    let page = html(&browser.get("/webhooks").await);
    assert!(page.contains("<strong>0</strong> dead letters"), "{page}");
    assert!(page.contains("<strong>2</strong> delivered"), "{page}");
    server.stop().await;
}
