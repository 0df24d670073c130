//! Abuse limits: who may publish, connections per client address,
//! trickling requests that never finish.
#![cfg(unix)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{get, Stream, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connect to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

async fn reply(stream: &mut TcpStream, line: &[u8]) -> String {
    stream.write_all(line).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(common::WAIT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn only_allowed_addresses_may_publish() {
    let server = TestServer::start(&[("ControllerAllow", "127.0.0.2 10.0.0.0/8")]).await;
    let mut refused = connect_from("127.0.0.1", server.control).await;
    assert_eq!(
        reply(&mut refused, b"ADDMESSAGE a x\r\n").await,
        "ERR Not allowed\r\n"
    );
    let mut allowed = connect_from("127.0.0.2", server.control).await;
    assert_eq!(
        reply(&mut allowed, b"ADDMESSAGE a x\r\n").await,
        "OK\t0\r\n"
    );
    server.stop().await;

    // By default this machine may publish.
    let server = TestServer::start(&[]).await;
    let mut local = connect_from("127.0.0.3", server.control).await;
    assert_eq!(reply(&mut local, b"ADDMESSAGE a x\r\n").await, "OK\t0\r\n");
    server.stop().await;
}

#[tokio::test]
async fn udp_from_a_refused_address_is_dropped() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let server = TestServer::start(&[("UDPPort", &port), ("ControllerAllow", "127.0.0.2")]).await;
    let udp = server.udp.unwrap();
    let refused = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    refused
        .send_to(b"ADDMESSAGE u refused\n", udp)
        .await
        .unwrap();
    let allowed = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    allowed
        .send_to(b"ADDMESSAGE u allowed\n", udp)
        .await
        .unwrap();
    let hub = server.node.hub.clone();
    tokio::time::timeout(common::WAIT, async {
        while hub.messages(b"u").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let texts: Vec<_> = hub.messages(b"u").iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, ["allowed"]);
    server.stop().await;
}

#[tokio::test]
async fn connections_per_client_address_are_capped() {
    let server = TestServer::start(&[("MaxConnectionsPerIP", "2")]).await;
    let mut a = Stream::open(server.subscriber, "/push/a/xhrinteractive/c").await;
    let mut b = Stream::open(server.subscriber, "/push/b/xhrinteractive/c").await;
    a.until(b"ch(\"c\", 0)").await;
    b.until(b"ch(\"c\", 0)").await;
    let third = String::from_utf8(get(server.subscriber, "/meteor.js").await).unwrap();
    assert!(
        third.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{third}"
    );
    // Another address is not affected.
    let mut other = connect_from("127.0.0.2", server.subscriber).await;
    other
        .write_all(b"GET /meteor.js HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = Vec::new();
    other.read_to_end(&mut body).await.unwrap();
    assert!(body.starts_with(b"HTTP/1.1 200 OK\r\n"));
    server.stop().await;
}

/// Each slow client costs this process two descriptors (client and server).
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Many clients that trickle a request line and never finish it do not
/// delay a normal subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_clients_do_not_delay_subscribers() {
    raise_fd_limit();
    let server = TestServer::start(&[("PingInterval", "0")]).await;
    let mut slow = Vec::new();
    for _ in 0..2000 {
        let mut s = TcpStream::connect(server.subscriber).await.unwrap();
        s.write_all(b"GET /push/slow").await.unwrap();
        slow.push(s);
    }
    let mut sub = Stream::open(server.subscriber, "/push/fast/xhrinteractive/live").await;
    sub.until(b"ch(\"live\", 0)").await;
    server.wait_subscribers("live", 1).await;
    // Keep trickling while publishing.
    for (i, s) in slow.iter_mut().enumerate() {
        let _ = s.write_all(&[b"abcdefgh"[i % 8]]).await;
    }
    // Delivered while all of them still hold their connections (their
    // heads would time out only after 30 s, `until` gives up after 10).
    server.publish("live", "through").await;
    sub.until(b"through").await;
    drop(slow);
    server.stop().await;
}
