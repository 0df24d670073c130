//! The control port, byte for byte, over real TCP.

mod common;

use common::{Control, TestServer};

#[tokio::test]
async fn addmessage_ids_start_at_zero_and_grow_across_channels() {
    let server = TestServer::start(&[]).await;
    let mut c = server.control().await;
    assert_eq!(c.command("ADDMESSAGE a first").await, "OK\t0\r\n");
    assert_eq!(c.command("ADDMESSAGE b second").await, "OK\t1\r\n");
    assert_eq!(c.command("ADDMESSAGE a third").await, "OK\t2\r\n");
    server.stop().await;
}

#[tokio::test]
async fn every_command_and_error_reply() {
    let server = TestServer::start(&[]).await;
    let mut c = server.control().await;
    // Errors keep the connection alive.
    for bad in [
        "ADDMESSAGE",
        "ADDMESSAGE chan",
        "addmessage chan text",
        "COUNTSUBSCRIBERS",
        "COUNTSUBSCRIBERS chan ",
        "LISTCHANNELS ",
        "QUIT ",
        "HELLO",
        "",
    ] {
        assert_eq!(
            c.command(bad).await,
            "ERR Invalid command syntax\r\n",
            "{bad:?}"
        );
    }
    assert_eq!(c.command("COUNTSUBSCRIBERS nochannel").await, "OK 0\r\n");
    c.send(b"LISTCHANNELS\r\n").await;
    // COUNTSUBSCRIBERS did not create the channel.
    assert_eq!(c.read_until(b"--EOT--\r\n").await, b"OK\r\n--EOT--\r\n");

    assert_eq!(c.command("ADDMESSAGE zeta z").await, "OK\t0\r\n");
    assert_eq!(c.command("ADDMESSAGE alpha a").await, "OK\t1\r\n");
    assert_eq!(c.command("ADDMESSAGE alpha b").await, "OK\t2\r\n");
    assert_eq!(c.command("ADDMESSAGE Beta b").await, "OK\t3\r\n");
    c.send(b"LISTCHANNELS\r\n").await;
    assert_eq!(
        String::from_utf8(c.read_until(b"--EOT--\r\n").await).unwrap(),
        "OK\r\nBeta(1/0)\r\nalpha(2/0)\r\nzeta(1/0)\r\n--EOT--\r\n"
    );

    c.send(b"SHOWSTATSXYZ\r\n").await;
    let stats = String::from_utf8(c.read_until(b"--EOT--\r\n").await).unwrap();
    let lines: Vec<&str> = stats.split("\r\n").collect();
    assert_eq!(lines[0], "OK");
    assert!(lines[1].starts_with("uptime: "), "{stats}");
    assert_eq!(lines[2], "channel_count: 3");
    assert!(lines.contains(&"unique_messages: 4"), "{stats}");
    assert!(lines.contains(&"current_controllers: 1"), "{stats}");
    assert!(
        lines.contains(&"controller_connections_accepted: 1"),
        "{stats}"
    );
    // Never touched: no subscriber has connected, no document was served.
    assert!(!stats.contains("documents_served"), "{stats}");
    assert!(
        !stats.contains("subscriber_connections_accepted"),
        "{stats}"
    );
    assert!(stats.ends_with("--EOT--\r\n"));

    c.send(b"QUIT\r\n").await;
    assert_eq!(c.read_to_end().await, b"OK\r\n");
    server.stop().await;
}

#[tokio::test]
async fn message_text_is_kept_exactly() {
    let server = TestServer::start(&[]).await;
    let mut c = server.control().await;
    c.send(b"ADDMESSAGE t \r\nADDMESSAGE t   spaced\ttab\0nul\r\nADDMESSAGE  t\tx\r\n")
        .await;
    assert_eq!(
        c.read_until(b"OK\t2\r\n").await,
        b"OK\t0\r\nOK\t1\r\nOK\t2\r\n"
    );
    let texts: Vec<Vec<u8>> = server
        .node
        .hub
        .messages(b"t")
        .iter()
        .map(|m| m.text.to_vec())
        .collect();
    assert_eq!(
        texts,
        [b"".to_vec(), b"  spaced\ttab\0nul".to_vec(), b"x".to_vec()]
    );
    server.stop().await;
}

#[tokio::test]
async fn pipelined_commands_answer_in_order_with_lf_or_crlf() {
    let server = TestServer::start(&[]).await;
    let mut c = server.control().await;
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(format!("ADDMESSAGE p m{i}").as_bytes());
        batch.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
    }
    batch.extend_from_slice(b"COUNTSUBSCRIBERS p\n");
    c.send(&batch).await;
    let replies = c.read_until(b"OK 0\r\n").await;
    let expected: String = (0..1000)
        .map(|i| format!("OK\t{i}\r\n"))
        .collect::<String>()
        + "OK 0\r\n";
    assert_eq!(String::from_utf8(replies).unwrap(), expected);
    server.stop().await;
}

