//! The modern transports (Server-Sent Events, WebSocket, long-poll) over
//! real sockets, sharing one hub with the legacy modes.

mod common;

use std::time::Duration;

use common::{get, http_raw, Stream, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The JSON payloads of the `data:` lines received so far.
fn sse_events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| d.starts_with('{'))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

async fn ws_connect(server: &TestServer, query: &str) -> Ws {
    let url = format!("ws://{}/ws{query}", server.subscriber);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn ws_send(ws: &mut Ws, value: Value) {
    ws.send(WsMessage::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame that is not a keep-alive ping.
async fn ws_next(ws: &mut Ws) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await.expect("closed").unwrap() {
                WsMessage::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] != "ping" {
                        return v;
                    }
                }
                WsMessage::Close(_) => panic!("closed"),
                _ => {}
            }
        }
    })
    .await
    .expect("no frame")
}

#[tokio::test]
async fn one_publish_reaches_legacy_sse_and_websocket_with_the_same_id() {
    let server = TestServer::start(&[("PingInterval", "0")]).await;
    server.publish("mix", "before").await;

    let mut legacy = Stream::open(server.subscriber, "/push/l1/xhrinteractive/mix").await;
    let mut sse = Stream::open(server.subscriber, "/sse/mix.h").await;
    let mut ws = ws_connect(&server, "").await;
    ws_send(
        &mut ws,
        json!({"type": "subscribe", "channel": "mix", "history": true}),
    )
    .await;
    assert_eq!(
        ws_next(&mut ws).await,
        json!({"type": "subscribed", "channel": "mix", "last_id": 0})
    );
    let backlog = ws_next(&mut ws).await;
    assert_eq!(
        (backlog["id"].clone(), backlog["text"].clone()),
        (json!(0), json!("before"))
    );
    sse.until(b"\"before\"").await;
    legacy.until(b"ch(\"mix\", 0)").await;
    server.wait_subscribers("mix", 3).await;
    let mut c = server.control().await;
    assert_eq!(c.command("COUNTSUBSCRIBERS mix").await, "OK 3\r\n");

    let awkward = r#"quote " backslash \ </script> é"#;
    let id = server.publish("mix", awkward).await;
    legacy
        .until(format!("<script>p({id},\"mix\",\"{awkward}\");</script>").as_bytes())
        .await;
    sse.until(format!("id: {id}\ndata: ").as_bytes()).await;
    let live = ws_next(&mut ws).await;
    assert_eq!(live["type"], "message");
    assert_eq!(live["id"], id);
    assert_eq!(live["channel"], "mix");
    assert_eq!(live["text"], awkward);
    let events = sse_events(&sse.text());
    assert_eq!(events.last().unwrap()["text"], awkward);
    assert_eq!(events.last().unwrap()["id"], id);
    assert!(sse.text().contains(&format!("id: {id}\ndata: ")));
    server.stop().await;
}

#[tokio::test]
async fn sse_headers_backlog_and_last_event_id_resume() {
    let server = TestServer::start(&[("PingInterval", "0")]).await;
    for i in 0..5 {
        server
            .publish(if i % 2 == 0 { "a" } else { "b" }, &format!("m{i}"))
            .await;
    }
    let mut sse = Stream::open(server.subscriber, "/sse/a.b1/b.h").await;
    sse.until(b"\"m3\"").await;
    let body = sse.text();
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(body.contains("content-type: text/event-stream\r\n"));
    assert!(body.contains("access-control-allow-origin: *\r\n"));
    let ids: Vec<u64> = sse_events(&body)
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    // a's last one and all of b, merged in id order.
    assert_eq!(ids, [1, 3, 4]);

    // A reconnecting EventSource says where it was; both channels resume,
    // merged in id order so the last id seen is always a safe place to
    // resume from.
    let mut resumed = tokio::net::TcpStream::connect(server.subscriber)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut resumed,
        b"GET /sse/a/b HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 2\r\n\r\n",
    )
    .await
    .unwrap();
    let mut resumed = Stream {
        stream: resumed,
        received: Vec::new(),
    };
    resumed.until(b"\"m4\"").await;
    let ids: Vec<u64> = sse_events(&resumed.text())
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3, 4]);
    // The same with the query parameter.
    let mut query = Stream::open(server.subscriber, "/sse/a/b?lastEventId=3").await;
    query.until(b"\"m4\"").await;
    let ids: Vec<u64> = sse_events(&query.text())
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [4]);
    server.stop().await;
}

