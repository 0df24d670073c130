//! Every mode of the example configuration, byte for byte, through real
//! sockets: backlog specs, live delivery, pings, limits, kicks.

mod common;

use std::time::Duration;

use common::{get, http_raw, Stream, TestServer, HTML_HEADER};

const CH_DEMO_1: &str = "<script>ch(\"demo\", 1);</script>\r\n";
const P0: &str = "<script>p(0,\"demo\",\"hello world\");</script>\r\n";
const P1: &str = "<script>p(1,\"demo\",\"second\");</script>\r\n";

async fn two_messages() -> TestServer {
    let server = TestServer::start(&[]).await;
    assert_eq!(server.publish("demo", "hello world").await, 0);
    assert_eq!(server.publish("demo", "second").await, 1);
    server
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn longpoll_with_backlog_matches_the_spec_example() {
    let server = two_messages().await;
    let body = get(server.subscriber, "/push/abc/longpoll/demo.r0").await;
    assert_eq!(text(&body), format!("{HTML_HEADER}{CH_DEMO_1}{P0}{P1}"));
    server.stop().await;
}

#[tokio::test]
async fn polling_modes_for_each_channel_spec() {
    let server = two_messages().await;
    for mode in ["simplepoll", "smartpoll"] {
        let cases = [
            ("demo", String::new()),
            ("demo.r0", format!("{P0}{P1}")),
            ("demo.r1", P1.to_string()),
            // meteord accepts an upper-case letter but sends no backlog for it.
            ("demo.R1", String::new()),
            ("demo.r2", String::new()),
            ("demo.r", format!("{P0}{P1}")),
            ("demo.b1", P1.to_string()),
            ("demo.b5", format!("{P0}{P1}")),
            ("demo.b0", format!("{P0}{P1}")),
            ("demo.b", format!("{P0}{P1}")),
            ("demo.h", format!("{P0}{P1}")),
            ("demo.H", String::new()),
        ];
        for (spec, backlog) in cases {
            let body = get(server.subscriber, &format!("/push/h1/{mode}/{spec}")).await;
            assert_eq!(
                text(&body),
                format!("{HTML_HEADER}{CH_DEMO_1}{backlog}"),
                "{mode} {spec}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn resume_from_a_trimmed_id_starts_at_the_next_cached_message() {
    let server = TestServer::start(&[("MaxMessagesPerChannel", "2")]).await;
    for i in 0..5 {
        server.publish("t", &format!("m{i}")).await;
    }
    let body = text(&get(server.subscriber, "/push/h/simplepoll/t.r1").await);
    assert!(body.ends_with("<script>ch(\"t\", 4);</script>\r\n<script>p(3,\"t\",\"m3\");</script>\r\n<script>p(4,\"t\",\"m4\");</script>\r\n"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn unknown_channel_has_last_id_zero_and_no_backlog() {
    let server = TestServer::start(&[]).await;
    let body = get(server.subscriber, "/push/h/simplepoll/nothing.h").await;
    assert_eq!(
        text(&body),
        format!("{HTML_HEADER}<script>ch(\"nothing\", 0);</script>\r\n")
    );
    server.stop().await;
}

#[tokio::test]
async fn several_channels_in_url_order_and_the_last_duplicate_wins() {
    let server = TestServer::start(&[]).await;
    server.publish("b", "b0").await;
    server.publish("a", "a1").await;
    server.publish("b", "b2").await;
    let body = text(&get(server.subscriber, "/push/h/simplepoll/b.h/a.h/b.r2").await);
    let expected = format!(
        "{HTML_HEADER}<script>ch(\"b\", 2);</script>\r\n<script>ch(\"a\", 1);</script>\r\n\
         <script>p(2,\"b\",\"b2\");</script>\r\n<script>p(1,\"a\",\"a1\");</script>\r\n"
    );
    assert_eq!(body, expected);
    server.stop().await;
}

#[tokio::test]
async fn longpoll_on_several_channels_sends_all_backlog_then_closes() {
    let server = TestServer::start(&[]).await;
    server.publish("x", "x0").await;
    server.publish("y", "y1").await;
    let body = text(&get(server.subscriber, "/push/h/longpoll/x.h/y.h").await);
    assert!(
        body.ends_with(
            "<script>p(0,\"x\",\"x0\");</script>\r\n<script>p(1,\"y\",\"y1\");</script>\r\n"
        ),
        "{body}"
    );
    // The server is not stalled.
    assert_eq!(server.publish("x", "after").await, 2);
    server.stop().await;
}

#[tokio::test]
async fn longpoll_without_backlog_waits_for_one_message() {
    let server = TestServer::start(&[]).await;
    let mut sub = Stream::open(server.subscriber, "/push/lp/longpoll/demo").await;
    sub.until(b"<script>ch(\"demo\", 0);</script>\r\n").await;
    server.wait_subscribers("demo", 1).await;
    server.publish("demo", "one").await;
    server.publish("demo", "two").await;
    let body = text(sub.read_to_close().await);
    assert_eq!(
        body,
        format!("{HTML_HEADER}<script>ch(\"demo\", 0);</script>\r\n<script>p(0,\"demo\",\"one\");</script>\r\n")
    );
    server.wait_subscribers("demo", 0).await;
    server.stop().await;
}

#[tokio::test]
async fn xhrinteractive_streams_live_messages_in_publish_order() {
    let server = two_messages().await;
    let mut sub = Stream::open(server.subscriber, "/push/x1/xhrinteractive/demo.b1/other").await;
    let dots = ".".repeat(1409);
    let start =
        format!("{HTML_HEADER}{dots}\r\n{CH_DEMO_1}<script>ch(\"other\", 0);</script>\r\n\r\n{P1}");
    sub.until(start.as_bytes()).await;
    assert_eq!(sub.text(), start);
    server.wait_subscribers("other", 1).await;
    server.publish("other", "o2").await;
    server.publish("demo", "d3").await;
    server.publish("unrelated", "u4").await;
    server.publish("other", "o5").await;
    sub.until(b"p(5,").await;
    assert_eq!(
        sub.text(),
        format!(
            "{start}<script>p(2,\"other\",\"o2\");</script>\r\n<script>p(3,\"demo\",\"d3\");</script>\r\n<script>p(5,\"other\",\"o5\");</script>\r\n"
        )
    );
    let mut c = server.control().await;
    assert_eq!(c.command("COUNTSUBSCRIBERS demo").await, "OK 1\r\n");
    assert_eq!(c.command("COUNTSUBSCRIBERS other").await, "OK 1\r\n");
    server.stop().await;
}

#[tokio::test]
async fn iframe_mode_opts_out_of_origin_keyed_clusters_and_gets_eof_on_shutdown() {
    let server = two_messages().await;
    let mut sub = Stream::open(server.subscriber, "/push/if1/iframe/demo.r1").await;
    sub.until(P1.as_bytes()).await;
    let body = sub.text();
    assert!(
        body.starts_with("HTTP/1.1 200 OK\r\nOrigin-Agent-Cluster: ?0\r\nServer: meteord\r\n"),
        "{body}"
    );
    assert!(body.contains("parent.Meteor.register(this);"));
    assert!(body.ends_with(&format!("<body onload=\"try {{ parent.Meteor.reset(this) }} catch (e) {{}}\">\r\n{CH_DEMO_1}\r\n{P1}")));
    server.wait_subscribers("demo", 1).await;
    server.begin_shutdown();
    let body = text(sub.read_to_close().await);
    assert!(
        body.ends_with(&format!("{P1}<script>eof();</script>\r\n")),
        "{body}"
    );
}

#[tokio::test]
async fn flash_modes_use_their_own_framing() {
    let server = two_messages().await;
    // flash: no HTTP header at all, NUL-framed, persistent.
    let mut flash = Stream::open(server.subscriber, "/push/f1/flash/demo.h").await;
    let expected = "CH/demo/1\x000/demo/hello world\x001/demo/second\x00";
    flash.until(expected.as_bytes()).await;
    assert_eq!(flash.text(), expected);
    server.wait_subscribers("demo", 1).await;
    server.publish("demo", "live").await;
    flash.until(b"2/demo/live\0").await;

    // flashloadvars: HTTP header, newline framing, one message then close.
    let body = text(&get(server.subscriber, "/push/f2/flashloadvars/demo.b1").await);
    assert_eq!(body, format!("{HTML_HEADER}CH/demo/2\n2/demo/live\n"));

    // A kick ends flash with its own shutdown message.
    let mut again = Stream::open(server.subscriber, "/push/f1/longpoll/other").await;
    again.until(b"ch(\"other\", 0)").await;
    let body = text(flash.read_to_close().await);
    assert!(body.ends_with("2/demo/live\0x\0"), "{body:?}");
    server.stop().await;
}

#[tokio::test]
async fn no_valid_channel_is_a_404_through_the_modes_templates() {
    let server = TestServer::start(&[]).await;
    let body = text(&get(server.subscriber, "/push/h/longpoll/bad.x1").await);
    assert_eq!(
        body,
        format!(
            "{}<script>eof();</script>\r\n",
            HTML_HEADER.replace("200 OK", "404 Not Found")
        )
    );
    let body = text(&get(server.subscriber, "/push/h/flash/bad.q").await);
    assert_eq!(body, "x\0");
    let mut c = server.control().await;
    c.send(b"SHOWSTATS\r\n").await;
    let stats = text(&c.read_until(b"--EOT--\r\n").await);
    assert!(stats.contains("errors_served: 2\r\n"), "{stats}");
    server.stop().await;
}

#[tokio::test]
async fn unknown_mode_uses_the_global_templates_and_modes_match_case_sensitively() {
    let server = two_messages().await;
    // The global section of the example config: Persist 0, default templates
    // (whose header has no ~channelinfo~).
    let body = text(&get(server.subscriber, "/push/h/nosuchmode/demo.b1").await);
    assert_eq!(body, format!("{HTML_HEADER}{P1}"));
    // "LONGPOLL" is not the [longpoll] section (that one would not close
    // without a message; this one closes because the globals say Persist 0).
    let body = text(&get(server.subscriber, "/push/h/LONGPOLL/demo").await);
    assert_eq!(body, HTML_HEADER);
    server.stop().await;
}

#[tokio::test]
async fn pings_arrive_every_ping_interval_and_do_not_count_as_messages() {
    let server = TestServer::start(&[("PingInterval", "1")]).await;
    let mut sub = Stream::open(server.subscriber, "/push/p1/longpoll/demo").await;
    let ping = "<script>p(-1,\"\");</script>\r\n";
    sub.until(format!("{ping}{ping}").as_bytes()).await;
    // Still open: pings are not messages, and longpoll takes one message.
    server.publish("demo", "real").await;
    let body = text(sub.read_to_close().await);
    assert!(
        body.ends_with("<script>p(0,\"demo\",\"real\");</script>\r\n"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_mode_with_an_empty_ping_message_gets_no_pings() {
    let server =
        TestServer::start(&[("PingInterval", "1"), ("MaxMessages.flashloadvars", "0")]).await;
    let mut sub = Stream::open(server.subscriber, "/push/p2/flashloadvars/demo").await;
    sub.until(b"CH/demo/0\n").await;
    assert!(sub.still_open_after(Duration::from_millis(2500)).await);
    assert!(sub.text().ends_with("CH/demo/0\n"), "{:?}", sub.text());
    server.stop().await;
}

#[tokio::test]
async fn max_messages_closes_after_that_many_messages() {
    let server = TestServer::start(&[("MaxMessages.xhrinteractive", "2")]).await;
    let mut sub = Stream::open(server.subscriber, "/push/m1/xhrinteractive/demo").await;
    sub.until(b"ch(\"demo\", 0)").await;
    server.wait_subscribers("demo", 1).await;
    for i in 0..3 {
        server.publish("demo", &format!("n{i}")).await;
    }
    let body = text(sub.read_to_close().await);
    assert!(
        body.ends_with(
            "p(0,\"demo\",\"n0\");</script>\r\n<script>p(1,\"demo\",\"n1\");</script>\r\n"
        ),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn max_time_closes_a_persistent_subscriber() {
    let server = TestServer::start(&[("MaxTime", "1"), ("PingInterval", "0")]).await;
    let mut sub = Stream::open(server.subscriber, "/push/t1/iframe/demo").await;
    sub.until(b"ch(\"demo\", 0)").await;
    let started = std::time::Instant::now();
    let body = text(sub.read_to_close().await);
    assert!(started.elapsed() < Duration::from_secs(5));
    // MaxTime closes without the shutdown message, as meteord did.
    assert!(!body.contains("eof()"), "{body}");
    server.wait_subscribers("demo", 0).await;
    server.stop().await;
}

#[tokio::test]
async fn a_new_subscription_with_the_same_host_id_kicks_the_old_one() {
    let server = TestServer::start(&[]).await;
    let mut first = Stream::open(server.subscriber, "/push/same/xhrinteractive/a").await;
    first.until(b"ch(\"a\", 0)").await;
    server.wait_subscribers("a", 1).await;
    // Across modes and channels.
    let mut second = Stream::open(server.subscriber, "/push/same/iframe/b").await;
    second.until(b"ch(\"b\", 0)").await;
    let body = text(first.read_to_close().await);
    assert!(
        body.ends_with("<script>ch(\"a\", 0);</script>\r\n\r\n<script>eof();</script>\r\n"),
        "{body}"
    );
    server.wait_subscribers("a", 0).await;
    server.wait_subscribers("b", 1).await;

    // A non-persistent request with that host id leaves the stream alone.
    get(server.subscriber, "/push/same/simplepoll/b").await;
    server.publish("b", "still here").await;
    second.until(b"still here").await;

    // /disconnect ends it, and answers with the global header only.
    let reply = get(server.subscriber, "/disconnect/same").await;
    assert_eq!(text(&reply), HTML_HEADER);
    let body = text(second.read_to_close().await);
    assert!(body.ends_with("<script>eof();</script>\r\n"), "{body}");
    // Unknown ids get the same answer.
    assert_eq!(
        text(&get(server.subscriber, "/disconnect/nobody").await),
        HTML_HEADER
    );
    server.stop().await;
}

#[tokio::test]
async fn push_is_matched_on_the_request_line_only_and_case_insensitively() {
    let server = two_messages().await;
    let body = text(&get(server.subscriber, "/PuSh/h/simplepoll/demo.b1").await);
    assert_eq!(body, format!("{HTML_HEADER}{CH_DEMO_1}{P1}"));
    // A Referer naming /push does not subscribe; the path is a static file.
    let body = text(
        &http_raw(
            server.subscriber,
            b"GET /nothing-here.html HTTP/1.1\r\nReferer: GET /push/h/simplepoll/demo.h\r\n\r\n",
        )
        .await,
    );
    assert!(body.starts_with("HTTP/1.1 404 Not Found\r\n"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn custom_prefix_and_templates_with_every_placeholder() {
    let config = "SubscriberDynamicPageAddress /stream\n\
        HeaderTemplate HTTP/1.0 ~status~\\r\\nX-Server: ~server~\\r\\nX-Time: ~servertime~\\r\\n\\r\\n[~channelinfo~]~~~unknown~\n\
        ChannelInfoTemplate {~name~ ~lastMsgID~ ~messageCount~ ~subscriberCount~ ~bad name~}\n\
        MessageTemplate <~id~|~channel~|~text~|~timestamp~|~nope~~~>\\n\n";
    let server = TestServer::with_config(config, &[]).await;
    server.publish("c", "t0").await;
    let before = meteord::hub::unix_now();
    let body = text(&get(server.subscriber, "/stream/h/any/c.h").await);
    let after = meteord::hub::unix_now();
    let (head, rest) = body.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200 OK\r\nX-Server: meteord\r\nX-Time: "),
        "{head}"
    );
    let time: u64 = head.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((before..=after).contains(&time));
    let message = rest
        .strip_prefix("[{c 0 1 0 ~bad name~}]~")
        .unwrap_or_else(|| panic!("{rest}"));
    let ts: u64 = message.split('|').nth(3).unwrap().parse().unwrap();
    assert!((before.saturating_sub(5)..=after).contains(&ts));
    assert_eq!(message, format!("<0|c|t0|{ts}|~>\n"));
    // The old prefix is now just a (missing) static file.
    let body = text(&get(server.subscriber, "/push/h/any/c.h").await);
    assert!(body.starts_with("HTTP/1.1 404 Not Found"));
    server.stop().await;
}

#[tokio::test]
async fn channels_expire_when_empty_and_unsubscribed_and_caches_are_trimmed() {
    let server = TestServer::start(&[("MaxMessagesPerChannel", "3"), ("MaxMessageAge", "1")]).await;
    for i in 0..5 {
        server.publish("trim", &format!("m{i}")).await;
    }
    let ids: Vec<u64> = server
        .node
        .hub
        .messages(b"trim")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [2, 3, 4]);
    // A non-persistent request for an unknown channel does not leave it behind.
    get(server.subscriber, "/push/h/simplepoll/ghost").await;
    let mut c = server.control().await;
    c.send(b"LISTCHANNELS\r\n").await;
    assert_eq!(
        text(&c.read_until(b"--EOT--\r\n").await),
        "OK\r\ntrim(3/0)\r\n--EOT--\r\n"
    );
    // A subscribed channel stays after its messages age out; the other goes.
    let mut sub = Stream::open(server.subscriber, "/push/h2/xhrinteractive/kept").await;
    sub.until(b"ch(\"kept\", 0)").await;
    server.wait_subscribers("kept", 1).await;
    server.publish("kept", "old").await;
    tokio::time::sleep(Duration::from_millis(2600)).await;
    c.send(b"LISTCHANNELS\r\n").await;
    assert_eq!(
        text(&c.read_until(b"--EOT--\r\n").await),
        "OK\r\nkept(0/1)\r\n--EOT--\r\n"
    );
    drop(sub);
    server.wait_subscribers("kept", 0).await;
    c.send(b"LISTCHANNELS\r\n").await;
    assert_eq!(
        text(&c.read_until(b"--EOT--\r\n").await),
        "OK\r\n--EOT--\r\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn stats_count_subscribers_and_served_messages() {
    let server = two_messages().await;
    get(server.subscriber, "/push/h/simplepoll/demo.h").await;
    get(server.subscriber, "/meteor.js").await;
    get(server.subscriber, "/missing.js").await;
    let mut c = server.control().await;
    c.send(b"SHOWSTATS\r\n").await;
    let stats = text(&c.read_until(b"--EOT--\r\n").await);
    for line in [
        "messages_served: 2\r\n",
        "unique_messages: 2\r\n",
        "subscriber_connections_accepted: 3\r\n",
        "documents_served: 1\r\n",
        "documents_not_found: 1\r\n",
        "channel_count: 1\r\n",
    ] {
        assert!(stats.contains(line), "{line} missing in {stats}");
    }
    // 3 publishes' connections + 3 subscriber connections + this one.
    assert!(stats.contains("total_requests: 6\r\n"), "{stats}");
    let inbound: u64 = stats
        .split("total_inbound_bytes: ")
        .nth(1)
        .unwrap()
        .split("\r\n")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(inbound > 100);
    server.stop().await;
}
