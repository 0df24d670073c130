//! Presence across nodes (redis engine): every [`TICK`] this node writes
//! the member lists of its channels that changed, and reads the lists of
//! each other node whose version changed. A node that is no longer up (its
//! keys expired, a few seconds after it died) has its members leave.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::tracker::{Member, Remote};
use crate::cluster::presence::parse_lists;
use crate::cluster::Cluster;
use crate::node::Node;

/// How often lists are written and read.
const TICK: Duration = Duration::from_millis(250);
/// How often this node's keys are renewed.
const RENEW: Duration = Duration::from_secs(1);

pub async fn run(node: Arc<Node>, cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut version = 0u64;
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut share_all = true;
    let mut renewed = Instant::now();
    let mut warned = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let outcome = async {
            if renewed.elapsed() >= RENEW {
                if !cluster.renew_presence().await? {
                    share_all = true;
                }
                renewed = Instant::now();
            }
            share(&node, &cluster, &mut version, &mut share_all).await?;
            read_others(&node, &cluster, &mut seen).await
        }
        .await;
        match outcome {
            Ok(()) => warned = false,
            Err(e) => {
                share_all = true;
                if !warned {
                    warn!("redis engine: presence cannot be shared: {e}");
                    warned = true;
                }
            }
        }
    }
    cluster.withdraw_presence().await;
}

/// Write the lists of the channels whose members changed here (all of
/// them after an outage).
async fn share(
    node: &Node,
    cluster: &Cluster,
    version: &mut u64,
    share_all: &mut bool,
) -> Result<(), crate::cluster::ClusterError> {
    let channels = {
        let mut inner = node.presence.lock();
        let mut channels = inner.tracker.take_changed();
        if *share_all {
            channels.extend(inner.tracker.local_channels());
            channels.sort();
            channels.dedup();
        }
        channels
    };
    // The hub is read before the tracker is locked, never while.
    let changes: Vec<(Bytes, Option<Vec<u8>>)> = channels
        .into_iter()
        .map(|channel| {
            let local = node.presence.local_connections(&node.hub, &channel);
            let members = node.presence.lock().tracker.local_members(&channel, &local);
            let json =
                (!members.is_empty()).then(|| serde_json::to_vec(&members).unwrap_or_default());
            (channel, json)
        })
        .collect();
    if changes.is_empty() && !*share_all {
        return Ok(());
    }
    *version += 1;
    let result = cluster
        .share_presence(&changes, &cluster.presence_version(*version))
        .await;
    if result.is_ok() {
        *share_all = false;
    }
    result
}

/// Read the lists of the nodes whose version changed; forget the nodes
/// that are gone.
async fn read_others(
    node: &Node,
    cluster: &Cluster,
    seen: &mut HashMap<String, String>,
) -> Result<(), crate::cluster::ClusterError> {
    let versions = cluster.presence_versions().await?;
    let mut events = Vec::new();
    let up: Vec<&String> = versions
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| n)
        .collect();
    let known = node.presence.lock().tracker.remote_nodes();
    for name in known {
        if !up.contains(&&name) {
            seen.remove(&name);
            events.extend(node.presence.lock().tracker.drop_remote(&name));
        }
    }
    for (name, version) in versions {
        let Some(version) = version else { continue };
        if seen.get(&name) == Some(&version) {
            continue;
        }
        let lists: HashMap<Bytes, Vec<Member>> = parse_lists(cluster.read_presence(&name).await?);
        let remote: Remote = lists
            .into_iter()
            .map(|(channel, members)| {
                let by_key = members.into_iter().map(|m| (m.key.clone(), m)).collect();
                (channel, by_key)
            })
            .collect();
        events.extend(node.presence.lock().tracker.set_remote(&name, remote));
        seen.insert(name, version);
    }
    node.dispatch(events);
    Ok(())
}
