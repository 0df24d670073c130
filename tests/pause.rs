//! Paused publishing (the tray's and the dashboard's switch), through real
//! sockets: every way of publishing is refused, subscribers stay.

mod common;

use std::time::Duration;

use common::{request, Stream, TestServer};

#[tokio::test]
async fn paused_publishing_is_refused_everywhere_and_subscribers_stay() {
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let server = TestServer::start(&[("UDPPort", &udp_port)]).await;
    let accounts = server.node.accounts.clone().unwrap();
    let (_, token) = accounts.create_token("tests").unwrap();
    let bearer = format!("Bearer {token}");
    let mut sub = Stream::open(server.subscriber, "/push/p1/xhrinteractive/news").await;
    server.wait_subscribers("news", 1).await;
    assert_eq!(server.publish("news", "before").await, 0);
    sub.until(b"\"before\"").await;

    server.node.set_publishing_paused(true);
    assert!(server.node.publishing_paused());
    // Control port: an ERR line, and the connection stays usable.
    let mut control = server.control().await;
    assert_eq!(
        control.command("ADDMESSAGE news refused-tcp").await,
        "ERR Publishing is paused\r\n"
    );
    assert_eq!(control.command("COUNTSUBSCRIBERS news").await, "OK 1\r\n");
    // HTTP API: 503 with the reason.
    let api = request(
        server.subscriber,
        "POST",
        "/api/channels/news/messages",
        &[("Authorization", &bearer)],
        b"refused-api",
    )
    .await;
    assert_eq!(api.status, 503, "{}", api.head);
    assert_eq!(api.json()["error"], "publishing is paused");
    // UDP: dropped (UDP has no replies).
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(b"ADDMESSAGE news refused-udp\n", server.udp.unwrap())
        .await
        .unwrap();
    // The subscriber is still connected and got nothing.
    assert!(sub.still_open_after(Duration::from_millis(300)).await);
    assert_eq!(server.node.hub.count_subscribers(b"news"), 1);
    assert!(!sub.text().contains("refused"), "{}", sub.text());
    assert_eq!(server.node.hub.messages(b"news").len(), 1);

    server.node.set_publishing_paused(false);
    assert_eq!(control.command("ADDMESSAGE news after").await, "OK\t1\r\n");
    sub.until(b"\"after\"").await;
    assert!(!sub.text().contains("refused"), "{}", sub.text());
    server.stop().await;
}
