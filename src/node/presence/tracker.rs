//! Presence as a state machine, without tasks or sockets: connections come
//! and go on this node, other nodes' member lists arrive, and out come the
//! members of a channel and the events — join, leave, occupied, vacated —
//! in the order they happened.
//!
//! A member is a user (`sub` of their token), counted once however many
//! connections they hold; an anonymous subscriber is a member of its own,
//! by host id (a reconnecting client keeps it) or else by connection. A
//! member whose last connection on this node closes stays for a grace
//! period, so that a reload or a long-poll reconnect is neither a leave nor
//! a join. Members held by other nodes count too: a member leaves only when
//! no node holds it (their lists already went through their own grace).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::hub::Transport;

/// One connection of a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub host_id: Option<String>,
    pub transport: Transport,
    pub node: String,
    /// Milliseconds since the Unix epoch.
    pub since: u64,
}

/// A member of a channel, as listed (and as nodes share it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Who it is: `user:<sub>`, `host:<host id>` or `conn:<node>:<n>`.
    pub key: String,
    pub user: Option<String>,
    /// When its first connection came (milliseconds since the epoch).
    pub since: u64,
    /// Empty while it is leaving (its grace period).
    pub connections: Vec<Connection>,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The channel has a member again.
    Occupied,
    Joined(Member),
    Left(Member),
    /// Its last member left.
    Vacated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub channel: Bytes,
    pub change: Change,
}

/// A connection arriving on this node.
pub struct Arrival {
    /// The hub's subscriber id.
    pub id: u64,
    pub key: String,
    pub user: Option<String>,
    pub connection: Connection,
}

struct LocalMember {
    member: Member,
    /// The hub's subscriber ids, one per connection (same order).
    ids: Vec<u64>,
    /// When it leaves, unless a connection comes back first.
    leaving_at: Option<Instant>,
}

#[derive(Default)]
struct LocalChannel {
    members: HashMap<String, LocalMember>,
    /// Subscriber id → member key.
    by_id: HashMap<u64, String>,
}

/// What other nodes hold: channel → member key → member.
pub type Remote = HashMap<Bytes, HashMap<String, Member>>;

#[derive(Default)]
pub struct Tracker {
    grace: Duration,
    local: HashMap<Bytes, LocalChannel>,
    remote: HashMap<String, Remote>,
    /// Members in their grace period, soonest first (stale entries are
    /// skipped when they come up).
    leaving: BinaryHeap<Reverse<(Instant, Bytes, String)>>,
    /// Channels whose local members changed since [`Tracker::take_changed`].
    changed: HashSet<Bytes>,
}

impl Tracker {
    pub fn new(grace: Duration) -> Tracker {
        Tracker {
            grace,
            ..Tracker::default()
        }
    }

    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    fn present(&self, channel: &[u8], key: &str) -> bool {
        self.local
            .get(channel)
            .is_some_and(|c| c.members.contains_key(key))
            || self
                .remote
                .values()
                .any(|r| r.get(channel).is_some_and(|m| m.contains_key(key)))
    }

    fn occupied(&self, channel: &[u8]) -> bool {
        self.local
            .get(channel)
            .is_some_and(|c| !c.members.is_empty())
            || self
                .remote
                .values()
                .any(|r| r.get(channel).is_some_and(|m| !m.is_empty()))
    }

    /// A connection attached to `channel`.
    pub fn attach(&mut self, channel: &Bytes, arrival: Arrival) -> Vec<Event> {
        let was = self.present(channel, &arrival.key);
        let was_occupied = self.occupied(channel);
        let local = self.local.entry(channel.clone()).or_default();
        local.by_id.insert(arrival.id, arrival.key.clone());
        let entry = local
            .members
            .entry(arrival.key.clone())
            .or_insert_with(|| LocalMember {
                member: Member {
                    key: arrival.key.clone(),
                    user: arrival.user.clone(),
                    since: arrival.connection.since,
                    connections: Vec::new(),
                },
                ids: Vec::new(),
                leaving_at: None,
            });
        entry.leaving_at = None;
        entry.ids.push(arrival.id);
        entry.member.connections.push(arrival.connection);
        self.changed.insert(channel.clone());
        let mut events = Vec::new();
        if !was_occupied {
            events.push(event(channel, Change::Occupied));
        }
        if !was {
            let member = self.merged(channel, &arrival.key);
            events.extend(member.map(|m| event(channel, Change::Joined(m))));
        }
        events
    }

