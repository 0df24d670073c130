//! The hub on its own: no socket, no runtime. A subscriber's bytes are read
//! the way its connection task reads them ([`Subscriber::poll_next`]), with
//! a waker that does nothing.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;

mod flow;

/// Renders `id:channel:text;`, pings `P`, says goodbye with `S`, or
/// `R`/`D` when replaced or disconnected.
struct Plain;

impl Framing for Plain {
    fn render(&self, m: &Message, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{}:", m.id).as_bytes());
        out.extend_from_slice(&m.channel);
        out.push(b':');
        out.extend_from_slice(&m.text);
        out.push(b';');
    }
    fn ping(&self) -> &[u8] {
        b"P"
    }
    fn shutdown(&self) -> &[u8] {
        b"S"
    }
    fn farewell(&self, reason: Farewell) -> &[u8] {
        match reason {
            Farewell::Quiet => b"",
            Farewell::Shutdown => b"S",
            Farewell::Replaced => b"R",
            Farewell::Disconnected => b"D",
            Farewell::TokenExpired => b"X",
        }
    }
}

/// Where a subscriber's connection would be after taking all it can.
#[derive(Debug, PartialEq, Eq)]
enum State {
    Open,
    Finished,
    Aborted,
}

struct Client {
    subscriber: Arc<Subscriber>,
    framing: Arc<dyn Framing>,
}

impl Client {
    /// Everything queued for the socket now, and what follows it.
    fn take(&self) -> (String, State) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        loop {
            match self.subscriber.poll_next(&mut cx) {
                Poll::Ready(Next::Write(bytes)) => out.extend_from_slice(&bytes),
                Poll::Ready(Next::Finish) => return (text(out), State::Finished),
                Poll::Ready(Next::Abort) => return (text(out), State::Aborted),
                Poll::Pending => return (text(out), State::Open),
            }
        }
    }

    fn text(&self) -> String {
        self.take().0
    }
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn info(host_id: Option<&str>) -> SubscriberInfo {
    SubscriberInfo {
        host_id: host_id.map(|h| Bytes::copy_from_slice(h.as_bytes())),
        mode: "test".into(),
        transport: Transport::Legacy,
        credential: None,
        user: None,
        peer: None,
        since: std::time::SystemTime::now(),
    }
}

/// Options of one test subscription.
struct Ask<'a> {
    channels: &'a [(&'a str, Start)],
    persist: bool,
    merge: bool,
    max_messages: u64,
    host_id: Option<&'a str>,
}

impl<'a> Ask<'a> {
    fn live(channels: &'a [(&'a str, Start)]) -> Ask<'a> {
        Ask {
            channels,
            persist: true,
            merge: false,
            max_messages: 0,
            host_id: None,
        }
    }
}

fn subscribe(hub: &Hub, ask: Ask<'_>) -> Client {
    let framing: Arc<dyn Framing> = Arc::new(Plain);
    let subscriber = hub.new_subscriber(info(ask.host_id), framing.clone(), ask.max_messages);
    let channels: Vec<(Bytes, Start)> = ask
        .channels
        .iter()
        .map(|(name, start)| (Bytes::copy_from_slice(name.as_bytes()), *start))
        .collect();
    let subscribed = hub.subscribe(
        Subscription {
            subscriber: subscriber.clone(),
            channels: &channels,
            persist: ask.persist,
            max_time: None,
            expires: None,
            merge_backlog: ask.merge,
        },
        // The header names each channel with its message count.
        |snapshots, out| {
            for s in snapshots {
                out.extend_from_slice(&s.name);
                out.extend_from_slice(format!("({})", s.message_count).as_bytes());
            }
            out.push(b'|');
        },
    );
    subscribed.expect("the hub takes it");
    Client {
        subscriber,
        framing,
    }
}

fn publish(hub: &Hub, channel: &str, text: &str) -> u64 {
    hub.publish(channel.as_bytes(), Bytes::copy_from_slice(text.as_bytes()))
}

/// A message as a cluster or the disk hands it over, id and time set.
fn message(id: u64, channel: &'static str, text: &'static str, timestamp: u64) -> Message {
    Message {
        id,
        channel: Bytes::from_static(channel.as_bytes()),
        text: Bytes::from_static(text.as_bytes()),
        timestamp,
    }
}

fn texts(hub: &Hub, channel: &str) -> Vec<String> {
    hub.messages(channel.as_bytes())
        .iter()
        .map(|m| String::from_utf8(m.text.to_vec()).unwrap())
        .collect()
}