#[tokio::test]
async fn lines_after_quit_in_the_same_read_are_answered() {
    let server = TestServer::start(&[]).await;
    let mut c = server.control().await;
    c.send(b"ADDMESSAGE q one\r\nQUIT\r\nADDMESSAGE q two\r\n")
        .await;
    assert_eq!(c.read_to_end().await, b"OK\t0\r\nOK\r\nOK\t1\r\n");
    server.stop().await;
}

#[tokio::test]
async fn a_stray_cr_is_an_error_not_a_hang() {
    let server = TestServer::start(&[]).await;
    let mut c = server.control().await;
    c.send(b"SHOWSTATS\rSHOWSTATS\r\nADDMESSAGE c ok\r\n").await;
    assert_eq!(
        c.read_until(b"OK\t0\r\n").await,
        b"ERR Invalid command syntax\r\nOK\t0\r\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_line_is_refused_and_the_connection_lives_on() {
    let server = TestServer::start(&[]).await;
    let mut c = server.control().await;
    let mut line = b"ADDMESSAGE big ".to_vec();
    line.resize(meteord::node::MAX_TEXT + 100, b'x');
    line.extend_from_slice(b"\r\nADDMESSAGE small ok\r\n");
    c.send(&line).await;
    assert_eq!(
        c.read_until(b"OK\t0\r\n").await,
        b"ERR Line too long\r\nOK\t0\r\n"
    );
    assert_eq!(server.node.hub.count_subscribers(b"big"), 0);
    assert!(server.node.hub.messages(b"big").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_and_binary_input_do_not_break_the_connection() {
    let server = TestServer::start(&[]).await;
    let mut c = server.control().await;
    c.send(b"\xff\xfe\x00garbage\r\nADDMESSAGE \xc3\xa9t\xc3\xa9 caf\xc3\xa9\r\n")
        .await;
    assert_eq!(
        c.read_until(b"OK\t0\r\n").await,
        b"ERR Invalid command syntax\r\nOK\t0\r\n"
    );
    assert_eq!(
        server.node.hub.messages("été".as_bytes())[0].text.as_ref(),
        "café".as_bytes()
    );
    server.stop().await;
}

#[tokio::test]
async fn controller_shutdown_message_on_graceful_shutdown() {
    let server = TestServer::start(&[("ControllerShutdownMsg", "BYE\\r\\n")]).await;
    let mut c = server.control().await;
    assert_eq!(c.command("ADDMESSAGE s x").await, "OK\t0\r\n");
    server.begin_shutdown();
    assert_eq!(c.read_to_end().await, b"BYE\r\n");
    // QUIT closes without the shutdown message.
    server.stop().await;
}

#[tokio::test]
async fn quit_closes_without_the_shutdown_message() {
    let server = TestServer::start(&[("ControllerShutdownMsg", "BYE")]).await;
    let mut c = Control::connect(server.control).await;
    c.send(b"QUIT\r\n").await;
    assert_eq!(c.read_to_end().await, b"OK\r\n");
    server.stop().await;
}

#[tokio::test]
async fn udp_publishes_without_reply_and_strips_the_newline() {
    let server = TestServer::start(&[("UDPPort", "0"), ("UDPIP", "127.0.0.1")]).await;
    // UDPPort 0 means off.
    assert!(server.udp.is_none());
    server.stop().await;

    // Bind a free UDP port, release it, and let the server take it.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = port.to_string();
    let server = TestServer::start(&[("UDPPort", &port)]).await;
    let addr = server.udp.expect("udp bound");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(b"ADDMESSAGE u hello udp\n", addr)
        .await
        .unwrap();
    socket.send_to(b"NOTACOMMAND\n", addr).await.unwrap();
    let mut too_big = b"ADDMESSAGE u ".to_vec();
    too_big.resize(meteord::control::udp::MAX_DATAGRAM + 10, b'x');
    socket.send_to(&too_big, addr).await.unwrap();
    socket
        .send_to(b"ADDMESSAGE u second\r\n", addr)
        .await
        .unwrap();
    let hub = server.node.hub.clone();
    tokio::time::timeout(common::WAIT, async {
        while hub.messages(b"u").len() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let texts: Vec<_> = hub.messages(b"u").iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, ["hello udp", "second"]);
    // The TCP port shares the id sequence.
    assert_eq!(server.publish("u", "tcp").await, 2);
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_others_keep_working() {
    let server = TestServer::start(&[("MaxControllerConnections", "2")]).await;
    let mut a = server.control().await;
    let mut b = server.control().await;
    assert_eq!(a.command("ADDMESSAGE c 1").await, "OK\t0\r\n");
    assert_eq!(b.command("ADDMESSAGE c 2").await, "OK\t1\r\n");
    let mut c = server.control().await;
    assert_eq!(c.read_to_end().await, b"ERR Too many connections\r\n");
    drop(a);
    // Once a slot frees up, a new publisher gets in.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let mut d = server.control().await;
        d.send(b"ADDMESSAGE c 3\r\n").await;
        let reply = d.read_until(b"\r\n").await;
        if reply == b"OK\t2\r\n" {
            break;
        }
        assert_eq!(reply, b"ERR Too many connections\r\n");
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(b.command("COUNTSUBSCRIBERS c").await, "OK 0\r\n");
    server.stop().await;
}