    /// A connection detached from `channel`. Its member, if that was its
    /// last connection here, leaves after the grace period (now, without
    /// one).
    pub fn detach(&mut self, channel: &Bytes, id: u64, now: Instant) -> Vec<Event> {
        let Some(local) = self.local.get_mut(channel) else {
            return Vec::new();
        };
        let Some(key) = local.by_id.remove(&id) else {
            return Vec::new();
        };
        let Some(entry) = local.members.get_mut(&key) else {
            return Vec::new();
        };
        if let Some(i) = entry.ids.iter().position(|&x| x == id) {
            entry.ids.remove(i);
            entry.member.connections.remove(i);
        }
        self.changed.insert(channel.clone());
        if !entry.ids.is_empty() {
            return Vec::new();
        }
        if self.grace.is_zero() {
            return self.leave_now(channel, &key);
        }
        let at = now + self.grace;
        entry.leaving_at = Some(at);
        self.leaving.push(Reverse((at, channel.clone(), key)));
        Vec::new()
    }

    /// When the next member's grace period ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.leaving.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Members whose grace period is over leave.
    pub fn expire(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(Reverse((at, _, _))) = self.leaving.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, channel, key))) = self.leaving.pop() else {
                break;
            };
            let due = self
                .local
                .get(&channel)
                .and_then(|c| c.members.get(&key))
                .is_some_and(|m| m.leaving_at == Some(at));
            if due {
                events.extend(self.leave_now(&channel, &key));
            }
        }
        events
    }

    fn leave_now(&mut self, channel: &Bytes, key: &str) -> Vec<Event> {
        let last = self.merged(channel, key);
        let Some(local) = self.local.get_mut(channel) else {
            return Vec::new();
        };
        local.members.remove(key);
        if local.members.is_empty() {
            self.local.remove(channel);
        }
        self.changed.insert(channel.clone());
        let mut events = Vec::new();
        if !self.present(channel, key) {
            if let Some(mut member) = last {
                member.connections.clear();
                events.push(event(channel, Change::Left(member)));
            }
            if !self.occupied(channel) {
                events.push(event(channel, Change::Vacated));
            }
        }
        events
    }

    /// Another node's members replace what it held before.
    pub fn set_remote(&mut self, node: &str, members: Remote) -> Vec<Event> {
        let old = self.remote.remove(node).unwrap_or_default();
        let mut channels: Vec<Bytes> = old.keys().chain(members.keys()).cloned().collect();
        channels.sort();
        channels.dedup();
        // Who was present before, per channel, with the old lists in place.
        self.remote.insert(node.to_string(), old);
        let mut before = Vec::with_capacity(channels.len());
        for channel in &channels {
            let keys = self.keys_touched(node, channel, &members);
            let was: Vec<(String, Option<Member>)> = keys
                .into_iter()
                .map(|k| {
                    let m = self.merged(channel, &k);
                    (k, m)
                })
                .collect();
            before.push((self.occupied(channel), was));
        }
        self.remote.insert(node.to_string(), members);
        let mut events = Vec::new();
        for (channel, (was_occupied, was)) in channels.iter().zip(before) {
            let is_occupied = self.occupied(channel);
            if !was_occupied && is_occupied {
                events.push(event(channel, Change::Occupied));
            }
            for (key, old) in was {
                let now = self.merged(channel, &key);
                match (old, now) {
                    (None, Some(member)) => events.push(event(channel, Change::Joined(member))),
                    (Some(mut member), None) => {
                        member.connections.clear();
                        events.push(event(channel, Change::Left(member)));
                    }
                    _ => {}
                }
            }
            if was_occupied && !is_occupied {
                events.push(event(channel, Change::Vacated));
            }
        }
        events
    }

    /// The member keys a node's old or new list names in a channel.
    fn keys_touched(&self, node: &str, channel: &Bytes, new: &Remote) -> Vec<String> {
        let mut keys: Vec<String> = self
            .remote
            .get(node)
            .and_then(|r| r.get(channel))
            .into_iter()
            .chain(new.get(channel))
            .flat_map(|m| m.keys().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// A node is gone: its members leave (unless held elsewhere).
    pub fn drop_remote(&mut self, node: &str) -> Vec<Event> {
        if !self.remote.contains_key(node) {
            return Vec::new();
        }
        self.set_remote(node, Remote::new())
    }

    /// The nodes whose members are counted.
    pub fn remote_nodes(&self) -> Vec<String> {
        self.remote.keys().cloned().collect()
    }

    /// One member of a channel, merged over every node.
    fn merged(&self, channel: &[u8], key: &str) -> Option<Member> {
        let local = self
            .local
            .get(channel)
            .and_then(|c| c.members.get(key))
            .map(|m| &m.member);
        let mut remote = self
            .remote
            .values()
            .filter_map(|r| r.get(channel).and_then(|m| m.get(key)));
        let mut member = local.or_else(|| remote.next())?.clone();
        let local_first = local.is_some();
        let rest: Vec<&Member> = if local_first {
            self.remote
                .values()
                .filter_map(|r| r.get(channel).and_then(|m| m.get(key)))
                .collect()
        } else {
            remote.collect()
        };
        for other in rest {
            member.since = member.since.min(other.since);
            member.connections.extend(other.connections.iter().cloned());
        }
        Some(member)
    }

    /// Every member of a channel (over every node), earliest first.
    pub fn members(&self, channel: &[u8]) -> Vec<Member> {
        let mut keys: Vec<&String> = self
            .local
            .get(channel)
            .into_iter()
            .flat_map(|c| c.members.keys())
            .chain(
                self.remote
                    .values()
                    .filter_map(|r| r.get(channel))
                    .flat_map(|m| m.keys()),
            )
            .collect();
        keys.sort();
        keys.dedup();
        let mut members: Vec<Member> = keys
            .into_iter()
            .filter_map(|k| self.merged(channel, k))
            .collect();
        members.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.key.cmp(&b.key)));
        members
    }

    /// The members this node holds in a channel (what it shares).
    pub fn local_members(&self, channel: &[u8]) -> Vec<Member> {
        self.local
            .get(channel)
            .map(|c| c.members.values().map(|m| m.member.clone()).collect())
            .unwrap_or_default()
    }

    /// Every channel this node holds members in.
    pub fn local_channels(&self) -> Vec<Bytes> {
        self.local.keys().cloned().collect()
    }

    /// The channels whose local members changed since the last call.
    pub fn take_changed(&mut self) -> Vec<Bytes> {
        self.changed.drain().collect()
    }

    /// Channels with at least one member, with how many (over every node).
    pub fn occupied_channels(&self) -> Vec<(Bytes, usize)> {
        let mut names: Vec<&Bytes> = self
            .local
            .keys()
            .chain(self.remote.values().flat_map(|r| r.keys()))
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| (n.clone(), self.members(n).len()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

fn event(channel: &Bytes, change: Change) -> Event {
    Event {
        channel: channel.clone(),
        change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(id: u64, key: &str, node: &str) -> Arrival {
        Arrival {
            id,
            key: key.to_string(),
            user: key.strip_prefix("user:").map(str::to_string),
            connection: Connection {
                host_id: None,
                transport: Transport::WebSocket,
                node: node.to_string(),
                since: id,
            },
        }
    }

    fn names(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match &e.change {
                Change::Occupied => "occupied".to_string(),
                Change::Vacated => "vacated".to_string(),
                Change::Joined(m) => format!("join {}", m.key),
                Change::Left(m) => format!("leave {}", m.key),
            })
            .collect()
    }

    #[test]
    fn a_user_with_two_tabs_joins_once_and_leaves_after_the_grace() {
        let room = Bytes::from_static(b"room");
        let mut t = Tracker::new(Duration::from_secs(5));
        let now = Instant::now();
        assert_eq!(
            names(&t.attach(&room, arrival(1, "user:alice", "a"))),
            ["occupied", "join user:alice"]
        );
        assert!(t.attach(&room, arrival(2, "user:alice", "a")).is_empty());
        assert_eq!(t.members(b"room")[0].connections.len(), 2);
        assert!(t.detach(&room, 1, now).is_empty());
        assert!(t.detach(&room, 2, now).is_empty());
        // Still present during the grace period, with no connection.
        assert_eq!(t.members(b"room").len(), 1);
        assert!(t.expire(now + Duration::from_secs(4)).is_empty());
        assert_eq!(
            names(&t.expire(now + Duration::from_secs(5))),
            ["leave user:alice", "vacated"]
        );
        assert!(t.members(b"room").is_empty());
    }

    #[test]
    fn coming_back_within_the_grace_is_no_event() {
        let room = Bytes::from_static(b"room");
        let mut t = Tracker::new(Duration::from_secs(5));
        let now = Instant::now();
        t.attach(&room, arrival(1, "host:h1", "a"));
        t.detach(&room, 1, now);
        assert!(t.attach(&room, arrival(2, "host:h1", "a")).is_empty());
        assert!(t.expire(now + Duration::from_secs(10)).is_empty());
        assert_eq!(t.members(b"room").len(), 1);
    }

    #[test]
    fn members_on_other_nodes_count_until_their_node_drops_them() {
        let room = Bytes::from_static(b"room");
        let mut t = Tracker::new(Duration::ZERO);
        let now = Instant::now();
        t.attach(&room, arrival(1, "user:alice", "a"));
        let mut remote = Remote::new();
        let bob = Member {
            key: "user:bob".into(),
            user: Some("bob".into()),
            since: 7,
            connections: vec![],
        };
        let alice_b = Member {
            key: "user:alice".into(),
            user: Some("alice".into()),
            since: 0,
            connections: vec![],
        };
        remote.insert(
            room.clone(),
            [
                ("user:bob".to_string(), bob),
                ("user:alice".to_string(), alice_b),
            ]
            .into(),
        );
        assert_eq!(names(&t.set_remote("b", remote)), ["join user:bob"]);
        assert_eq!(t.members(b"room")[0].since, 0);
        // Alice leaves node a but is still on node b.
        assert!(t.detach(&room, 1, now).is_empty());
        assert_eq!(
            names(&t.drop_remote("b")),
            ["leave user:alice", "leave user:bob", "vacated"]
        );
    }
}
