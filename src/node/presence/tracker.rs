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
use std::sync::Arc;
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

/// Who a member is, as this node keys it (cheap to clone: no copy of a
/// name or host id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberKey {
    User(Arc<str>),
    Host(Bytes),
    /// An anonymous connection without a host id: the hub's subscriber id.
    Connection(u64),
}

impl MemberKey {
    /// The key as nodes share it: `user:<sub>`, `host:<id>`,
    /// `conn:<node>:<n>`.
    pub fn text(&self, node: &str) -> String {
        match self {
            MemberKey::User(user) => format!("user:{user}"),
            MemberKey::Host(host) => format!("host:{}", String::from_utf8_lossy(host)),
            MemberKey::Connection(id) => format!("conn:{node}:{id}"),
        }
    }

    pub fn user(&self) -> Option<&str> {
        match self {
            MemberKey::User(user) => Some(user),
            _ => None,
        }
    }
}

/// A connection arriving on this node.
pub struct Arrival {
    pub key: MemberKey,
    pub connection: Connection,
}

/// A member held here: only counts and times (the connections' details
/// are the hub's, read when a list is asked for).
struct LocalMember {
    connections: u32,
    /// Milliseconds since the epoch.
    since: u64,
    /// When it leaves, unless a connection comes back first.
    leaving_at: Option<Instant>,
}

/// The connections of this node's members in one channel, by key (built
/// from the hub when a list is asked for).
pub type LocalConnections = HashMap<MemberKey, Vec<Connection>>;

/// What other nodes hold: channel → member key → member.
pub type Remote = HashMap<Bytes, HashMap<String, Member>>;

#[derive(Default)]
pub struct Tracker {
    /// This node's name (in shared keys).
    node: String,
    grace: Duration,
    local: HashMap<Bytes, HashMap<MemberKey, LocalMember>>,
    remote: HashMap<String, Remote>,
    /// Members in their grace period, soonest first (stale entries are
    /// skipped when they come up).
    leaving: BinaryHeap<Reverse<(Instant, Bytes, MemberKey)>>,
    /// Channels whose local members changed since [`Tracker::take_changed`].
    changed: HashSet<Bytes>,
}

impl Tracker {
    pub fn new(node: &str, grace: Duration) -> Tracker {
        Tracker {
            node: node.to_string(),
            grace,
            ..Tracker::default()
        }
    }

    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    fn held_remotely(&self, channel: &[u8], key: &str) -> bool {
        self.remote
            .values()
            .any(|r| r.get(channel).is_some_and(|m| m.contains_key(key)))
    }

    fn present(&self, channel: &[u8], key: &MemberKey) -> bool {
        self.local
            .get(channel)
            .is_some_and(|members| members.contains_key(key))
            || (!self.remote.is_empty() && self.held_remotely(channel, &key.text(&self.node)))
    }

    fn present_by_text(&self, channel: &[u8], key: &str) -> bool {
        self.held_remotely(channel, key)
            || self
                .local
                .get(channel)
                .is_some_and(|members| members.keys().any(|k| k.text(&self.node) == key))
    }

    fn occupied(&self, channel: &[u8]) -> bool {
        self.local
            .get(channel)
            .is_some_and(|members| !members.is_empty())
            || self
                .remote
                .values()
                .any(|r| r.get(channel).is_some_and(|m| !m.is_empty()))
    }

    /// A connection attached to `channel`.
    pub fn attach(&mut self, channel: &Bytes, arrival: Arrival) -> Vec<Event> {
        let was = self.present(channel, &arrival.key);
        let was_occupied = self.occupied(channel);
        let since = arrival.connection.since;
        let member = self
            .local
            .entry(channel.clone())
            .or_default()
            .entry(arrival.key.clone())
            .or_insert(LocalMember {
                connections: 0,
                since,
                leaving_at: None,
            });
        member.connections += 1;
        member.leaving_at = None;
        self.changed.insert(channel.clone());
        let mut events = Vec::new();
        if !was_occupied {
            events.push(event(channel, Change::Occupied));
        }
        if !was {
            let mut joined = self.merged(channel, &arrival.key, &LocalConnections::new());
            joined.connections.insert(0, arrival.connection);
            events.push(event(channel, Change::Joined(joined)));
        }
        events
    }

