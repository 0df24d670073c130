//! Webhooks against a real local HTTP receiver: signed deliveries of the
//! chosen events, in order per channel, retried while the application is
//! down or refusing, kept across a restart, and sent once by a cluster.

mod common;

use std::time::Duration;

use common::receiver::{signed_with, Receiver};
use common::tokens::signed;
use common::ws::ws_connect;
use common::{Control, Process, Redis, TestServer};
use serde_json::{json, Value};

const HOOK_SECRET: &str = "webhook signing secret";
const TOKEN_SECRET: &str = "webhook test token secret";

fn events_of<'a>(events: &'a [Value], channel: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["channel"] == channel).collect()
}

fn names(events: &[&Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "message_published" => format!("published {}", e["message"]["text"].as_str().unwrap()),
            "member_joined" | "member_left" => format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["member"]["user"].as_str().unwrap_or("anonymous")
            ),
            other => other.to_string(),
        })
        .collect()
}

async fn server(receiver: &Receiver, extra: &[(&str, &str)]) -> TestServer {
    let url = receiver.url();
    let mut options = vec![
        ("WebhookURL", url.as_str()),
        ("WebhookSecret", HOOK_SECRET),
        ("TokenSecret", TOKEN_SECRET),
        ("PresenceLeaveDelay", "0"),
        (
            "WebhookEvents",
            "channel_occupied channel_vacated member_joined member_left message_published",
        ),
    ];
    options.extend_from_slice(extra);
    TestServer::start(&options).await
}

#[tokio::test]
async fn signed_deliveries_of_every_chosen_event_in_channel_order() {
    let receiver = Receiver::start().await;
    let server = server(&receiver, &[]).await;
    let token = signed(
        TOKEN_SECRET,
        json!({"sub": "alice", "channels": ["room"]}),
        600,
    );
    let mut ws = ws_connect(server.subscriber, &format!("?token={token}")).await;
    ws.send(json!({"type": "subscribe", "channel": "room"}))
        .await;
    assert_eq!(ws.next().await["type"], "subscribed");
    receiver
        .wait_until("alice's join", |e| {
            names(&events_of(e, "room")).contains(&"member_joined alice".to_string())
        })
        .await;
    let mut control = server.control().await;
    for n in 1..=5 {
        assert!(control
            .command(&format!("ADDMESSAGE room m{n}"))
            .await
            .starts_with("OK"));
    }
    ws.0.close(None).await.unwrap();
    let events = receiver
        .wait_until("the vacated room", |e| {
            events_of(e, "room")
                .last()
                .is_some_and(|e| e["event"] == "channel_vacated")
        })
        .await;
    assert_eq!(
        names(&events_of(&events, "room")),
        [
            "channel_occupied",
            "member_joined alice",
            "published m1",
            "published m2",
            "published m3",
            "published m4",
            "published m5",
            "member_left alice",
            "channel_vacated"
        ]
    );
    // Every delivery: an id, a time, the event; signed with the secret,
    // and not with any other.
    for delivery in receiver.deliveries() {
        assert!(signed_with(HOOK_SECRET, &delivery), "{:?}", delivery.json);
        assert!(!signed_with("another secret", &delivery));
        let id = delivery.json["id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(delivery.delivery_id.as_deref(), Some(id));
        assert!(delivery.json["time"].as_u64().unwrap() > 1_700_000_000_000);
    }
    let published = events_of(&events, "room")
        .into_iter()
        .find(|e| e["event"] == "message_published")
        .unwrap();
    assert!(published["message"]["id"].as_u64().is_some());
    server.stop().await;
}

#[tokio::test]
async fn only_the_chosen_events_are_sent() {
    let receiver = Receiver::start().await;
    let server = server(&receiver, &[("WebhookEvents", "channel_occupied")]).await;
    let mut sse = common::Stream::open(server.subscriber, "/sse/quiet").await;
    sse.until(b"retry").await;
    server.publish("quiet", "not sent").await;
    drop(sse);
    receiver
        .wait_until("the occupied event", |e| !e.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events: Vec<String> = receiver
        .accepted_events()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["channel_occupied"], "{events:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_receiver_down_then_refusing_gets_everything_in_order_once_it_is_back() {
    let mut receiver = Receiver::start().await;
    let addr = receiver.addr;
    let server = server(&receiver, &[("WebhookEvents", "message_published")]).await;
    receiver.take_down();
    let mut control = server.control().await;
    for n in 1..=4 {
        control.command(&format!("ADDMESSAGE alpha a{n}")).await;
        control.command(&format!("ADDMESSAGE beta b{n}")).await;
    }
    // Down for a while: several tries find nobody.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let receiver = Receiver::start_on(addr).await;
    // Back, but refusing the first tries with 503.
    receiver.refuse_next(3);
    let events = receiver
        .wait_until("all eight messages", |e| e.len() >= 8)
        .await;
    for channel in ["alpha", "beta"] {
        let prefix = &channel[..1];
        let expected: Vec<String> = (1..=4).map(|n| format!("published {prefix}{n}")).collect();
        assert_eq!(names(&events_of(&events, channel)), expected, "{channel}");
    }
    assert_eq!(events.len(), 8, "nothing lost, nothing extra");
    // Refused ones were tried again: the receiver saw more than it kept.
    assert!(receiver.deliveries().iter().any(|d| !d.accepted));
    let queue = server.node.webhooks.queue.clone().unwrap();
    let counts = queue.counts().unwrap();
    assert_eq!((counts.pending, counts.dead, counts.delivered), (0, 0, 8));
    server.stop().await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    let receiver = Receiver::start().await;
    let url = receiver.url();
    let addr = receiver.addr;
    drop(receiver);
    let data = tempfile::tempdir().unwrap();
    let args = [
        "-DataDirectory",
        data.path().to_str().unwrap(),
        "-WebhookURL",
        url.as_str(),
        "-WebhookSecret",
        HOOK_SECRET,
        "-WebhookEvents",
        "message_published",
    ];
    let server = Process::start(&args);
    let mut control = Control::connect(server.control).await;
    for n in 1..=3 {
        control.command(&format!("ADDMESSAGE kept k{n}")).await;
    }
    // The first tries fail (nobody listens); then a clean stop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.signal(libc::SIGTERM);
    let mut server = server;
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));

    let receiver = Receiver::start_on(addr).await;
    let _again = Process::start(&args);
    let events = receiver
        .wait_until("the three kept messages", |e| e.len() >= 3)
        .await;
    assert_eq!(
        names(&events_of(&events, "kept")),
        ["published k1", "published k2", "published k3"]
    );
    assert!(receiver
        .deliveries()
        .iter()
        .all(|d| signed_with(HOOK_SECRET, d)));
}

