//! A subscriber that stops reading is dropped; nobody else waits for it.

mod common;

use common::{Stream, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_dropped_and_others_get_everything() {
    let server = TestServer::start(&[("PingInterval", "0")]).await;
    // Connects, sends its request, then never reads a byte.
    let stuck = Stream::open(server.subscriber, "/push/stuck/xhrinteractive/flood").await;
    let mut reader = Stream::open(server.subscriber, "/push/reader/xhrinteractive/flood").await;
    server.wait_subscribers("flood", 2).await;

    // Keep publishing 4 KB messages until the stuck subscriber has fallen
    // more than the feed holds behind — however much its socket buffers
    // absorbed — and is dropped. Bounded: 40 batches are 160 MB.
    let text = "x".repeat(4000);
    let mut control = server.control().await;
    let mut published = 0;
    let mut batches = 0;
    while server.node.hub.count_subscribers(b"flood") == 2 {
        assert!(batches < 40, "the stuck subscriber was never dropped");
        let batch: Vec<u8> = (0..1000)
            .flat_map(|_| format!("ADDMESSAGE flood {text}\r\n").into_bytes())
            .collect();
        control.send(&batch).await;
        published += 1000;
        control
            .read_until(format!("OK\t{}\r\n", published - 1).as_bytes())
            .await;
        batches += 1;
        // Give housekeeping (twice a second) a chance to notice.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // Meanwhile the reader keeps up.
        reader
            .until(format!("<script>p({},\"flood\"", published - 1).as_bytes())
            .await;
    }
    assert!(
        published > meteord::hub::FEED_CAPACITY,
        "dropped after only {published}"
    );
    // The reader got every message, in order.
    let text = reader.text();
    let ids: Vec<usize> = text
        .split("<script>p(")
        .skip(1)
        .map(|s| s.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (0..published).collect::<Vec<_>>());
    drop(stuck);
    server.stop().await;
}
