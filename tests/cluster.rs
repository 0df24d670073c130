//! Several nodes sharing channels through a real `redis-server`: every
//! subscriber on every node sees every message, with the same ids, in the
//! same order, with the same backlog — and Redis or a node failing loses or
//! repeats nothing that was acknowledged.

mod common;

use std::time::Duration;

use common::{get, request, Control, Process, Redis, Stream, TestServer};
use serde_json::Value;

/// A node of the cluster on `redis`, in this process.
async fn node(redis: &Redis, name: &str) -> TestServer {
    node_with(redis, name, &[]).await
}

async fn node_with(redis: &Redis, name: &str, extra: &[(&str, &str)]) -> TestServer {
    let url = redis.url();
    let mut options = vec![
        ("Engine", "redis"),
        ("RedisURL", url.as_str()),
        ("NodeName", name),
        ("PingInterval", "0"),
        ("MaxTime", "0"),
    ];
    options.extend_from_slice(extra);
    TestServer::start(&options).await
}

/// The (id, text) of every message in a legacy `<script>p(id,"ch","text")`
/// body (pings, id -1, left out).
fn legacy_messages(body: &[u8]) -> Vec<(u64, String)> {
    let body = String::from_utf8_lossy(body);
    body.split("<script>p(")
        .skip(1)
        .filter_map(|rest| {
            let (id, rest) = rest.split_once(',')?;
            let id: u64 = id.parse().ok()?;
            let rest = rest.split_once(",\"")?.1;
            let text = rest.split_once("\");</script>")?.0;
            Some((id, text.to_string()))
        })
        .collect()
}