    /// A connection of `key` detached from `channel`. Its member, if that
    /// was its last connection here, leaves after the grace period (now,
    /// without one).
    pub fn detach(&mut self, channel: &Bytes, key: &MemberKey, now: Instant) -> Vec<Event> {
        let Some(member) = self.local.get_mut(channel).and_then(|m| m.get_mut(key)) else {
            return Vec::new();
        };
        member.connections = member.connections.saturating_sub(1);
        self.changed.insert(channel.clone());
        if member.connections > 0 {
            return Vec::new();
        }
        if self.grace.is_zero() {
            return self.leave_now(channel, key);
        }
        let at = now + self.grace;
        member.leaving_at = Some(at);
        self.leaving
            .push(Reverse((at, channel.clone(), key.clone())));
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
                .and_then(|m| m.get(&key))
                .is_some_and(|m| m.leaving_at == Some(at));
            if due {
                events.extend(self.leave_now(&channel, &key));
            }
        }
        events
    }

    fn leave_now(&mut self, channel: &Bytes, key: &MemberKey) -> Vec<Event> {
        let last = self.merged(channel, key, &LocalConnections::new());
        let Some(members) = self.local.get_mut(channel) else {
            return Vec::new();
        };
        members.remove(key);
        if members.is_empty() {
            self.local.remove(channel);
        }
        self.changed.insert(channel.clone());
        let mut events = Vec::new();
        if !self.present(channel, key) {
            let mut last = last;
            last.connections.clear();
            events.push(event(channel, Change::Left(last)));
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
            let was: Vec<(String, Option<Member>)> = self
                .keys_touched(node, channel, &members)
                .into_iter()
                .map(|k| {
                    let m = self.merged_by_text(channel, &k);
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
                let now = self.merged_by_text(channel, &key);
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

    /// The member held here under `key`, with its connections from `local`.
    fn local_member(
        &self,
        channel: &[u8],
        key: &MemberKey,
        local: &LocalConnections,
    ) -> Option<Member> {
        let held = self.local.get(channel)?.get(key)?;
        Some(Member {
            key: key.text(&self.node),
            user: key.user().map(str::to_string),
            since: held.since,
            connections: local.get(key).cloned().unwrap_or_default(),
        })
    }

    /// One member, merged over every node (`local` gives this node's
    /// connections). A member no node holds comes back with no
    /// connections and its key alone.
    fn merged(&self, channel: &[u8], key: &MemberKey, local: &LocalConnections) -> Member {
        let text = key.text(&self.node);
        let mut member = self.local_member(channel, key, local).unwrap_or(Member {
            key: text.clone(),
            user: key.user().map(str::to_string),
            since: u64::MAX,
            connections: Vec::new(),
        });
        self.add_remote(channel, &text, &mut member);
        member
    }

    fn add_remote(&self, channel: &[u8], key: &str, member: &mut Member) {
        for other in self
            .remote
            .values()
            .filter_map(|r| r.get(channel).and_then(|m| m.get(key)))
        {
            member.since = member.since.min(other.since);
            member.user = member.user.take().or_else(|| other.user.clone());
            member.connections.extend(other.connections.iter().cloned());
        }
    }

    /// A member by its shared key, if any node holds it.
    fn merged_by_text(&self, channel: &[u8], key: &str) -> Option<Member> {
        if !self.present_by_text(channel, key) {
            return None;
        }
        let local = self
            .local
            .get(channel)
            .and_then(|members| members.keys().find(|k| k.text(&self.node) == key));
        Some(match local {
            Some(local) => self.merged(channel, &local.clone(), &LocalConnections::new()),
            None => {
                let mut member = Member {
                    key: key.to_string(),
                    user: None,
                    since: u64::MAX,
                    connections: Vec::new(),
                };
                self.add_remote(channel, key, &mut member);
                member
            }
        })
    }

    /// Every member of a channel (over every node), earliest first;
    /// `local` gives this node's connections.
    pub fn members(&self, channel: &[u8], local: &LocalConnections) -> Vec<Member> {
        let mut members = self.local_members(channel, local);
        let here: HashSet<String> = members.iter().map(|m| m.key.clone()).collect();
        for member in &mut members {
            let key = member.key.clone();
            self.add_remote(channel, &key, member);
        }
        let mut others: Vec<&String> = self
            .remote
            .values()
            .filter_map(|r| r.get(channel))
            .flat_map(|m| m.keys())
            .filter(|k| !here.contains(*k))
            .collect();
        others.sort();
        others.dedup();
        members.extend(
            others
                .into_iter()
                .filter_map(|k| self.merged_by_text(channel, k)),
        );
        members.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.key.cmp(&b.key)));
        members
    }

    /// How many members a channel has (over every node).
    pub fn count(&self, channel: &[u8]) -> usize {
        if self.remote.is_empty() {
            return self.local.get(channel).map_or(0, HashMap::len);
        }
        self.members(channel, &LocalConnections::new()).len()
    }

    /// The members this node holds in a channel (what it shares).
    pub fn local_members(&self, channel: &[u8], local: &LocalConnections) -> Vec<Member> {
        self.local
            .get(channel)
            .map(|members| {
                members
                    .keys()
                    .filter_map(|k| self.local_member(channel, k, local))
                    .collect()
            })
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

    fn user(name: &str) -> MemberKey {
        MemberKey::User(Arc::from(name))
    }

    fn arrival(key: MemberKey, since: u64) -> Arrival {
        Arrival {
            key,
            connection: Connection {
                host_id: None,
                transport: Transport::WebSocket,
                node: "a".to_string(),
                since,
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
        let mut t = Tracker::new("a", Duration::from_secs(5));
        let now = Instant::now();
        let joined = t.attach(&room, arrival(user("alice"), 1));
        assert_eq!(names(&joined), ["occupied", "join user:alice"]);
        let Change::Joined(member) = &joined[1].change else {
            panic!()
        };
        assert_eq!(member.user.as_deref(), Some("alice"));
        assert_eq!(member.connections.len(), 1);
        assert!(t.attach(&room, arrival(user("alice"), 2)).is_empty());
        assert_eq!(t.count(b"room"), 1);
        assert!(t.detach(&room, &user("alice"), now).is_empty());
        assert!(t.detach(&room, &user("alice"), now).is_empty());
        // Still present during the grace period.
        assert_eq!(t.count(b"room"), 1);
        assert!(t.expire(now + Duration::from_secs(4)).is_empty());
        assert_eq!(
            names(&t.expire(now + Duration::from_secs(5))),
            ["leave user:alice", "vacated"]
        );
        assert_eq!(t.count(b"room"), 0);
    }

    #[test]
    fn coming_back_within_the_grace_is_no_event() {
        let room = Bytes::from_static(b"room");
        let host = MemberKey::Host(Bytes::from_static(b"h1"));
        let mut t = Tracker::new("a", Duration::from_secs(5));
        let now = Instant::now();
        t.attach(&room, arrival(host.clone(), 1));
        t.detach(&room, &host, now);
        assert!(t.attach(&room, arrival(host.clone(), 2)).is_empty());
        assert!(t.expire(now + Duration::from_secs(10)).is_empty());
        assert_eq!(
            t.members(b"room", &LocalConnections::new())[0].key,
            "host:h1"
        );
    }

    #[test]
    fn members_on_other_nodes_count_until_their_node_drops_them() {
        let room = Bytes::from_static(b"room");
        let mut t = Tracker::new("a", Duration::ZERO);
        let now = Instant::now();
        t.attach(&room, arrival(user("alice"), 5));
        let member = |name: &str, since| Member {
            key: format!("user:{name}"),
            user: Some(name.to_string()),
            since,
            connections: vec![],
        };
        let mut remote = Remote::new();
        remote.insert(
            room.clone(),
            [
                ("user:bob".to_string(), member("bob", 7)),
                ("user:alice".to_string(), member("alice", 0)),
            ]
            .into(),
        );
        assert_eq!(names(&t.set_remote("b", remote)), ["join user:bob"]);
        let listed = t.members(b"room", &LocalConnections::new());
        assert_eq!(listed.len(), 2);
        assert_eq!((listed[0].key.as_str(), listed[0].since), ("user:alice", 0));
        // Alice leaves node a but is still on node b.
        assert!(t.detach(&room, &user("alice"), now).is_empty());
        assert_eq!(
            names(&t.drop_remote("b")),
            ["leave user:alice", "leave user:bob", "vacated"]
        );
    }
}
