//! The node registry: every second each node writes what it is and how many
//! subscribers each of its channels has (keys that expire unless renewed),
//! and reads the others'. Cluster-wide counts are this node's live figures
//! plus the others' last announced ones; a node whose keys expired is shown
//! as down and left out of the sums.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::Value;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Cluster, ClusterError};

/// How often a node announces itself.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long is down (its keys expire).
pub const NODE_TTL: Duration = Duration::from_secs(5);
/// A node down for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// What a node says about itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub instance: String,
    pub version: String,
    pub control: String,
    pub subscriber: String,
    pub uptime: u64,
    /// Live subscriptions on the node.
    pub subscribers: usize,
    /// The next message id it expects from the log (how far it has got).
    pub next_id: u64,
    /// Its SHOWSTATS counters that were ever touched.
    pub counters: Vec<(String, u64)>,
}

/// One node as last seen.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub name: String,
    pub is_self: bool,
    /// Heard from within the last few seconds.
    pub up: bool,
    /// Milliseconds since the epoch when it was last heard from.
    pub last_seen_ms: u64,
    pub info: Option<NodeInfo>,
    /// Subscribers per channel.
    pub subscribers: HashMap<Bytes, usize>,
}

/// Every node known to the registry, this one first.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub nodes: Vec<NodeView>,
    /// When the registry was last read (None: not yet).
    pub refreshed: Option<SystemTime>,
}

impl ClusterView {
    /// The other nodes that are up.
    pub fn others(&self) -> impl Iterator<Item = &NodeView> {
        self.nodes.iter().filter(|n| n.up && !n.is_self)
    }

    /// Subscribers of a channel on the other nodes.
    pub fn others_on(&self, channel: &[u8]) -> usize {
        self.others()
            .filter_map(|n| n.subscribers.get(channel))
            .sum()
    }

    pub fn up_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.up).count()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) async fn run(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    let mut twins = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match beat(&cluster, &mut twins).await {
            Ok(()) => warned = false,
            Err(e) => {
                if !warned {
                    warn!("redis engine: cannot announce this node: {e}");
                    warned = true;
                }
                mark_unreachable(&cluster);
            }
        }
    }
    leave(&cluster).await;
}