#[test]
fn ids_are_global_and_only_grow() {
    let hub = Hub::new(0, 3600);
    assert_eq!(publish(&hub, "a", "1"), 0);
    assert_eq!(publish(&hub, "b", "2"), 1);
    assert_eq!(publish(&hub, "a", "3"), 2);
    assert_eq!(hub.next_message_id(), 3);
    assert_eq!(hub.published(), 3);
    assert_eq!(texts(&hub, "a"), ["1", "3"]);
}

#[test]
fn backlog_specs_pick_where_a_subscription_starts() {
    let hub = Hub::new(0, 3600);
    for i in 0..5 {
        publish(&hub, "c", &format!("m{i}"));
    }
    let cases: [(Start, &str); 5] = [
        (Start::Live, "c(5)|"),
        (Start::All, "c(5)|0:c:m0;1:c:m1;2:c:m2;3:c:m3;4:c:m4;"),
        (Start::Last(2), "c(5)|3:c:m3;4:c:m4;"),
        (Start::FromId(3), "c(5)|3:c:m3;4:c:m4;"),
        (Start::FromId(99), "c(5)|"),
    ];
    for (start, expected) in cases {
        let client = subscribe(&hub, Ask::live(&[("c", start)]));
        assert_eq!(client.text(), expected, "{start:?}");
    }
    // Live messages follow the backlog, in order.
    let client = subscribe(&hub, Ask::live(&[("c", Start::Last(1))]));
    publish(&hub, "c", "m5");
    assert_eq!(client.take(), ("c(5)|4:c:m4;5:c:m5;".into(), State::Open));
}

#[test]
fn legacy_backlogs_go_channel_by_channel_modern_ones_by_id() {
    let hub = Hub::new(0, 3600);
    publish(&hub, "a", "x"); // 0
    publish(&hub, "b", "y"); // 1
    publish(&hub, "a", "z"); // 2
    let both = [("b", Start::All), ("a", Start::All)];
    let legacy = subscribe(&hub, Ask::live(&both));
    assert_eq!(legacy.text(), "b(1)a(2)|1:b:y;0:a:x;2:a:z;");
    let modern = subscribe(
        &hub,
        Ask {
            merge: true,
            ..Ask::live(&both)
        },
    );
    assert_eq!(modern.text(), "b(1)a(2)|0:a:x;1:b:y;2:a:z;");
    // Live messages of several channels arrive in id order.
    publish(&hub, "a", "p");
    publish(&hub, "b", "q");
    assert_eq!(modern.text(), "3:a:p;4:b:q;");
}

#[test]
fn a_channel_named_twice_uses_its_last_start() {
    let hub = Hub::new(0, 3600);
    publish(&hub, "a", "x");
    let client = subscribe(&hub, Ask::live(&[("a", Start::Live), ("a", Start::All)]));
    assert_eq!(client.text(), "a(1)|0:a:x;");
    assert_eq!(hub.count_subscribers(b"a"), 1);
}

#[test]
fn caches_keep_their_limit() {
    let hub = Hub::new(3, 3600);
    for i in 0..5 {
        publish(&hub, "c", &i.to_string());
    }
    assert_eq!(texts(&hub, "c"), ["2", "3", "4"]);
    // A smaller global limit applies from the next publish.
    hub.set_limits(2, 3600);
    publish(&hub, "c", "5");
    assert_eq!(texts(&hub, "c"), ["4", "5"]);
}

#[test]
fn rules_override_limits_and_trim_at_once() {
    let hub = Hub::new(10, 3600);
    for i in 0..6 {
        publish(&hub, "chat.a", &i.to_string());
        publish(&hub, "news", &i.to_string());
    }
    let mut rule = ChannelRule::new("chat.*");
    rule.max_messages = Some(2);
    hub.set_rules(ChannelRules::new(vec![rule]));
    assert_eq!(texts(&hub, "chat.a"), ["4", "5"]);
    assert_eq!(texts(&hub, "news").len(), 6);
    assert_eq!(hub.limits_for(b"chat.b"), (2, 3600));
    assert_eq!(hub.limits_for(b"news"), (10, 3600));
    publish(&hub, "chat.a", "6");
    assert_eq!(texts(&hub, "chat.a"), ["5", "6"]);
    assert_eq!(hub.rule_for(b"chat.x").unwrap().pattern, "chat.*");
    assert!(hub.rule_for(b"chatx").is_none());
}

