//! Publishing from the browser over the WebSocket: allowed by the token's
//! `publish` claim (or an API token's `publish` scope), rate-limited per
//! connection, size-limited like every publisher, and always answered.

mod common;

use std::time::Duration;

use common::tokens::signed;
use common::ws::ws_connect;
use common::{Stream, TestServer};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Frame;

const SECRET: &str = "client publish secret";

fn token(claims: serde_json::Value) -> String {
    signed(SECRET, claims, 600)
}

#[tokio::test]
async fn a_publish_claim_lets_a_browser_publish_through_the_same_door() {
    let server = TestServer::start(&[("TokenSecret", SECRET)]).await;
    let s = server.subscriber;
    let mut reader = Stream::open(s, "/sse/chat").await;
    reader.until(b"retry").await;

    let writer = token(json!({"sub": "ann", "channels": ["chat"], "publish": ["chat*"]}));
    let mut ws = ws_connect(s, &format!("?token={writer}")).await;
    ws.send(json!({"type": "publish", "channel": "chat", "text": "hello \"world\"", "ref": 7}))
        .await;
    let answer = ws.next().await;
    assert_eq!(answer["type"], "published", "{answer}");
    assert_eq!(answer["ref"], 7);
    let id = answer["id"].as_u64().unwrap();
    reader.until(b"hello \\\"world\\\"").await;
    // Cached with its id like any message, and counted.
    let cached = server.node.hub.messages(b"chat");
    assert_eq!(
        (cached[0].id, &cached[0].text[..]),
        (id, &b"hello \"world\""[..])
    );

    // Not covered by the claim: 403, the connection stays.
    ws.send(json!({"type": "publish", "channel": "news", "text": "x", "ref": "r2"}))
        .await;
    let refused = ws.next().await;
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["status"].as_u64(),
            refused["ref"].as_str()
        ),
        (Some("error"), Some(403), Some("r2"))
    );
    // A token that grants subscribing only: 403. No token at all: 401.
    let reader_only = token(json!({"sub": "bo", "channels": ["chat"]}));
    ws.send(json!({"type": "publish", "channel": "chat", "text": "x", "token": reader_only}))
        .await;
    assert_eq!(ws.next().await["status"], 403);
    let mut anonymous = ws_connect(s, "").await;
    anonymous
        .send(json!({"type": "publish", "channel": "chat", "text": "x"}))
        .await;
    assert_eq!(anonymous.next().await["status"], 401);
    // An expired token: 401, saying so.
    let past = meteord::hub::unix_now() - 60;
    let expired = common::tokens::node_mint(&json!({
        "claims": {"channels": ["chat"], "publish": ["chat"], "exp": past, "iat": past - 60},
        "secret": SECRET,
    }));
    anonymous
        .send(json!({"type": "publish", "channel": "chat", "text": "x", "token": expired}))
        .await;
    let late = anonymous.next().await;
    assert_eq!(late["status"], 401);
    assert!(
        late["error"].as_str().unwrap().contains("expired"),
        "{late}"
    );
    // Nothing refused reached the channel.
    assert_eq!(server.node.hub.messages(b"chat").len(), 1);
    assert!(server.node.hub.messages(b"news").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_api_token_with_the_publish_scope_may_publish_too() {
    use meteord::store::accounts::Scope;
    let server = TestServer::start(&[]).await;
    let accounts = server.node.accounts.clone().unwrap();
    let (_, api) = accounts
        .create_scoped_token("kiosk", &[Scope::Publish], &["board".to_string()])
        .unwrap();
    let mut ws = ws_connect(server.subscriber, &format!("?token={api}")).await;
    ws.send(json!({"type": "publish", "channel": "board", "text": "up"}))
        .await;
    assert_eq!(ws.next().await["type"], "published");
    ws.send(json!({"type": "publish", "channel": "other", "text": "no"}))
        .await;
    assert_eq!(ws.next().await["status"], 403);
    server.stop().await;
}

#[tokio::test]
async fn over_the_rate_or_the_size_the_answer_says_so_and_the_connection_stays() {
    let server = TestServer::start(&[("TokenSecret", SECRET), ("ClientPublishRate", "2 3")]).await;
    let writer = token(json!({"channels": ["fast"], "publish": ["fast"]}));
    let mut ws = ws_connect(server.subscriber, &format!("?token={writer}")).await;
    for n in 0..6 {
        ws.send(json!({"type": "publish", "channel": "fast", "text": format!("m{n}"), "ref": n}))
            .await;
    }
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let answer = ws.next().await;
        statuses.push(answer["status"].as_u64().unwrap_or(200));
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429, 429],
        "a burst of 3, then too fast"
    );
    // A second later the bucket has refilled a little.
    tokio::time::sleep(Duration::from_millis(600)).await;
    ws.send(json!({"type": "publish", "channel": "fast", "text": "later"}))
        .await;
    assert_eq!(ws.next().await["type"], "published");

    // Larger than any publisher may send: 413, and the connection lives.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let big = "x".repeat(meteord::node::MAX_TEXT + 1);
    ws.send(json!({"type": "publish", "channel": "fast", "text": big}))
        .await;
    let too_long = ws.next().await;
    assert_eq!(too_long["status"], 413, "{}", too_long["error"]);
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");

    // A frame past the WebSocket's own limit: closed, with the reason.
    let huge = "y".repeat(3 * meteord::node::MAX_TEXT);
    ws.send(json!({"type": "publish", "channel": "fast", "text": huge}))
        .await;
    let close = loop {
        match tokio::time::timeout(common::WAIT, ws.0.next())
            .await
            .unwrap()
        {
            Some(Ok(Frame::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1009, "{}", close.reason);
    server.stop().await;
}

#[tokio::test]
async fn browsers_may_not_publish_when_the_rate_is_zero() {
    let server = TestServer::start(&[("TokenSecret", SECRET), ("ClientPublishRate", "0")]).await;
    let writer = token(json!({"channels": ["c"], "publish": ["c"]}));
    let mut ws = ws_connect(server.subscriber, &format!("?token={writer}")).await;
    ws.send(json!({"type": "publish", "channel": "c", "text": "x"}))
        .await;
    let answer = ws.next().await;
    assert_eq!(answer["status"], 403, "{answer}");
    server.stop().await;
}