#[tokio::test]
async fn sse_pings_kicks_and_shutdown() {
    let server = TestServer::start(&[("PingInterval", "1")]).await;
    let mut first = Stream::open(server.subscriber, "/sse/k?hostid=h1").await;
    first.until(b": ping\n\n").await;
    // A newer stream with the same host id replaces it, across transports.
    let mut second = Stream::open(server.subscriber, "/push/h1/xhrinteractive/k").await;
    second.until(b"ch(\"k\", 0)").await;
    // The event stream ends (the last chunk) after a close event that says
    // why, so that a client knows not to fight over the host id.
    let body = text(
        first
            .until(b"event: close\ndata: replaced\n\n\r\n0\r\n\r\n")
            .await,
    );
    assert!(body.contains(": ping\n\n"), "{body}");
    let mut third = Stream::open(server.subscriber, "/sse/k").await;
    third.until(b"retry: 3000").await;
    server.wait_subscribers("k", 2).await;
    server.begin_shutdown();
    // Shutdown ends the stream and closes the connection.
    let body = text(third.read_to_close().await);
    assert!(
        body.ends_with("event: close\ndata: shutdown\n\n\r\n0\r\n\r\n"),
        "{body}"
    );
}

#[tokio::test]
async fn sse_and_poll_refuse_bad_requests_with_json_errors() {
    let server = TestServer::start(&[]).await;
    for path in [
        "/sse/bad.x1",
        "/sse/a?hostid=no-dash",
        "/poll/.r1",
        "/sse/a?lastEventId=x",
    ] {
        let body = text(&get(server.subscriber, path).await);
        assert!(
            body.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{path}: {body}"
        );
    }
    let body = text(&get(server.subscriber, "/sse/bad.x1").await);
    assert!(
        body.ends_with("{\"error\":\"no valid channel in the request path\"}"),
        "{body}"
    );
    let body = text(&get(server.subscriber, "/nowhere").await);
    assert!(body.starts_with("HTTP/1.1 404"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn cors_follows_allow_origin() {
    let server = TestServer::start(&[(
        "AllowOrigin",
        "https://app.example.com http://localhost:3000",
    )])
    .await;
    let preflight = text(
        &http_raw(
            server.subscriber,
            b"OPTIONS /sse/a HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: last-event-id\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert!(
        preflight.contains("access-control-allow-origin: https://app.example.com\r\n"),
        "{preflight}"
    );
    assert!(
        preflight.contains("access-control-allow-headers: last-event-id\r\n"),
        "{preflight}"
    );
    let other = text(
        &http_raw(
            server.subscriber,
            b"GET /poll/a?timeout=1 HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert!(!other.contains("access-control-allow-origin"), "{other}");
    server.stop().await;
}

#[tokio::test]
async fn poll_returns_backlog_or_waits_for_one_message_or_times_out() {
    let server = TestServer::start(&[]).await;
    server.publish("p", "zero").await;
    server.publish("p", "one").await;
    let lines = |body: &str| -> Vec<Value> {
        let body = body.split_once("\r\n\r\n").unwrap().1;
        // Chunked encoding: keep only the JSON lines.
        body.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let body = text(&get(server.subscriber, "/poll/p?after=0").await);
    assert!(
        body.contains("content-type: application/x-ndjson\r\n"),
        "{body}"
    );
    let got = lines(&body);
    assert_eq!(
        got,
        [json!({"id": 1, "channel": "p", "text": "one", "ts": got[0]["ts"]})]
    );

    // Nothing newer: waits for the next message.
    let waiting = tokio::spawn({
        let addr = server.subscriber;
        async move { get(addr, "/poll/p?after=1").await }
    });
    server.wait_subscribers("p", 1).await;
    server.publish("p", "two").await;
    let got = lines(&text(&waiting.await.unwrap()));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["text"], "two");

    let started = std::time::Instant::now();
    let body = text(&get(server.subscriber, "/poll/p?after=2&timeout=1").await);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(lines(&body).is_empty(), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn websocket_protocol() {
    let server = TestServer::start(&[("PingInterval", "1")]).await;
    for i in 0..3 {
        server.publish("w", &format!("w{i}")).await;
    }
    let mut ws = ws_connect(&server, "?hostid=ws1").await;
    ws_send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(ws_next(&mut ws).await, json!({"type": "pong"}));
    ws_send(
        &mut ws,
        json!({"type": "subscribe", "channel": "w", "after": 0}),
    )
    .await;
    assert_eq!(
        ws_next(&mut ws).await,
        json!({"type": "subscribed", "channel": "w", "last_id": 2})
    );
    assert_eq!(ws_next(&mut ws).await["id"], 1);
    assert_eq!(ws_next(&mut ws).await["id"], 2);
    ws_send(
        &mut ws,
        json!({"type": "subscribe", "channel": "empty", "last": 5}),
    )
    .await;
    assert_eq!(
        ws_next(&mut ws).await,
        json!({"type": "subscribed", "channel": "empty", "last_id": null})
    );
    // Bad input gets an error and the connection lives on.
    for bad in [
        "not json",
        "{\"type\":\"dance\"}",
        "{\"type\":\"subscribe\",\"channel\":\"has space\"}",
    ] {
        ws.send(WsMessage::Text(bad.into())).await.unwrap();
        assert_eq!(ws_next(&mut ws).await["type"], "error", "{bad}");
    }
    ws_send(&mut ws, json!({"type": "subscribe", "channel": "w"})).await;
    assert_eq!(
        ws_next(&mut ws).await["error"],
        "already subscribed to that channel"
    );
    ws.send(WsMessage::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(ws_next(&mut ws).await["type"], "error");

    // Live messages from both channels, in publish order.
    server.publish("empty", "e3").await;
    server.publish("w", "w4").await;
    assert_eq!((ws_next(&mut ws).await["id"].clone()), json!(3));
    assert_eq!((ws_next(&mut ws).await["id"].clone()), json!(4));

    ws_send(&mut ws, json!({"type": "unsubscribe", "channel": "w"})).await;
    assert_eq!(
        ws_next(&mut ws).await,
        json!({"type": "unsubscribed", "channel": "w"})
    );
    server.wait_subscribers("w", 0).await;
    server.publish("w", "w5").await;
    server.publish("empty", "e6").await;
    assert_eq!(ws_next(&mut ws).await["id"], 6);

    // Keep-alive pings arrive on their own.
    let ping = tokio::time::timeout(WAIT, async {
        loop {
            if let WsMessage::Text(t) = ws.next().await.unwrap().unwrap() {
                if t.as_str() == "{\"type\":\"ping\"}" {
                    return;
                }
            }
        }
    });
    ping.await.unwrap();

    // /disconnect with its host id ends it with a close message.
    get(server.subscriber, "/disconnect/ws1").await;
    let closing = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t)))
                    if t.as_str() == r#"{"type":"close","reason":"disconnected"}"# =>
                {
                    return true
                }
                Some(Ok(_)) => continue,
                _ => return false,
            }
        }
    })
    .await
    .unwrap();
    assert!(closing);
    server.stop().await;
}