#[test]
fn old_messages_age_out_and_idle_channels_go() {
    let hub = Hub::new(0, 60);
    let (now, old) = (unix_now(), unix_now() - 120);
    hub.restore(
        [
            message(0, "old", "t", old),
            message(1, "mixed", "t", old),
            message(2, "mixed", "t", now),
            message(3, "ruled", "t", now - 45),
        ],
        4,
    );
    assert_eq!(hub.next_message_id(), 4);
    assert_eq!(hub.channel_count(), 3);
    hub.trim_by_age();
    assert_eq!(hub.channel_count(), 2, "a channel left empty is dropped");
    assert_eq!(hub.messages(b"mixed").len(), 1);
    assert_eq!(hub.messages(b"ruled").len(), 1);
    // A rule's own age applies to its channels.
    let mut rule = ChannelRule::new("ruled");
    rule.max_age = Some(30);
    hub.set_rules(ChannelRules::new(vec![rule]));
    hub.trim_by_age();
    assert!(hub.messages(b"ruled").is_empty());
    assert_eq!(hub.channel_count(), 1);
}

#[test]
fn a_channel_with_a_subscriber_stays_when_empty() {
    let hub = Hub::new(0, 3600);
    let client = subscribe(&hub, Ask::live(&[("quiet", Start::Live)]));
    assert_eq!(hub.channel_count(), 1);
    assert_eq!(hub.clear_channel(b"quiet"), Some(0));
    assert_eq!(hub.channel_count(), 1);
    hub.unsubscribe(client.subscriber.id);
    assert_eq!(hub.channel_count(), 0, "no message, no subscriber: gone");
    assert_eq!(hub.clear_channel(b"quiet"), None);
}

#[test]
fn max_messages_ends_a_subscription_after_its_backlog() {
    let hub = Hub::new(0, 3600);
    publish(&hub, "a", "1");
    publish(&hub, "a", "2");
    // The whole backlog goes out, then the limit closes it.
    let client = subscribe(
        &hub,
        Ask {
            max_messages: 1,
            ..Ask::live(&[("a", Start::All)])
        },
    );
    assert_eq!(client.take(), ("a(2)|0:a:1;1:a:2;".into(), State::Finished));
    // Live: the limit closes it after the first message.
    let client = subscribe(
        &hub,
        Ask {
            max_messages: 1,
            ..Ask::live(&[("a", Start::Live)])
        },
    );
    publish(&hub, "a", "3");
    publish(&hub, "a", "4");
    assert_eq!(client.take(), ("a(2)|2:a:3;".into(), State::Finished));
}

#[test]
fn a_subscription_that_does_not_persist_ends_after_its_backlog() {
    let hub = Hub::new(0, 3600);
    publish(&hub, "a", "1");
    let client = subscribe(
        &hub,
        Ask {
            persist: false,
            ..Ask::live(&[("a", Start::All)])
        },
    );
    assert_eq!(client.take(), ("a(1)|0:a:1;".into(), State::Finished));
    assert_eq!(hub.subscriber_count(), 0);
}

#[test]
fn a_host_id_replaces_its_older_subscription_and_can_be_kicked() {
    let hub = Hub::new(0, 3600);
    let first = subscribe(
        &hub,
        Ask {
            host_id: Some("h1"),
            ..Ask::live(&[("a", Start::Live)])
        },
    );
    let second = subscribe(
        &hub,
        Ask {
            host_id: Some("h1"),
            ..Ask::live(&[("a", Start::Live)])
        },
    );
    assert_eq!(first.take(), ("a(0)|R".into(), State::Finished));
    assert_eq!(hub.count_subscribers(b"a"), 1);
    assert!(!hub.kick(b"nobody", None));
    assert!(hub.kick(b"h1", None));
    assert_eq!(second.take(), ("a(0)|D".into(), State::Finished));
    assert_eq!(hub.count_subscribers(b"a"), 0);
    assert!(!hub.kick(b"h1", None), "kicked once only");
}

#[test]
fn thousands_of_host_ids_stay_apart_as_their_index_grows() {
    let hub = Hub::new(0, 3600);
    let names: Vec<String> = (0..2000).map(|i| format!("host{i}")).collect();
    let clients: Vec<Client> = names
        .iter()
        .map(|name| {
            subscribe(
                &hub,
                Ask {
                    host_id: Some(name),
                    ..Ask::live(&[("a", Start::Live)])
                },
            )
        })
        .collect();
    assert_eq!(hub.count_subscribers(b"a"), 2000);
    // Every other one leaves on its own; the rest are kicked by host id.
    for client in clients.iter().step_by(2) {
        hub.unsubscribe(client.subscriber.id);
    }
    for (i, name) in names.iter().enumerate() {
        assert_eq!(hub.kick(name.as_bytes(), None), i % 2 == 1, "{name}");
    }
    assert_eq!(hub.count_subscribers(b"a"), 0);
    assert_eq!(clients[1].take(), ("a(0)|D".into(), State::Finished));
}