/// Announce this node and read every node's announcement.
async fn beat(cluster: &Cluster, twins: &mut usize) -> Result<(), ClusterError> {
    let keys = &cluster.keys;
    let hub = &cluster.hub;
    let info = NodeInfo {
        name: cluster.node.clone(),
        instance: cluster.instance.clone(),
        version: crate::config::VERSION.into(),
        control: cluster.addresses.0.to_string(),
        subscriber: cluster.addresses.1.to_string(),
        uptime: hub.uptime(),
        subscribers: hub.subscriber_count(),
        next_id: hub.next_message_id(),
        counters: hub
            .stats
            .touched()
            .into_iter()
            .map(|(s, v)| (s.name().to_string(), v))
            .collect(),
    };
    let json = serde_json::to_string(&info).unwrap_or_default();
    let ttl = NODE_TTL.as_millis() as u64;
    let now = now_ms();
    let counts: Vec<(Bytes, usize)> = hub
        .list_channels()
        .into_iter()
        .filter(|c| c.subscribers > 0)
        .map(|c| (c.name, c.subscribers))
        .collect();
    let subs_key = keys.node_subscribers(&cluster.node);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("GET")
        .arg(keys.node(&cluster.node))
        .cmd("SET")
        .arg(keys.node(&cluster.node))
        .arg(&json)
        .arg("PX")
        .arg(ttl)
        .ignore()
        .cmd("DEL")
        .arg(&subs_key)
        .ignore();
    if !counts.is_empty() {
        let mut hset = redis::cmd("HSET");
        hset.arg(&subs_key);
        for (name, n) in &counts {
            hset.arg(name.as_ref()).arg(*n);
        }
        pipe.add_command(hset)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&subs_key)
            .arg(ttl)
            .ignore();
    }
    pipe.cmd("ZADD")
        .arg(keys.nodes())
        .arg(now)
        .arg(&cluster.node)
        .ignore()
        .cmd("ZREMRANGEBYSCORE")
        .arg(keys.nodes())
        .arg("-inf")
        .arg(now.saturating_sub(FORGET_AFTER.as_millis() as u64))
        .ignore()
        .cmd("ZRANGE")
        .arg(keys.nodes())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES");
    let (before, listed): (Option<Vec<u8>>, Vec<(String, u64)>) = cluster.query(&pipe).await?;
    // Between two beats only this process writes its key; finding another
    // instance's there twice running means a second live node has our name
    // (once is an earlier run of this node that has not expired yet).
    let twin = before
        .and_then(|b| serde_json::from_slice::<NodeInfo>(&b).ok())
        .is_some_and(|seen| seen.instance != cluster.instance);
    if twin && *twins < usize::MAX {
        *twins += 1;
        if *twins == 2 {
            warn!(
                "redis engine: another process also announces itself as node {}; give each node its own NodeName",
                cluster.node
            );
        }
    } else if !twin {
        *twins = 0;
    }

    let others: Vec<&(String, u64)> = listed.iter().filter(|(n, _)| *n != cluster.node).collect();
    let mut read = redis::pipe();
    for (name, _) in &others {
        read.cmd("GET")
            .arg(keys.node(name))
            .cmd("HGETALL")
            .arg(keys.node_subscribers(name));
    }
    let replies: Vec<Value> = if others.is_empty() {
        Vec::new()
    } else {
        cluster.query(&read).await?
    };
    let mut nodes = vec![NodeView {
        name: cluster.node.clone(),
        is_self: true,
        up: true,
        last_seen_ms: now,
        info: Some(info),
        subscribers: counts.into_iter().collect(),
    }];
    let mut replies = replies.into_iter();
    for (name, seen) in others {
        let (Some(json), Some(subs)) = (replies.next(), replies.next()) else {
            break;
        };
        let info: Option<NodeInfo> = match json {
            Value::BulkString(b) => serde_json::from_slice(&b).ok(),
            _ => None,
        };
        nodes.push(NodeView {
            name: name.clone(),
            is_self: false,
            up: info.is_some(),
            last_seen_ms: *seen,
            info,
            subscribers: subscriber_counts(subs),
        });
    }
    cluster.view.store(Arc::new(ClusterView {
        nodes,
        refreshed: Some(SystemTime::now()),
    }));
    Ok(())
}

fn subscriber_counts(reply: Value) -> HashMap<Bytes, usize> {
    let mut counts = HashMap::new();
    for (name, n) in super::hash_pairs(reply) {
        let (Value::BulkString(name), Value::BulkString(n)) = (name, n) else {
            continue;
        };
        if let Some(n) = std::str::from_utf8(&n).ok().and_then(|n| n.parse().ok()) {
            counts.insert(Bytes::from(name), n);
        }
    }
    counts
}

/// Redis cannot be reached: the others' figures are unknown now, so they
/// are shown as down and left out of the sums.
fn mark_unreachable(cluster: &Cluster) {
    let view = cluster.view();
    if view.nodes.iter().all(|n| n.is_self || !n.up) {
        return;
    }
    let nodes = view
        .nodes
        .iter()
        .cloned()
        .map(|mut n| {
            n.up &= n.is_self;
            n
        })
        .collect();
    cluster.view.store(Arc::new(ClusterView {
        nodes,
        refreshed: view.refreshed,
    }));
}

/// Remove this node from the registry (clean shutdown).
async fn leave(cluster: &Cluster) {
    let keys = &cluster.keys;
    let mut pipe = redis::pipe();
    pipe.cmd("DEL")
        .arg(keys.node(&cluster.node))
        .arg(keys.node_subscribers(&cluster.node))
        .ignore()
        .cmd("ZREM")
        .arg(keys.nodes())
        .arg(&cluster.node)
        .ignore();
    let _: Result<(), _> = cluster.query(&pipe).await;
}
