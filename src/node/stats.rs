//! The server's figures as JSON, for the API's `/api/stats` and the admin
//! dashboard: uptime, counters, subscribers by transport, and the nodes
//! sharing the redis engine.

use serde_json::json;

use super::Node;
use crate::hub::Stat;

/// Uptime, counters and live subscribers, as JSON.
pub fn stats_json(node: &Node) -> serde_json::Value {
    let hub = &node.hub;
    let counters: serde_json::Map<String, serde_json::Value> = Stat::ALL
        .iter()
        .map(|s| (s.name().to_string(), json!(hub.stats.get(*s))))
        .collect();
    let mut stats = json!({
        "version": crate::config::VERSION,
        "uptime": hub.uptime(),
        "channels": node.channel_count(),
        "next_message_id": hub.next_message_id(),
        "subscribers_by_transport": hub.subscribers_by_transport(),
        "counters": counters,
        "engine": node.config.load().engine.to_string(),
    });
    if let Some(cluster) = node.cluster() {
        stats["cluster"] = cluster_json(cluster);
    }
    stats
}

/// The nodes sharing the redis engine, and this node's link to Redis.
fn cluster_json(cluster: &crate::cluster::Cluster) -> serde_json::Value {
    let view = cluster.view();
    let link = cluster.link();
    let totals: serde_json::Map<String, serde_json::Value> = cluster
        .counters()
        .into_iter()
        .map(|(s, v)| (s.name().to_string(), json!(v)))
        .collect();
    json!({
        "node": cluster.node,
        "redis": {"url": cluster.url, "connected": link.connected, "last_error": link.last_error},
        "counters": totals,
        "nodes": view.nodes.iter().map(|n| json!({
            "name": n.name,
            "self": n.is_self,
            "up": n.up,
            "last_seen_ms": n.last_seen_ms,
            "subscribers": n.info.as_ref().map(|i| i.subscribers),
            "uptime": n.info.as_ref().map(|i| i.uptime),
            "next_message_id": n.info.as_ref().map(|i| i.next_id),
            "subscriber_address": n.info.as_ref().map(|i| i.subscriber.clone()),
            "control_address": n.info.as_ref().map(|i| i.control.clone()),
        })).collect::<Vec<_>>(),
    })
}