#[test]
fn channels_join_and_leave_a_live_subscription() {
    let hub = Hub::new(0, 3600);
    publish(&hub, "b", "old");
    let client = subscribe(&hub, Ask::live(&[]));
    assert_eq!(client.text(), "|");
    let announce = |s: &ChannelSnapshot, out: &mut Vec<u8>| {
        out.extend_from_slice(
            format!("+{}[{:?}]", String::from_utf8_lossy(&s.name), s.last_id).as_bytes(),
        )
    };
    let b = Bytes::from_static(b"b");
    assert_eq!(
        hub.attach_channel(&client.subscriber, &b, Start::All, announce),
        Ok(())
    );
    assert_eq!(
        hub.attach_channel(&client.subscriber, &b, Start::All, announce),
        Err(Refused::AlreadySubscribed)
    );
    assert_eq!(hub.subscriber_channels(client.subscriber.id), 1);
    publish(&hub, "b", "new");
    assert_eq!(client.text(), "+b[Some(0)]0:b:old;1:b:new;");
    assert!(hub.detach_channel(&client.subscriber, b"b"));
    assert!(!hub.detach_channel(&client.subscriber, b"b"));
    publish(&hub, "b", "unseen");
    assert_eq!(client.take(), (String::new(), State::Open));
    let _ = &client.framing;
}

#[test]
fn applied_messages_are_delivered_once_in_order() {
    let hub = Hub::new(0, 3600);
    let client = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    let message = |id, text| message(id, "a", text, unix_now());
    assert_eq!(hub.apply([message(5, "five"), message(7, "seven")]), 2);
    // The same messages again (a cluster's log read twice): skipped.
    assert_eq!(hub.apply([message(5, "five"), message(7, "seven")]), 0);
    assert_eq!(client.text(), "a(0)|5:a:five;7:a:seven;");
    assert_eq!(hub.next_message_id(), 8);
    // A local publish continues after the applied ids.
    assert_eq!(publish(&hub, "a", "local"), 8);
}

#[test]
fn resync_makes_the_caches_equal_to_the_shared_store() {
    let hub = Hub::new(0, 3600);
    publish(&hub, "a", "0");
    publish(&hub, "gone", "1");
    let client = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    let message = |id, text| message(id, "a", text, unix_now());
    // The store has a's first message and two newer ones; "gone" is gone.
    let fresh = hub.resync(vec![(
        Bytes::from_static(b"a"),
        vec![message(0, "0"), message(4, "four"), message(5, "five")],
    )]);
    assert_eq!(fresh, 2);
    assert_eq!(texts(&hub, "a"), ["0", "four", "five"]);
    assert!(hub.messages(b"gone").is_empty());
    assert_eq!(client.text(), "a(1)|4:a:four;5:a:five;");
    assert_eq!(hub.next_message_id(), 6);
}

#[test]
fn persistence_sees_what_changed() {
    let hub = Hub::new(0, 3600);
    struct Reserve(std::sync::Mutex<Vec<u64>>);
    impl IdReserve for Reserve {
        fn reserve(&self, upto: u64) -> std::io::Result<()> {
            self.0.lock().unwrap().push(upto);
            Ok(())
        }
    }
    let reserve = Arc::new(Reserve(Default::default()));
    hub.persist(reserve.clone(), None);
    assert_eq!(*reserve.0.lock().unwrap(), [ID_BLOCK]);
    publish(&hub, "a", "1");
    publish(&hub, "a", "2");
    let mut rule = ChannelRule::new("secret");
    rule.persist = Some(false);
    hub.set_rules(ChannelRules::new(vec![rule]));
    publish(&hub, "secret", "3");
    let (changed, next) = hub.take_changes(false);
    assert_eq!(next, 3);
    let names: Vec<(&[u8], usize, bool)> = changed
        .iter()
        .map(|c| (c.name.as_ref(), c.messages.len(), c.persist))
        .collect();
    assert_eq!(names, [(&b"a"[..], 2, true), (&b"secret"[..], 1, false)]);
    assert!(hub.take_changes(false).0.is_empty(), "nothing new");
    assert_eq!(hub.take_changes(true).0.len(), 2, "all of them when asked");
}

