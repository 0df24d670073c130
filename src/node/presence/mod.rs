//! Presence: who is in each channel now, told to whoever asks.
//!
//! The hub reports every subscriber attached to or detached from a channel
//! (under its lock, so only a channel send); one task applies the reports
//! to the [`Tracker`] in order, ends grace periods on time, and passes each
//! event on: to the connections watching the channel's presence (WebSocket
//! `"presence": true`, SSE `?presence=1`) and to the webhooks. With the
//! redis engine `shared.rs` trades member lists with the other nodes.

mod shared;
mod tracker;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use tracker::{Arrival, LocalConnections, Tracker};
pub use tracker::{Change, Connection, Event, Member, MemberKey};

use super::Node;
use crate::config::WebhookEvent;
use crate::hub::presence::Notice;
use crate::hub::{Hub, Subscriber};

/// How a watching connection wants presence written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// JSON lines with a `type` (one text frame each).
    WebSocket,
    /// `event: <type>` and a `data:` line of JSON.
    Sse,
}

struct Watcher {
    subscriber: Arc<Subscriber>,
    style: Style,
}

enum Request {
    Hub(Notice),
    Watch {
        channel: Bytes,
        subscriber: Arc<Subscriber>,
        style: Style,
    },
}

#[derive(Default)]
struct Inner {
    tracker: Tracker,
    watchers: HashMap<Bytes, Vec<Watcher>>,
}

/// The node's presence.
pub struct Presence {
    inner: Mutex<Inner>,
    inbox: UnboundedSender<Request>,
    receiver: Mutex<Option<UnboundedReceiver<Request>>>,
    /// This node's name, in each connection's `node`.
    node_name: String,
    /// Keys the public ids of anonymous members (their host ids stay
    /// private: a host id can end a legacy subscription).
    salt: RandomState,
}

