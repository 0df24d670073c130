//! Presence through real sockets: users with several tabs counted once,
//! joins and leaves over the WebSocket and SSE, the API's member list, a
//! killed connection leaving, private channels keeping their presence
//! private, and presence across two nodes sharing a real `redis-server`.

mod common;

use std::time::{Duration, Instant};

use common::tokens::signed;
use common::ws::{ws_connect, Ws};
use common::{request, Process, Redis, Stream, TestServer, WAIT};
use serde_json::{json, Value};

const SECRET: &str = "presence test secret";

fn token(user: &str, channels: &[&str]) -> String {
    signed(SECRET, json!({"sub": user, "channels": channels}), 600)
}

async fn server(extra: &[(&str, &str)]) -> TestServer {
    let mut options = vec![
        ("TokenSecret", SECRET),
        ("PresenceLeaveDelay", "1"),
        ("PingInterval", "1"),
    ];
    options.extend_from_slice(extra);
    TestServer::start(&options).await
}

/// A WebSocket subscribed to `channel` with presence, as `user`.
async fn watcher(addr: std::net::SocketAddr, channel: &str, user: &str) -> Ws {
    let mut ws = ws_connect(addr, &format!("?token={}", token(user, &[channel]))).await;
    ws.send(json!({"type": "subscribe", "channel": channel, "presence": true}))
        .await;
    assert_eq!(ws.next().await["type"], "subscribed");
    ws
}

fn users(members: &Value) -> Vec<String> {
    let mut users: Vec<String> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap_or("-").to_string())
        .collect();
    users.sort();
    users
}

