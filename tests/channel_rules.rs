//! Per-channel rules and settings made at run time, enforced on the wire.

mod common;

use common::{get, request, Stream, TestServer};
use meteord::config::Source;
use meteord::hub::ChannelRule;
use std::time::Duration;

fn rule(pattern: &str) -> ChannelRule {
    ChannelRule::new(pattern)
}

#[tokio::test]
async fn size_and_age_limits_per_channel() {
    let server = TestServer::start(&[]).await;
    for i in 0..5 {
        server.publish("chat.a", &format!("m{i}")).await;
    }
    server
        .node
        .set_channel_rule(ChannelRule {
            max_messages: Some(2),
            ..rule("chat.*")
        })
        .unwrap();
    // Applied at once to the existing cache, and to new messages.
    assert_eq!(server.node.hub.messages(b"chat.a").len(), 2);
    server.publish("chat.a", "m5").await;
    let ids: Vec<u64> = server
        .node
        .hub
        .messages(b"chat.a")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [4, 5]);
    for i in 0..5 {
        server.publish("other", &format!("o{i}")).await;
    }
    assert_eq!(server.node.hub.messages(b"other").len(), 5);

    server
        .node
        .set_channel_rule(ChannelRule {
            max_age: Some(1),
            ..rule("short")
        })
        .unwrap();
    server.publish("short", "gone soon").await;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(server.node.hub.messages(b"short").is_empty());
    assert_eq!(server.node.hub.messages(b"other").len(), 5);
    // Rules can be removed.
    assert!(server.node.delete_channel_rule("chat.*").unwrap());
    assert!(server
        .node
        .channel_rules()
        .iter()
        .all(|r| r.pattern != "chat.*"));
    server.stop().await;
}