impl Presence {
    /// Presence fed by `hub`'s reports.
    pub fn new(hub: &Hub, node_name: &str, grace: std::time::Duration) -> Presence {
        let (inbox, receiver) = unbounded_channel();
        let report = inbox.clone();
        hub.report_presence(move |notice| {
            let _ = report.send(Request::Hub(notice));
        });
        Presence {
            inner: Mutex::new(Inner {
                tracker: Tracker::new(node_name, grace),
                watchers: HashMap::new(),
            }),
            inbox,
            receiver: Mutex::new(Some(receiver)),
            node_name: node_name.to_string(),
            salt: RandomState::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Send `subscriber` the channel's members now, then every join and
    /// leave, for as long as it is subscribed to the channel.
    pub fn watch(&self, channel: Bytes, subscriber: Arc<Subscriber>, style: Style) {
        let _ = self.inbox.send(Request::Watch {
            channel,
            subscriber,
            style,
        });
    }

    /// The members of a channel, over every node, earliest first, with
    /// their connections (this node's read from `hub`).
    pub fn members(&self, hub: &Hub, channel: &[u8]) -> Vec<Member> {
        let local = self.local_connections(hub, channel);
        self.lock().tracker.members(channel, &local)
    }

    /// How many members a channel has, over every node.
    pub fn count(&self, channel: &[u8]) -> usize {
        self.lock().tracker.count(channel)
    }

    /// This node's connections in a channel, by member (from the hub).
    fn local_connections(&self, hub: &Hub, channel: &[u8]) -> LocalConnections {
        let mut local = LocalConnections::new();
        for subscriber in hub.channel_members(channel) {
            let arrival = self.arrival(&subscriber);
            local
                .entry(arrival.key)
                .or_default()
                .push(arrival.connection);
        }
        local
    }

    /// The id a subscriber sees for a member: a user's own name, or for an
    /// anonymous member a digest that reveals nothing of its host id.
    pub fn public_id(&self, member: &Member) -> String {
        match &member.user {
            Some(user) => format!("user:{user}"),
            None => format!("anon:{:016x}", self.salt.hash_one(&member.key)),
        }
    }

    /// A member as subscribers see it.
    pub fn public_member(&self, member: &Member) -> Value {
        json!({
            "id": self.public_id(member),
            "user": member.user,
            "since": member.since,
        })
    }

    /// Who a subscriber is as a member.
    fn key_of(subscriber: &Subscriber) -> MemberKey {
        let info = &subscriber.info;
        match (&info.user, &info.host_id) {
            (Some(user), _) => MemberKey::User(Arc::from(user.as_str())),
            (None, Some(host)) => MemberKey::Host(host.clone()),
            (None, None) => MemberKey::Connection(subscriber.id),
        }
    }

    fn arrival(&self, subscriber: &Subscriber) -> Arrival {
        let info = &subscriber.info;
        Arrival {
            key: Self::key_of(subscriber),
            connection: Connection {
                host_id: info
                    .host_id
                    .as_ref()
                    .map(|h| String::from_utf8_lossy(h).into_owned()),
                transport: info.transport,
                node: self.node_name.clone(),
                since: info
                    .since
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            },
        }
    }

    /// Apply one request; the events it caused.
    fn apply(&self, request: Request) -> Vec<Event> {
        let mut inner = self.lock();
        match request {
            Request::Hub(Notice::Attached {
                channel,
                subscriber,
            }) => {
                let arrival = self.arrival(&subscriber);
                inner.tracker.attach(&channel, arrival)
            }
            Request::Hub(Notice::Detached {
                channel,
                subscriber,
            }) => {
                if let Some(list) = inner.watchers.get_mut(&channel) {
                    list.retain(|w| w.subscriber.id != subscriber.id);
                    if list.is_empty() {
                        inner.watchers.remove(&channel);
                    }
                }
                let key = Self::key_of(&subscriber);
                inner.tracker.detach(&channel, &key, Instant::now())
            }
            Request::Watch {
                channel,
                subscriber,
                style,
            } => {
                // Subscribers see ids, users and times: no connections.
                let members: Vec<Value> = inner
                    .tracker
                    .members(&channel, &LocalConnections::new())
                    .iter()
                    .map(|m| self.public_member(m))
                    .collect();
                let body = json!({
                    "channel": String::from_utf8_lossy(&channel),
                    "members": members,
                });
                if subscriber.push_raw(&render(style, "presence", &body)) {
                    inner
                        .watchers
                        .entry(channel)
                        .or_default()
                        .push(Watcher { subscriber, style });
                }
                Vec::new()
            }
        }
    }

    /// Tell the watchers of each event's channel.
    fn tell_watchers(&self, events: &[Event]) {
        let inner = self.lock();
        for event in events {
            let (kind, member) = match &event.change {
                Change::Joined(m) => ("join", m),
                Change::Left(m) => ("leave", m),
                Change::Occupied | Change::Vacated => continue,
            };
            let Some(watchers) = inner.watchers.get(&event.channel) else {
                continue;
            };
            let body = json!({
                "channel": String::from_utf8_lossy(&event.channel),
                "member": self.public_member(member),
            });
            let ws = render(Style::WebSocket, kind, &body);
            let sse = render(Style::Sse, kind, &body);
            for watcher in watchers {
                watcher.subscriber.push_raw(match watcher.style {
                    Style::WebSocket => &ws,
                    Style::Sse => &sse,
                });
            }
        }
    }
}

/// One presence line in a watcher's style.
fn render(style: Style, kind: &str, body: &Value) -> Vec<u8> {
    match style {
        Style::WebSocket => {
            let mut object = body.as_object().cloned().unwrap_or_default();
            object.insert("type".into(), json!(kind));
            let mut line = serde_json::to_vec(&object).unwrap_or_default();
            line.push(b'\n');
            line
        }
        Style::Sse => format!("event: {kind}\ndata: {body}\n\n").into_bytes(),
    }
}

/// A member as the application sees it in a webhook (host ids included).
pub fn member_detail(member: &Member) -> Value {
    json!({
        "key": member.key,
        "user": member.user,
        "since": member.since,
        "connections": member.connections,
    })
}

impl Node {
    /// Does this node send the cluster-wide events (presence webhooks)?
    /// Alone, yes; with the redis engine, the first node that is up.
    pub fn sends_cluster_events(&self) -> bool {
        self.cluster().is_none_or(|c| c.is_leader())
    }

    /// Pass events on: watchers here, and the webhooks if this node sends
    /// them.
    fn dispatch(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        self.presence.tell_watchers(&events);
        if !self.sends_cluster_events() {
            return;
        }
        for event in events {
            let (kind, detail) = match event.change {
                Change::Occupied => (WebhookEvent::ChannelOccupied, Map::new()),
                Change::Vacated => (WebhookEvent::ChannelVacated, Map::new()),
                Change::Joined(m) => (WebhookEvent::MemberJoined, member_map(&m)),
                Change::Left(m) => (WebhookEvent::MemberLeft, member_map(&m)),
            };
            self.emit_webhook(kind, &event.channel, detail);
        }
    }
}

fn member_map(member: &Member) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("member".into(), member_detail(member));
    map
}

/// Apply the hub's reports and end grace periods, until shutdown.
pub async fn run(node: Arc<Node>) {
    let Some(mut receiver) = super::take_once(&node.presence.receiver) else {
        return;
    };
    if let Some(cluster) = node.cluster().cloned() {
        node.tasks
            .spawn(shared::run(node.clone(), cluster, node.shutdown.clone()));
    }
    loop {
        let deadline = node.presence.lock().tracker.next_deadline();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            request = receiver.recv() => {
                let Some(request) = request else { break };
                let events = node.presence.apply(request);
                node.dispatch(events);
            }
            _ = sleep => {
                let events = node.presence.lock().tracker.expire(Instant::now());
                node.dispatch(events);
            }
        }
    }
}

impl Presence {
    /// The grace period changed (configuration reload).
    pub fn set_grace(&self, grace: std::time::Duration) {
        self.lock().tracker.set_grace(grace);
    }
}