#[test]
fn stats_count_messages_and_subscribers_by_transport() {
    let hub = Hub::new(0, 3600);
    let client = subscribe(&hub, Ask::live(&[("a", Start::Live)]));
    publish(&hub, "a", "1");
    client.text();
    assert_eq!(hub.stats.get(Stat::UniqueMessages), 1);
    assert_eq!(hub.stats.get(Stat::MessagesServed), 1);
    assert_eq!(
        hub.subscribers_by_transport().get(&Transport::Legacy),
        Some(&1)
    );
    let summary = &hub.list_channels()[0];
    assert_eq!(
        (summary.messages, summary.subscribers, summary.last_id),
        (1, 1, Some(0))
    );
    assert_eq!(hub.channel_subscribers(b"a")[0].0, client.subscriber.id);
    assert!(hub.kick_subscriber(client.subscriber.id));
    assert_eq!(hub.subscriber_count(), 0);
}

#[test]
fn subscriptions_are_bounded_in_channels() {
    let hub = Hub::new(0, 3600);
    hub.set_channel_limits(ChannelLimits {
        per_subscription: 3,
        total: 5,
    });
    publish(&hub, "news", "x");
    let framing: Arc<dyn Framing> = Arc::new(Plain);
    let ask = |names: &[&str]| {
        let channels: Vec<(Bytes, Start)> = names
            .iter()
            .map(|n| (Bytes::copy_from_slice(n.as_bytes()), Start::Live))
            .collect();
        let subscriber = hub.new_subscriber(info(None), framing.clone(), 0);
        let answer = hub.subscribe(
            Subscription {
                subscriber: subscriber.clone(),
                channels: &channels,
                persist: true,
                max_time: None,
                expires: None,
                merge_backlog: false,
            },
            |_, _| {},
        );
        (answer, subscriber)
    };
    assert_eq!(
        ask(&["a", "b", "c", "d"]).0,
        Err(Refused::TooManyChannels(3))
    );
    // A name given twice counts twice: the cap bounds the work.
    let many: Vec<&str> = std::iter::repeat_n("a", 2).chain(["b", "c"]).collect();
    assert_eq!(ask(&many).0, Err(Refused::TooManyChannels(3)));
    let (ok, first) = ask(&["a", "b", "c"]);
    assert_eq!(ok, Ok(()));
    assert_eq!(hub.channel_count(), 4);
    // One more new channel fits, two do not; existing ones always do.
    assert_eq!(ask(&["e", "f"]).0, Err(Refused::ChannelLimit));
    assert_eq!(ask(&["news", "a"]).0, Ok(()));
    let b = Bytes::from_static(b"zz");
    assert_eq!(
        hub.attach_channel(&first, &b, Start::Live, |_, _| {}),
        Err(Refused::TooManyChannels(3))
    );
    // Publishing is never refused.
    for i in 0..10 {
        publish(&hub, &format!("p{i}"), "x");
    }
    assert_eq!(hub.channel_count(), 14);
}

#[test]
fn a_host_id_answers_only_to_its_own_credential() {
    let hub = Hub::new(0, 3600);
    let framing: Arc<dyn Framing> = Arc::new(Plain);
    let join = |credential: Option<u64>| {
        let mut info = info(Some("h1"));
        info.credential = credential;
        let subscriber = hub.new_subscriber(info, framing.clone(), 0);
        let subscribed = hub.subscribe(
            Subscription {
                subscriber: subscriber.clone(),
                channels: &[(Bytes::from_static(b"a"), Start::Live)],
                persist: true,
                max_time: None,
                expires: None,
                merge_backlog: false,
            },
            |_, _| {},
        );
        assert_eq!(subscribed, Ok(()));
        subscriber
    };
    let holder = join(Some(7));
    // Another credential (or none) with the same host id replaces nothing.
    let stranger = join(None);
    assert!(holder.is_open() && stranger.is_open());
    assert!(
        !hub.kick(b"h1", None),
        "an anonymous kick misses the holder"
    );
    assert!(!hub.kick(b"h1", Some(8)));
    assert!(holder.is_open());
    // The same credential replaces and kicks.
    let again = join(Some(7));
    assert!(!holder.is_open());
    assert!(hub.kick(b"h1", Some(7)));
    assert!(!again.is_open());
    assert!(stranger.is_open());
}