/// The (id, text) of every SSE event in a body.
fn sse_messages(body: &[u8]) -> Vec<(u64, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .map(|e| {
            (
                e["id"].as_u64().unwrap(),
                e["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Publish through a control connection; the id, or the error line.
async fn try_publish(control: &mut Control, channel: &str, text: &str) -> Result<u64, String> {
    let reply = control
        .command(&format!("ADDMESSAGE {channel} {text}"))
        .await;
    match reply.strip_prefix("OK\t") {
        Some(id) => Ok(id.trim_end().parse().unwrap()),
        None => Err(reply),
    }
}

/// Publish through the HTTP API.
async fn api_publish(
    addr: std::net::SocketAddr,
    auth: &str,
    channel: &str,
    text: &str,
) -> common::Response {
    let path = format!("/api/channels/{channel}/messages");
    request(
        addr,
        "POST",
        &path,
        &[("Authorization", auth)],
        text.as_bytes(),
    )
    .await
}

/// Wait until `check` holds, or fail with `what`.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_subscriber_on_every_node_sees_every_message_in_one_order() {
    let redis = Redis::start();
    let nodes = [
        node(&redis, "a").await,
        node(&redis, "b").await,
        node(&redis, "c").await,
    ];
    let mut legacy = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        legacy.push(Stream::open(n.subscriber, &format!("/push/h{i}/xhrinteractive/room")).await);
    }
    let mut sse = Stream::open(nodes[1].subscriber, "/sse/room").await;
    for (i, n) in nodes.iter().enumerate() {
        n.wait_subscribers("room", if i == 1 { 2 } else { 1 }).await;
    }

    // One at a time, in turn on each node: ids follow publish order.
    let mut acked = Vec::new();
    for i in 0..9 {
        let id = nodes[i % 3].publish("room", &format!("s{i}")).await;
        acked.push((id, format!("s{i}")));
    }
    assert!(acked.windows(2).all(|w| w[0].0 < w[1].0), "{acked:?}");
    assert_eq!(acked[0].0, 0, "ids start at 0 as with one server");

    // All three nodes at once: some order, but the same one everywhere.
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let addr = node.control;
        tasks.push(tokio::spawn(async move {
            let mut control = Control::connect(addr).await;
            let mut ids = Vec::new();
            for i in 0..20 {
                let text = format!("n{n}-{i}");
                ids.push((
                    try_publish(&mut control, "room", &text).await.unwrap(),
                    text,
                ));
            }
            ids
        }));
    }
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    acked.sort();
    let last = acked.last().unwrap().1.clone();

    for sub in legacy.iter_mut() {
        sub.until(format!("\"{last}\");").as_bytes()).await;
    }
    let seen: Vec<Vec<(u64, String)>> = legacy
        .iter()
        .map(|s| legacy_messages(&s.received))
        .collect();
    for got in &seen {
        assert_eq!(
            got, &acked,
            "every legacy subscriber, all acked messages in id order"
        );
    }
    sse.until(format!("\"{last}\"").as_bytes()).await;
    assert_eq!(sse_messages(&sse.received), acked);

    // The caches agree too.
    for n in &nodes {
        let cached: Vec<u64> = n.node.hub.messages(b"room").iter().map(|m| m.id).collect();
        let want: Vec<u64> = acked.iter().map(|(id, _)| *id).collect();
        assert_eq!(cached, want);
    }
}

#[tokio::test]
async fn a_new_node_serves_the_backlog_and_clients_resume_on_another_node() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let mut acked = Vec::new();
    for i in 0..10 {
        acked.push((a.publish("news", &format!("m{i}")).await, format!("m{i}")));
    }
    a.publish("other", "x").await;

    // A node started afterwards has the whole backlog at once.
    let b = node(&redis, "b").await;
    let body = get(b.subscriber, "/push/h/simplepoll/news.h").await;
    assert_eq!(legacy_messages(&body), acked);
    let body = get(b.subscriber, "/push/h/simplepoll/news.b3").await;
    assert_eq!(legacy_messages(&body), acked[7..]);

    // `.r<id>` resumes at that id on a node that never saw the client.
    let from = acked[4].0;
    let body = get(b.subscriber, &format!("/push/h/simplepoll/news.r{from}")).await;
    assert_eq!(legacy_messages(&body), acked[4..]);

    // SSE Last-Event-ID: everything after it, then live messages.
    let c = node(&redis, "c").await;
    let last_seen = acked[6].0;
    let mut sse = Stream {
        stream: tokio::net::TcpStream::connect(c.subscriber).await.unwrap(),
        received: Vec::new(),
    };
    use tokio::io::AsyncWriteExt;
    sse.stream
        .write_all(
            format!("GET /sse/news HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {last_seen}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    sse.until(b"\"m9\"").await;
    c.wait_subscribers("news", 1).await;
    let live = a.publish("news", "live").await;
    sse.until(b"\"live\"").await;
    let mut want = acked[7..].to_vec();
    want.push((live, "live".into()));
    assert_eq!(sse_messages(&sse.received), want);
}

#[tokio::test]
async fn redis_down_refuses_publishing_and_nodes_catch_up_when_it_returns() {
    let mut redis = Redis::start_durable();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let (_, token) = b.node.accounts.clone().unwrap().create_token("t").unwrap();
    let auth_b = format!("Bearer {token}");

    let mut sub_a = Stream::open(a.subscriber, "/push/ha/xhrinteractive/feed").await;
    let mut sub_b = Stream::open(b.subscriber, "/push/hb/xhrinteractive/feed").await;
    a.wait_subscribers("feed", 1).await;
    b.wait_subscribers("feed", 1).await;
    let mut acked = vec![(a.publish("feed", "before").await, "before".to_string())];

    redis.kill();
    let mut control = a.control().await;
    let refused = try_publish(&mut control, "feed", "lost").await.unwrap_err();
    assert!(refused.starts_with("ERR Redis is unavailable"), "{refused}");
    // The connection stays open for more commands.
    assert_eq!(control.command("COUNTSUBSCRIBERS feed").await, "OK 1\r\n");
    let http = api_publish(b.subscriber, &auth_b, "feed", "lost too").await;
    assert_eq!(
        http.status,
        503,
        "{:?}",
        String::from_utf8_lossy(&http.body)
    );
    assert!(http.json()["error"]
        .as_str()
        .unwrap()
        .contains("Redis is unavailable"));

    // Subscribers stay connected while Redis is away.
    assert!(sub_a.still_open_after(Duration::from_millis(300)).await);
    assert!(sub_b.still_open_after(Duration::from_millis(300)).await);

    redis.restart();
    let mut retry = a.control().await;
    let mut back = None;
    eventually("publishing works again", async || {
        back = try_publish(&mut retry, "feed", "after").await.ok();
        back.is_some()
    })
    .await;
    acked.push((back.unwrap(), "after".into()));
    let via_b = api_publish(b.subscriber, &auth_b, "feed", "from b").await;
    assert_eq!(via_b.status, 201);
    acked.push((via_b.json()["id"].as_u64().unwrap(), "from b".into()));

    for sub in [&mut sub_a, &mut sub_b] {
        sub.until(b"\"from b\");").await;
        assert_eq!(
            legacy_messages(&sub.received),
            acked,
            "no loss, no duplicate"
        );
    }
    for n in [&a, &b] {
        let cached: Vec<u64> = n.node.hub.messages(b"feed").iter().map(|m| m.id).collect();
        assert_eq!(cached, acked.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn redis_restarted_empty_is_refilled_and_ids_never_go_back() {
    let mut redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut sub_b = Stream::open(b.subscriber, "/push/hb/xhrinteractive/feed").await;
    b.wait_subscribers("feed", 1).await;
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push((a.publish("feed", &format!("m{i}")).await, format!("m{i}")));
    }
    sub_b.until(b"\"m4\");").await;

    redis.kill();
    redis.restart(); // with nothing: it kept nothing on disk
    let mut control = b.control().await;
    let mut next = None;
    eventually("publishing works again", async || {
        next = try_publish(&mut control, "feed", "after").await.ok();
        next.is_some()
    })
    .await;
    let next = next.unwrap();
    assert!(
        next > acked.last().unwrap().0,
        "id {next} reused after Redis lost its data"
    );
    acked.push((next, "after".into()));
    sub_b.until(b"\"after\");").await;
    assert_eq!(legacy_messages(&sub_b.received), acked);

    // The backlog survived in the nodes and was put back into Redis: a
    // node started now serves it.
    let c = node(&redis, "c").await;
    let body = get(c.subscriber, "/push/h/simplepoll/feed.h").await;
    assert_eq!(legacy_messages(&body), acked);
}

#[tokio::test]
async fn a_killed_node_loses_no_acknowledged_message() {
    // With a password, which must never reach the log.
    let redis = Redis::start_with_password("pw-9f3k2");
    let url = redis.url();
    let args = |name: &'static str| {
        vec![
            "-Engine".to_string(),
            "redis".into(),
            "-RedisURL".into(),
            url.clone(),
            "-NodeName".into(),
            name.into(),
        ]
    };
    let start =
        |args: &Vec<String>| Process::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let a = start(&args("a"));
    let b = start(&args("b"));
    let mut sub_b = Stream::open(b.subscriber, "/push/hb/xhrinteractive/feed").await;
    // Subscribed (its header names the channel) before anything is
    // published: a live subscription starts after the newest message.
    sub_b.until(b"<script>ch(\"feed\"").await;

    // Pipelined publishes on a, all acknowledged, then a dies at once.
    let mut control = Control::connect(a.control).await;
    let mut lines = String::new();
    for i in 0..50 {
        lines.push_str(&format!("ADDMESSAGE feed m{i}\r\n"));
    }
    control.send(lines.as_bytes()).await;
    let mut acked = Vec::new();
    for i in 0..50 {
        let reply = String::from_utf8(control.read_until(b"\r\n").await).unwrap();
        let id: u64 = reply
            .strip_prefix("OK\t")
            .unwrap()
            .trim_end()
            .parse()
            .unwrap();
        acked.push((id, format!("m{i}")));
    }
    drop(a); // SIGKILL

    sub_b.until(b"\"m49\");").await;
    assert_eq!(legacy_messages(&sub_b.received), acked);
    let body = get(b.subscriber, "/push/h/simplepoll/feed.h").await;
    assert_eq!(legacy_messages(&body), acked);

    // The restarted node serves them, and publishes where ids left off.
    let a = start(&args("a"));
    let body = get(a.subscriber, "/push/h/simplepoll/feed.h").await;
    assert_eq!(legacy_messages(&body), acked);
    let mut control = Control::connect(a.control).await;
    let id = try_publish(&mut control, "feed", "again").await.unwrap();
    assert_eq!(id, acked.last().unwrap().0 + 1);
    sub_b.until(b"\"again\");").await;

    let log = a.log.lock().unwrap().join("\n") + &b.log.lock().unwrap().join("\n");
    assert!(
        log.contains("redis engine: redis://:***@127.0.0.1"),
        "{log}"
    );
    assert!(!log.contains("pw-9f3k2"), "the password was logged: {log}");
}

#[tokio::test]
async fn a_wrong_password_is_an_error_not_a_leak() {
    let redis = Redis::start_with_password("right-pw");
    let url = redis.url().replace("right-pw", "wrong-pw");
    let a = Process::start(&["-Engine", "redis", "-RedisURL", &url, "-NodeName", "a"]);
    a.wait_log("redis engine: lost redis://:***@127.0.0.1");
    let mut control = Control::connect(a.control).await;
    let refused = try_publish(&mut control, "c", "x").await.unwrap_err();
    assert!(refused.starts_with("ERR Redis is unavailable"), "{refused}");
    let log = a.log.lock().unwrap().join("\n");
    assert!(
        !log.contains("wrong-pw") && !log.contains("right-pw"),
        "{log}"
    );
}

#[tokio::test]
async fn counts_and_stats_cover_every_node() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let _s1 = Stream::open(a.subscriber, "/push/s1/xhrinteractive/x").await;
    let _s2 = Stream::open(a.subscriber, "/push/s2/xhrinteractive/x").await;
    let _s3 = Stream::open(b.subscriber, "/push/s3/xhrinteractive/x").await;
    let _s4 = Stream::open(b.subscriber, "/push/s4/xhrinteractive/y").await;
    a.wait_subscribers("x", 2).await;
    b.wait_subscribers("x", 1).await;
    b.wait_subscribers("y", 1).await;
    a.publish("x", "one").await;

    let mut control = a.control().await;
    eventually("a counts b's subscribers", async || {
        control.command("COUNTSUBSCRIBERS x").await == "OK 3\r\n"
            && control.command("COUNTSUBSCRIBERS y").await == "OK 1\r\n"
    })
    .await;
    control.send(b"LISTCHANNELS\r\n").await;
    let list = String::from_utf8(control.read_until(b"--EOT--\r\n").await).unwrap();
    assert_eq!(list, "OK\r\nx(1/3)\r\ny(0/1)\r\n--EOT--\r\n");

    let mut control_b = b.control().await;
    control_b.send(b"SHOWSTATS\r\n").await;
    let stats = String::from_utf8(control_b.read_until(b"--EOT--\r\n").await).unwrap();
    let field = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {stats}"))
            .to_string()
    };
    assert!(stats.starts_with("OK\r\nuptime: "), "{stats}");
    assert_eq!(field("channel_count"), "2");
    assert_eq!(field("current_subscribers"), "4");
    assert_eq!(field("unique_messages"), "1", "each message counted once");
    assert_eq!(field("engine"), "redis");
    assert_eq!(field("node"), "b");
    assert_eq!(field("nodes"), "2");
    assert_eq!(field("node.a.status"), "up");
    assert_eq!(field("node.a.current_subscribers"), "2");
    assert_eq!(field("node.b.current_subscribers"), "2");
    // Every line keeps the legacy `name: value` form.
    for line in stats.lines().skip(1).filter(|l| *l != "--EOT--") {
        assert!(line.split_once(": ").is_some(), "{line}");
    }

    // A node that stops leaves the counts.
    b.stop().await;
    eventually("b's subscribers are gone from a's counts", async || {
        control.command("COUNTSUBSCRIBERS x").await == "OK 2\r\n"
    })
    .await;
}

#[tokio::test]
async fn nodes_reach_redis_over_tls_with_a_private_ca() {
    let redis = Redis::start_tls();
    let url = redis.url();
    assert!(url.starts_with("rediss://"));
    let ca = redis.ca_file();
    let options = |name| {
        [
            ("Engine", "redis"),
            ("RedisURL", url.as_str()),
            ("RedisCAFile", ca.as_str()),
            ("NodeName", name),
        ]
    };
    let a = TestServer::start(&options("a")).await;
    let b = TestServer::start(&options("b")).await;
    let mut sub = Stream::open(b.subscriber, "/push/h/xhrinteractive/secure").await;
    b.wait_subscribers("secure", 1).await;
    let id = a.publish("secure", "over tls").await;
    sub.until(b"\"over tls\");").await;
    assert_eq!(
        legacy_messages(&sub.received),
        vec![(id, "over tls".to_string())]
    );

    // Without the CA the server's certificate is not trusted: no link.
    let untrusting = TestServer::start(&[
        ("Engine", "redis"),
        ("RedisURL", url.as_str()),
        ("NodeName", "c"),
    ])
    .await;
    let mut control = untrusting.control().await;
    let refused = try_publish(&mut control, "secure", "x").await.unwrap_err();
    assert!(refused.starts_with("ERR Redis is unavailable"), "{refused}");
}

#[tokio::test]
async fn cache_limits_and_clearing_hold_on_every_node() {
    let redis = Redis::start();
    let limit = [("MaxMessagesPerChannel", "3")];
    let a = node_with(&redis, "a", &limit).await;
    let b = node_with(&redis, "b", &limit).await;

    // Five publishes in one write: one batch to Redis.
    let mut control = a.control().await;
    let mut lines = String::new();
    for i in 0..5 {
        lines.push_str(&format!("ADDMESSAGE news m{i}\r\n"));
    }
    control.send(lines.as_bytes()).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let reply = String::from_utf8(control.read_until(b"\r\n").await).unwrap();
        ids.push(
            reply
                .strip_prefix("OK\t")
                .unwrap()
                .trim_end()
                .parse::<u64>()
                .unwrap(),
        );
    }
    assert_eq!(ids, (ids[0]..ids[0] + 5).collect::<Vec<_>>());
    let last3: Vec<(u64, String)> = (2..5).map(|i| (ids[i], format!("m{i}"))).collect();
    eventually("b has the last three", async || {
        b.node.hub.messages(b"news").len() == 3
    })
    .await;
    // Redis keeps the same three: a node started now serves just those.
    let c = node_with(&redis, "c", &limit).await;
    assert_eq!(
        legacy_messages(&get(c.subscriber, "/push/h/simplepoll/news.h").await),
        last3
    );

    // Emptying a channel on one node empties it on all.
    let (_, token) = b.node.accounts.clone().unwrap().create_token("t").unwrap();
    let cleared = request(
        b.subscriber,
        "DELETE",
        "/api/channels/news/messages",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(cleared.json()["cleared"], 3);
    for n in [&a, &b, &c] {
        eventually("the cache is empty everywhere", async || {
            n.node.hub.messages(b"news").is_empty()
        })
        .await;
    }
    let d = node_with(&redis, "d", &limit).await;
    assert!(legacy_messages(&get(d.subscriber, "/push/h/simplepoll/news.h").await).is_empty());
    assert_eq!(a.publish("news", "fresh").await, ids[4] + 1);
}
