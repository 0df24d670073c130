//! The HTTP API and /metrics, through real HTTP requests.

mod common;

use common::{request, Stream, TestServer};
use serde_json::json;

/// A server and a valid API token for it.
async fn server_with_token(options: &[(&str, &str)]) -> (TestServer, String) {
    let server = TestServer::start(options).await;
    let accounts = server.node.accounts.clone().expect("a database");
    let (_, token) = accounts.create_token("tests").unwrap();
    (server, format!("Bearer {token}"))
}

#[tokio::test]
async fn every_api_route_refuses_missing_or_bad_tokens() {
    let (server, _) = server_with_token(&[]).await;
    let routes = [
        ("POST", "/api/channels/c/messages"),
        ("GET", "/api/channels"),
        ("GET", "/api/channels/c"),
        ("DELETE", "/api/channels/c/messages"),
        ("GET", "/api/stats"),
    ];
    for (method, path) in routes {
        let none = request(server.subscriber, method, path, &[], b"x").await;
        assert_eq!(none.status, 401, "{method} {path}");
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        assert!(none.json()["error"].as_str().unwrap().contains("API token"));
        for bad in ["Bearer mtd_0000", "Bearer nope", "Basic YWRtaW46YWRtaW4="] {
            let reply = request(
                server.subscriber,
                method,
                path,
                &[("Authorization", bad)],
                b"x",
            )
            .await;
            assert_eq!(reply.status, 401, "{method} {path} {bad}");
        }
    }
    // Nothing was published by the refused requests.
    assert_eq!(server.node.hub.channel_count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn publish_through_the_api_reaches_subscribers() {
    let (server, auth) = server_with_token(&[]).await;
    let mut sub = Stream::open(server.subscriber, "/push/a1/xhrinteractive/news").await;
    sub.until(b"ch(\"news\", 0)").await;
    server.wait_subscribers("news", 1).await;

    let reply = request(
        server.subscriber,
        "POST",
        "/api/channels/news/messages",
        &[("Authorization", &auth)],
        b"plain text",
    )
    .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json(), json!({"id": 0, "channel": "news"}));
    let reply = request(
        server.subscriber,
        "POST",
        "/api/channels/news/messages",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"text": "from \"json\""}"#,
    )
    .await;
    assert_eq!(reply.json()["id"], 1);
    sub.until(br#"<script>p(1,"news","from "json"");</script>"#)
        .await;
    assert!(sub
        .text()
        .contains(r#"<script>p(0,"news","plain text");</script>"#));
    // The id sequence is shared with the control port.
    assert_eq!(server.publish("news", "tcp").await, 2);
    server.stop().await;
}

#[tokio::test]
async fn api_bad_input_gets_json_errors() {
    let (server, auth) = server_with_token(&[]).await;
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    for body in [&b"not json"[..], b"[1,2]", b"{\"text\": 5}", b"{}"] {
        let reply = request(
            server.subscriber,
            "POST",
            "/api/channels/c/messages",
            &h,
            body,
        )
        .await;
        assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert!(reply.json()["error"].is_string());
    }
    let reply = request(
        server.subscriber,
        "POST",
        "/api/channels/has%20space/messages",
        &h[..1],
        b"x",
    )
    .await;
    assert_eq!(reply.status, 400);
    let huge = vec![b'x'; meteord::node::MAX_TEXT + 10];
    let reply = request(
        server.subscriber,
        "POST",
        "/api/channels/c/messages",
        &h[..1],
        &huge,
    )
    .await;
    assert_eq!(reply.status, 413);
    let reply = request(
        server.subscriber,
        "GET",
        "/api/channels/missing",
        &h[..1],
        b"",
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json(), json!({"error": "no such channel"}));
    assert_eq!(server.node.hub.channel_count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn list_inspect_clear_and_stats() {
    let (server, auth) = server_with_token(&[]).await;
    let h = [("Authorization", auth.as_str())];
    server.publish("b", "one").await;
    server.publish("a", "two").await;
    server.publish("a", "three").await;
    let list = request(server.subscriber, "GET", "/api/channels", &h, b"")
        .await
        .json();
    assert_eq!(
        list,
        json!([
            {"name": "a", "messages": 2, "subscribers": 0, "last_id": 2},
            {"name": "b", "messages": 1, "subscribers": 0, "last_id": 0}
        ])
    );
    let a = request(server.subscriber, "GET", "/api/channels/a", &h, b"")
        .await
        .json();
    assert_eq!(a["messages"].as_array().unwrap().len(), 2);
    assert_eq!(a["messages"][1]["text"], "three");
    assert_eq!(a["last_id"], 2);

    let cleared = request(
        server.subscriber,
        "DELETE",
        "/api/channels/a/messages",
        &h,
        b"",
    )
    .await;
    assert_eq!(cleared.json(), json!({"cleared": 2}));
    assert!(server.node.hub.messages(b"a").is_empty());
    assert_eq!(
        request(
            server.subscriber,
            "DELETE",
            "/api/channels/a/messages",
            &h,
            b""
        )
        .await
        .status,
        404
    );

    let mut sse = Stream::open(server.subscriber, "/sse/b").await;
    sse.until(b"retry:").await;
    server.wait_subscribers("b", 1).await;
    let stats = request(server.subscriber, "GET", "/api/stats", &h, b"")
        .await
        .json();
    assert_eq!(stats["channels"], 1);
    assert_eq!(stats["next_message_id"], 3);
    assert_eq!(stats["subscribers_by_transport"], json!({"sse": 1}));
    assert_eq!(stats["counters"]["unique_messages"], 3);
    server.stop().await;
}

#[tokio::test]
async fn metrics_follow_the_metrics_setting() {
    let server = TestServer::start(&[]).await;
    server.publish("m", "x").await;
    // Local clients may read them by default.
    let reply = request(server.subscriber, "GET", "/metrics", &[], b"").await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(reply.body).unwrap();
    assert!(
        text.contains(
            "# TYPE meteord_unique_messages_total counter\nmeteord_unique_messages_total 1\n"
        ),
        "{text}"
    );
    assert!(text.contains("meteord_channels 1\n"), "{text}");
    server.stop().await;

    let server = TestServer::start(&[("Metrics", "off")]).await;
    assert_eq!(
        request(server.subscriber, "GET", "/metrics", &[], b"")
            .await
            .status,
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = TestServer::start(&[]).await;
    let reply = request(server.subscriber, "GET", "/healthz", &[], b"").await;
    assert_eq!((reply.status, reply.body), (200, b"ok\n".to_vec()));
    server.stop().await;
}
