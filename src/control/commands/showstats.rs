//! `SHOWSTATS`: `OK`, `uptime: s`, `channel_count: n`, the counters, then
//! `--EOT--`. With the redis engine the counters add up every node's, and
//! lines about the nodes follow them (`engine`, `node`, `nodes`, `redis`
//! and `node.<name>.<figure>`) in the same `name: value` form.

use super::Command;
use crate::cluster::Cluster;
use crate::node::Node;

pub fn parse(_rest: &[u8]) -> Command<'_> {
    Command::ShowStats
}

pub fn reply(node: &Node, out: &mut Vec<u8>) {
    out.extend_from_slice(b"OK\r\n");
    out.extend_from_slice(format!("uptime: {}\r\n", node.hub.uptime()).as_bytes());
    out.extend_from_slice(format!("channel_count: {}\r\n", node.channel_count()).as_bytes());
    for (stat, value) in node.counters() {
        out.extend_from_slice(format!("{}: {value}\r\n", stat.name()).as_bytes());
    }
    if let Some(cluster) = node.cluster() {
        for (name, value) in node_lines(cluster) {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"--EOT--\r\n");
}

/// The lines about the nodes sharing the redis engine.
fn node_lines(cluster: &Cluster) -> Vec<(String, String)> {
    let view = cluster.view();
    let link = if cluster.link().connected {
        "connected"
    } else {
        "unavailable"
    };
    let mut lines = vec![
        ("engine".to_string(), "redis".to_string()),
        ("node".to_string(), cluster.node.clone()),
        ("nodes".to_string(), view.up_count().max(1).to_string()),
        ("redis".to_string(), link.to_string()),
    ];
    for node in &view.nodes {
        let name = &node.name;
        let status = if node.up { "up" } else { "down" };
        lines.push((format!("node.{name}.status"), status.into()));
        if let Some(info) = node.info.as_ref().filter(|_| node.up) {
            lines.push((
                format!("node.{name}.current_subscribers"),
                info.subscribers.to_string(),
            ));
            lines.push((format!("node.{name}.uptime"), info.uptime.to_string()));
        }
    }
    lines
}
