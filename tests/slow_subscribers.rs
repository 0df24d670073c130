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

    let text = "x".repeat(4000);
    let total = meteord::hub::FEED_CAPACITY + 1000;
    let mut control = server.control().await;
    let mut batch = Vec::new();
    for _ in 0..total {
        batch.extend_from_slice(format!("ADDMESSAGE flood {text}\r\n").as_bytes());
    }
    let sender = tokio::spawn(async move {
        control.send(&batch).await;
        control
            .read_until(format!("OK\t{}\r\n", total - 1).as_bytes())
            .await;
    });
    // The reader keeps up and sees the last message.
    reader
        .until(format!("<script>p({},\"flood\"", total - 1).as_bytes())
        .await;
    sender.await.unwrap();
    let received = reader.text().matches("<script>p(").count();
    assert_eq!(received, total);
    // The stuck one is dropped (not waited for), once it is too far behind.
    server.wait_subscribers("flood", 1).await;
    drop(stuck);
    server.stop().await;
}