#[tokio::test]
async fn allowed_transports() {
    let server = TestServer::start(&[]).await;
    server
        .node
        .set_channel_rule(ChannelRule {
            transports: Some(vec![meteord::hub::Transport::Sse]),
            ..rule("sseonly")
        })
        .unwrap();
    let reply = request(
        server.subscriber,
        "GET",
        "/poll/sseonly?timeout=0",
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.json()["error"],
        "channel 'sseonly' cannot be subscribed to over poll"
    );
    let body = String::from_utf8(get(server.subscriber, "/push/h/longpoll/sseonly").await).unwrap();
    assert!(body.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{body}");
    assert!(body.ends_with("<script>eof();</script>\r\n"), "{body}");
    let mut sse = Stream::open(server.subscriber, "/sse/sseonly").await;
    sse.until(b"retry: 3000").await;
    assert!(sse.text().starts_with("HTTP/1.1 200 OK"));
    server.stop().await;
}

#[tokio::test]
async fn channels_that_refuse_anonymous_subscribers_need_a_token() {
    let server = TestServer::start(&[]).await;
    let accounts = server.node.accounts.clone().unwrap();
    let (_, token) = accounts.create_token("subscriber").unwrap();
    server
        .node
        .set_channel_rule(ChannelRule {
            anonymous: false,
            ..rule("private")
        })
        .unwrap();
    server.publish("private", "secret").await;

    let reply = request(
        server.subscriber,
        "GET",
        "/poll/private.h?timeout=0",
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 401);
    let reply = request(
        server.subscriber,
        "GET",
        "/poll/private.h?timeout=0&token=mtd_bad",
        &[],
        b"",
    )
    .await;
    assert_eq!(reply.status, 401);
    let reply = request(
        server.subscriber,
        "GET",
        "/poll/private.h?timeout=0",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(String::from_utf8_lossy(&reply.body).contains("\"secret\""));

    let refused =
        String::from_utf8(get(server.subscriber, "/push/h/simplepoll/private.h").await).unwrap();
    assert!(
        refused.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{refused}"
    );
    let allowed = String::from_utf8(
        get(
            server.subscriber,
            &format!("/push/h/simplepoll/private.h?token={token}"),
        )
        .await,
    )
    .unwrap();
    assert!(
        allowed.contains("<script>p(0,\"private\",\"secret\");</script>"),
        "{allowed}"
    );
    // A public channel in the same request is no way around it.
    let refused =
        String::from_utf8(get(server.subscriber, "/push/h/simplepoll/public.h/private.h").await)
            .unwrap();
    assert!(
        refused.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{refused}"
    );
    server.stop().await;
}

#[tokio::test]
async fn persistence_can_be_switched_off_per_channel() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let options = [("Persistence", "snapshot"), ("DataDirectory", dir.as_str())];
    let server = TestServer::start(&options).await;
    server
        .node
        .set_channel_rule(ChannelRule {
            persist: Some(false),
            ..rule("volatile.*")
        })
        .unwrap();
    server.publish("volatile.x", "forget me").await;
    server.publish("kept", "keep me").await;
    server.stop().await;

    let server = TestServer::start(&options).await;
    assert!(server.node.hub.messages(b"volatile.x").is_empty());
    assert_eq!(
        server.node.hub.messages(b"kept")[0].text.as_ref(),
        b"keep me"
    );
    // The rule itself survived the restart.
    assert_eq!(server.node.channel_rules()[0].persist, Some(false));
    server.stop().await;
}

#[tokio::test]
async fn global_settings_from_the_admin_ui_apply_live_and_survive_restarts() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let options = [("DataDirectory", dir.as_str())];
    let server = TestServer::start(&options).await;
    server
        .node
        .set_global_setting("MaxMessagesPerChannel", "3")
        .unwrap();
    for i in 0..5 {
        server.publish("g", &format!("m{i}")).await;
    }
    assert_eq!(server.node.hub.messages(b"g").len(), 3);
    let source = |server: &TestServer| {
        let config = server.node.config.load();
        config
            .settings
            .iter()
            .find(|s| s.key == "MaxMessagesPerChannel" && s.mode.is_none())
            .map(|s| (s.raw.clone(), s.source.clone()))
            .unwrap()
    };
    assert_eq!(source(&server), ("3".to_string(), Source::Ui));
    // Bad values are refused and change nothing.
    assert!(server
        .node
        .set_global_setting("MaxMessagesPerChannel", "lots")
        .is_err());
    assert!(server.node.set_global_setting("NoSuchKey", "1").is_err());
    assert!(server
        .node
        .set_global_setting("ConfigFileLocation", "/x")
        .is_err());
    assert_eq!(server.node.config.load().max_messages_per_channel, 3);
    server.stop().await;

    let server = TestServer::start(&options).await;
    assert_eq!(source(&server), ("3".to_string(), Source::Ui));
    server
        .node
        .clear_global_setting("MaxMessagesPerChannel")
        .unwrap();
    assert_eq!(source(&server), ("250".to_string(), Source::Default));
    server.stop().await;
}

#[tokio::test]
async fn websocket_subscriptions_follow_the_rules() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = TestServer::start(&[]).await;
    let (_, token) = server
        .node
        .accounts
        .clone()
        .unwrap()
        .create_token("ws")
        .unwrap();
    server
        .node
        .set_channel_rule(ChannelRule {
            anonymous: false,
            ..rule("vip")
        })
        .unwrap();
    let url = format!("ws://{}/ws", server.subscriber);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::Text(
        r#"{"type":"subscribe","channel":"vip"}"#.into(),
    ))
    .await
    .unwrap();
    let reply = loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            break serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap();
        }
    };
    assert_eq!(reply["error"], "channel 'vip' is private: it needs a token");
    assert_eq!(reply["status"], 401);
    ws.send(Message::Text(
        format!(r#"{{"type":"subscribe","channel":"vip","token":"{token}"}}"#).into(),
    ))
    .await
    .unwrap();
    let reply = loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            break serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap();
        }
    };
    assert_eq!(reply["type"], "subscribed");
    server.stop().await;
}