#[tokio::test]
async fn with_two_nodes_each_event_is_sent_once() {
    let redis = Redis::start();
    let receiver = Receiver::start().await;
    let url = redis.url();
    let node = |name: &'static str| {
        let url = url.clone();
        let hook = receiver.url();
        async move { server_on(&hook, &url, name).await }
    };
    let a = node("a").await;
    let b = node("b").await;
    // Both nodes see each other before anyone subscribes.
    for n in [&a, &b] {
        let deadline = std::time::Instant::now() + common::WAIT;
        while n.node.cluster().unwrap().view().up_count() < 2 {
            assert!(std::time::Instant::now() < deadline, "nodes never met");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let alice = signed(
        TOKEN_SECRET,
        json!({"sub": "alice", "channels": ["hall"]}),
        600,
    );
    let bob = signed(
        TOKEN_SECRET,
        json!({"sub": "bob", "channels": ["hall"]}),
        600,
    );
    let mut on_a = ws_connect(a.subscriber, &format!("?token={alice}")).await;
    on_a.send(json!({"type": "subscribe", "channel": "hall"}))
        .await;
    on_a.next().await;
    let mut on_b = ws_connect(b.subscriber, &format!("?token={bob}")).await;
    on_b.send(json!({"type": "subscribe", "channel": "hall"}))
        .await;
    on_b.next().await;
    receiver
        .wait_until("both joins", |e| {
            names(&events_of(e, "hall"))
                .iter()
                .filter(|n| n.starts_with("member_joined"))
                .count()
                >= 2
        })
        .await;
    a.publish("hall", "from-a").await;
    b.publish("hall", "from-b").await;
    receiver
        .wait_until("both messages", |e| {
            names(&events_of(e, "hall"))
                .iter()
                .filter(|n| n.starts_with("published"))
                .count()
                >= 2
        })
        .await;
    // Give a second sender time to show itself, if there were one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got = names(&events_of(&receiver.accepted_events(), "hall"));
    got.sort();
    assert_eq!(
        got,
        [
            "channel_occupied",
            "member_joined alice",
            "member_joined bob",
            "published from-a",
            "published from-b"
        ]
    );
    a.stop().await;
    b.stop().await;
}

async fn server_on(hook: &str, redis_url: &str, name: &str) -> TestServer {
    TestServer::start(&[
        ("Engine", "redis"),
        ("RedisURL", redis_url),
        ("NodeName", name),
        ("WebhookURL", hook),
        ("WebhookSecret", HOOK_SECRET),
        ("TokenSecret", TOKEN_SECRET),
        ("PresenceLeaveDelay", "0"),
        (
            "WebhookEvents",
            "channel_occupied channel_vacated member_joined member_left message_published",
        ),
    ])
    .await
}
