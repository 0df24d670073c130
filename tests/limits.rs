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

/// The subscriber port fills what the file descriptor limit allows, less a
/// reserve: the next subscriber gets a 503, every held one still gets every
/// message, and the control port and admin UI keep answering.
#[tokio::test]
async fn a_full_subscriber_port_answers_503_and_the_rest_keeps_working() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server =
        common::Process::start_with_fd_limit(&["-MaxTime", "0", "-PingInterval", "0"], 256);
    let admin = server.logged_addr("admin listening on ");
    let mut held = Vec::new();
    let refused = loop {
        let mut stream = TcpStream::connect(server.subscriber).await.unwrap();
        let request = format!(
            "GET /push/h{}/xhrinteractive/full HTTP/1.1\r\nHost: x\r\n\r\n",
            held.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = vec![0u8; 512];
        let n = tokio::time::timeout(common::WAIT, stream.read(&mut head))
            .await
            .expect("every connection is answered at once")
            .unwrap();
        let head = String::from_utf8_lossy(&head[..n]).to_string();
        if head.starts_with("HTTP/1.1 503") {
            break head;
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(stream);
        assert!(held.len() <= 256, "never refused");
    };
    // 256 descriptors, 64 kept back: 192 at most, less what the server
    // itself holds open among them.
    assert!((150..=192).contains(&held.len()), "held {}", held.len());
    assert!(refused.contains("503 Service Unavailable"));
    // Still full: refused again, at once.
    let again = common::get(server.subscriber, "/push/h2/xhrinteractive/full").await;
    assert!(String::from_utf8_lossy(&again).starts_with("HTTP/1.1 503"));
    // The control port publishes; every held subscriber gets the message.
    let mut control = common::Control::connect(server.control).await;
    assert!(control
        .command("ADDMESSAGE full everyone")
        .await
        .starts_with("OK"));
    for stream in &mut held {
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        while common::find(&got, b"everyone").is_none() {
            let n = tokio::time::timeout(common::WAIT, stream.read(&mut chunk))
                .await
                .expect("the message arrives")
                .unwrap();
            assert!(n > 0, "closed");
            got.extend_from_slice(&chunk[..n]);
        }
    }
    // The admin UI answers too.
    let login = common::request(admin, "GET", "/login", &[], b"").await;
    assert!(
        login.status == 200 || login.status == 303,
        "{}",
        login.status
    );
    assert_eq!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("accept failed"))
            .count(),
        0,
        "refused with a 503, not by failing to accept"
    );
}