/// The presence API's answer for a channel, with a manage token.
async fn api_presence(server: &TestServer, token: &str, channel: &str) -> common::Response {
    request(
        server.subscriber,
        "GET",
        &format!("/api/channels/{channel}/presence"),
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .await
}

fn api_token(
    server: &TestServer,
    scopes: &[meteord::store::accounts::Scope],
    channels: &str,
) -> String {
    let accounts = server.node.accounts.clone().unwrap();
    accounts
        .create_scoped_token("presence test", scopes, &[channels.to_string()])
        .unwrap()
        .1
}

/// Wait until the API lists these users in the channel.
async fn wait_members(server: &TestServer, token: &str, channel: &str, want: &[&str]) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = api_presence(server, token, channel).await.json();
        if users(&body["members"]) == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "members never became {want:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_users_in_three_tabs_join_once_each_and_leave_when_their_last_tab_closes() {
    use meteord::store::accounts::Scope;
    let server = server(&[]).await;
    let manage = api_token(&server, &[Scope::Manage], "*");
    let s = server.subscriber;

    // Alice's first tab watches presence over the WebSocket.
    let mut alice1 = watcher(s, "room", "alice").await;
    let first = alice1.next_of("presence").await;
    assert_eq!(users(&first["members"]), ["alice"]);
    assert_eq!(first["members"][0]["id"], "user:alice");

    // Bob joins: one join. Alice's second tab (SSE) is no join at all.
    let mut bob = watcher(s, "room", "bob").await;
    let joined = alice1.next_of("join").await;
    assert_eq!(joined["member"]["user"], "bob");
    assert_eq!(joined["channel"], "room");
    assert_eq!(
        users(&bob.next_of("presence").await["members"]),
        ["alice", "bob"]
    );
    let alice_token = token("alice", &["room"]);
    let mut alice2 = Stream::open(s, &format!("/sse/room?presence=1&token={alice_token}")).await;
    alice2.until(b"event: presence").await;
    alice2.until(b"\"bob\"").await;

    let listed = wait_members(&server, &manage, "room", &["alice", "bob"]).await;
    assert_eq!(listed["count"], 2);
    assert_eq!(listed["connections"], 3);
    let alice = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == "alice")
        .unwrap();
    let mut transports: Vec<&str> = alice["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["transport"].as_str().unwrap())
        .collect();
    transports.sort();
    assert_eq!(transports, ["sse", "websocket"]);
    assert!(alice["connections"][0]["node"].as_str().is_some());

    // Alice closes one tab: still present, no leave.
    drop(alice2);
    // Bob leaves: after the leave delay, one leave, seen by the SSE tab too.
    let closed = Instant::now();
    bob.0.close(None).await.unwrap();
    let left = alice1.next_of("leave").await;
    assert_eq!(left["member"]["user"], "bob");
    assert!(
        closed.elapsed() >= Duration::from_millis(900),
        "a leave waits for PresenceLeaveDelay"
    );
    wait_members(&server, &manage, "room", &["alice"]).await;
    // Nothing about Alice came: her second tab's close was not a leave.
    let mut alice3 = watcher(s, "room", "alice").await;
    assert_eq!(
        users(&alice3.next_of("presence").await["members"]),
        ["alice"]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_killed_connection_leaves_and_a_reload_within_the_delay_does_not() {
    use meteord::store::accounts::Scope;
    let server = server(&[]).await;
    let manage = api_token(&server, &[Scope::Manage], "*");
    let s = server.subscriber;
    let mut watching = watcher(s, "lobby", "watcher").await;
    watching.next_of("presence").await;

    // An anonymous page: its member id says nothing of its host id.
    let mut page = Stream::open(s, "/sse/lobby?hostid=secrethost1").await;
    page.until(b"retry").await;
    let joined = watching.next_of("join").await;
    assert_eq!(joined["member"]["user"], Value::Null);
    let id = joined["member"]["id"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("anon:") && !id.contains("secrethost1"),
        "{id}"
    );

    // A reload (same host id) within the delay: no leave, no join.
    drop(page);
    let mut page = Stream::open(s, "/sse/lobby?hostid=secrethost1").await;
    page.until(b"retry").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The killed connection: the socket is reset, no goodbye.
    let socket = page.stream;
    socket.set_zero_linger().unwrap();
    drop(socket);
    let left = watching.next_of("leave").await;
    assert_eq!(
        left["member"]["id"],
        id.as_str(),
        "the same member left, once"
    );
    wait_members(&server, &manage, "lobby", &["watcher"]).await;
    server.stop().await;
}

#[tokio::test]
async fn the_presence_of_a_private_channel_is_private() {
    use meteord::store::accounts::Scope;
    let server = server(&[("PrivateChannels", "secret*")]).await;
    let s = server.subscriber;
    let mut member = watcher(s, "secret-room", "carol").await;
    member.next_of("presence").await;

    // No token: the subscription (and its presence) is refused.
    let mut stranger = ws_connect(s, "").await;
    stranger
        .send(json!({"type": "subscribe", "channel": "secret-room", "presence": true}))
        .await;
    let refused = stranger.next().await;
    assert_eq!(
        (refused["type"].as_str(), refused["status"].as_u64()),
        (Some("error"), Some(401))
    );
    let sse = request(s, "GET", "/sse/secret-room?presence=1", &[], b"").await;
    assert_eq!(sse.status, 401);
    assert!(!sse.body_text().contains("carol"));

    // The API: no token 401; a token for other channels 403; the right
    // subscribe scope (or manage) sees the members.
    let none = request(s, "GET", "/api/channels/secret-room/presence", &[], b"").await;
    assert_eq!(none.status, 401);
    let other = api_token(&server, &[Scope::Subscribe], "lobby");
    let refused = api_presence(&server, &other, "secret-room").await;
    assert_eq!(refused.status, 403);
    assert!(!refused.body_text().contains("carol"));
    let reader = api_token(&server, &[Scope::Subscribe], "secret*");
    wait_members(&server, &reader, "secret-room", &["carol"]).await;
    server.stop().await;
}

#[tokio::test]
async fn presence_covers_every_node_and_a_dead_node_drops_its_members() {
    use meteord::store::accounts::Scope;
    let redis = Redis::start();
    let url = redis.url();
    let cluster = [
        ("Engine", "redis"),
        ("RedisURL", url.as_str()),
        ("PingInterval", "1"),
        ("TokenSecret", SECRET),
        ("PresenceLeaveDelay", "1"),
    ];
    let mut b_options = cluster.to_vec();
    b_options.push(("NodeName", "b"));
    let b = TestServer::start(&b_options).await;
    let manage = api_token(&b, &[Scope::Manage], "*");

    // Node a is the real binary, so that it can die for real.
    let mut args: Vec<&str> = cluster.iter().flat_map(|(k, v)| [*k, *v]).collect();
    let keys: Vec<String> = args.iter().step_by(2).map(|k| format!("-{k}")).collect();
    for (i, key) in keys.iter().enumerate() {
        args[2 * i] = key;
    }
    args.extend(["-NodeName", "a"]);
    let a = Process::start(&args);

    let mut dan = watcher(b.subscriber, "hall", "dan").await;
    assert_eq!(users(&dan.next_of("presence").await["members"]), ["dan"]);
    // Erin on node a: node b's watcher sees her join, and its API lists both.
    let mut erin = watcher(a.subscriber, "hall", "erin").await;
    let joined = dan.next_of("join").await;
    assert_eq!(joined["member"]["user"], "erin");
    let listed = wait_members(&b, &manage, "hall", &["dan", "erin"]).await;
    let nodes: Vec<&str> = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["connections"][0]["node"].as_str().unwrap())
        .collect();
    assert!(nodes.contains(&"a") && nodes.contains(&"b"), "{listed}");
    // Erin sees Dan, who is on the other node: in her first list, or as a
    // join as soon as node a has read node b's members.
    let seen = erin.next_of("presence").await;
    if !users(&seen["members"]).contains(&"dan".to_string()) {
        assert_eq!(erin.next_of("join").await["member"]["user"], "dan");
    }

    // Node a dies without a word: within a few seconds Erin leaves.
    let died = Instant::now();
    drop(a);
    let left = dan.next_of("leave").await;
    assert_eq!(left["member"]["user"], "erin");
    assert!(died.elapsed() < Duration::from_secs(10));
    wait_members(&b, &manage, "hall", &["dan"]).await;
    b.stop().await;
}
