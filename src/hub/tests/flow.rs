//! The hub's delivery over time: backlogs in batches, pings, deadlines,
//! readers that fall behind or stop, and shutdown.

use super::*;

#[test]
fn pings_deadlines_and_shutdown() {
    let hub = Hub::new(0, 3600);
    let pinged = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    hub.ping_all();
    assert_eq!(pinged.text(), "a(0)|P");
    // MaxTime: closed quietly once its deadline passed.
    let framing: Arc<dyn Framing> = Arc::new(Plain);
    let timed = hub.new_subscriber(info(None), framing, 0);
    let subscribed = hub.subscribe(
        Subscription {
            subscriber: timed.clone(),
            channels: &[(Bytes::from_static(b"a"), Start::Live)],
            persist: true,
            max_time: Some(Duration::from_secs(5)),
            expires: None,
            merge_backlog: false,
        },
        |_, _| {},
    );
    assert_eq!(subscribed, Ok(()));
    hub.expire_deadlines(Instant::now());
    assert!(timed.is_open());
    hub.expire_deadlines(Instant::now() + Duration::from_secs(6));
    assert!(!timed.is_open());
    // Shutdown: everything published first, then the goodbye.
    publish(&hub, "a", "last");
    hub.close_all();
    assert_eq!(pinged.take(), ("0:a:last;S".into(), State::Finished));
    assert_eq!(hub.subscriber_count(), 0);
}

#[test]
fn a_reader_that_falls_too_far_behind_is_dropped() {
    let hub = Hub::new(0, 3600);
    let slow = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    let fast = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    for i in 0..FEED_CAPACITY + 10 {
        publish(&hub, "a", &i.to_string());
        if i % 100 == 0 {
            fast.text();
        }
    }
    fast.text();
    hub.trim_feeds();
    assert_eq!(slow.take().1, State::Aborted);
    assert_eq!(fast.take().1, State::Open);
    assert_eq!(hub.count_subscribers(b"a"), 1);
}

#[test]
fn a_backlog_goes_out_a_batch_at_a_time_in_order() {
    let hub = Hub::new(0, 3600);
    let text = "x".repeat(10_000);
    for _ in 0..100 {
        publish(&hub, "big", &text);
    }
    let client = subscribe(&hub, Ask::live(&[("big", Start::All)]));
    // Queued as shared messages, not rendered copies.
    assert_eq!(client.subscriber.backlog_len(), 100);
    hub.ping_all();
    publish(&hub, "big", "live");
    let mut cx = Context::from_waker(Waker::noop());
    let mut writes = Vec::new();
    while let Poll::Ready(Next::Write(bytes)) = client.subscriber.poll_next(&mut cx) {
        writes.push(bytes);
    }
    assert!(writes.len() > 2, "{} writes", writes.len());
    assert!(
        writes.iter().all(|w| w.len() < 300_000),
        "one batch a write"
    );
    let all = String::from_utf8(writes.concat()).unwrap();
    let ping = all.find('P').unwrap();
    let live = all.find("100:big:live;").unwrap();
    assert!(
        all.find("99:big:").unwrap() < ping,
        "the ping waited for the backlog"
    );
    assert!(ping < live, "live messages after the backlog");
    // A close behind a backlog keeps its place too.
    let late = subscribe(&hub, Ask::live(&[("big", Start::All)]));
    hub.close_all();
    let (text, state) = late.take();
    assert!(
        text.ends_with("100:big:live;S"),
        "{}",
        &text[text.len() - 40..]
    );
    assert_eq!(state, State::Finished);
}

#[test]
fn stuck_writers_are_dropped_when_the_queues_are_full() {
    let hub = Hub::new(0, 3600);
    let stuck = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    let reading = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    publish(&hub, "a", &"y".repeat(1000));
    let mut cx = Context::from_waker(Waker::noop());
    // Both take a write; only one comes back for more (its write is done).
    assert!(matches!(
        stuck.subscriber.poll_next(&mut cx),
        Poll::Ready(Next::Write(_))
    ));
    assert!(matches!(
        reading.subscriber.poll_next(&mut cx),
        Poll::Ready(Next::Write(_))
    ));
    let _ = reading.subscriber.poll_next(&mut cx);
    assert!(hub.queued_bytes() > 1000);
    hub.drop_stalled(10, Duration::from_secs(60));
    assert!(stuck.subscriber.is_open(), "not stuck long enough");
    hub.drop_stalled(0, Duration::ZERO);
    assert!(stuck.subscriber.is_open(), "no budget, nothing dropped");
    hub.drop_stalled(10, Duration::ZERO);
    assert_eq!(stuck.take().1, State::Aborted);
    assert!(reading.subscriber.is_open());
    assert_eq!(hub.count_subscribers(b"a"), 1);
}

#[test]
fn a_subscription_after_shutdown_gets_its_backlog_and_is_not_kept() {
    let hub = Hub::new(0, 3600);
    publish(&hub, "a", "before");
    hub.close_all();
    let late = subscribe(&hub, Ask::live(&[("a", Start::All)]));
    let (text, state) = late.take();
    assert!(text.contains("before"), "{text}");
    assert!(text.ends_with('S'), "the shutdown message ends it: {text}");
    assert_eq!(state, State::Finished);
    assert_eq!(hub.count_subscribers(b"a"), 0);
}

#[test]
fn a_busy_subscriber_reuses_its_write_buffer_and_an_idle_one_holds_none() {
    let hub = Hub::new(0, 3600);
    let client = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    let mut cx = Context::from_waker(Waker::noop());
    let mut write = || match client.subscriber.poll_next(&mut cx) {
        Poll::Ready(Next::Write(bytes)) => bytes,
        other => panic!("expected a write, got {other:?}"),
    };
    publish(&hub, "a", &"x".repeat(3000));
    let first = write();
    let (at, room) = (first.as_ptr(), first.capacity());
    // The write is done: its buffer comes back, and the next batch
    // (while messages keep coming) is rendered into it.
    client.subscriber.recycle(first);
    publish(&hub, "a", "second");
    let second = write();
    assert_eq!(second.as_ptr(), at);
    assert_eq!(second.capacity(), room);
    assert!(String::from_utf8_lossy(&second).ends_with(":a:second;"));
    // Nothing more: asking again finds the subscriber idle, and the
    // buffer is let go.
    client.subscriber.recycle(second);
    assert!(client.subscriber.buffer_capacity() >= 3000);
    assert!(client.subscriber.poll_next(&mut cx).is_pending());
    assert_eq!(client.subscriber.buffer_capacity(), 0);
}
