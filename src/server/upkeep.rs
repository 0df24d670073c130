//! The node's periodic chores while it serves: aging caches, ending
//! subscriptions past MaxTime, trimming live feeds, and pings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::node::Node;

/// How long a write must have been stuck before its subscriber may be
/// dropped to bring the queued bytes back under MaxQueuedMB.
const STALLED: Duration = Duration::from_secs(2);

/// Age out cached messages and close subscriptions past MaxTime.
pub async fn housekeeping(node: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        node.hub.trim_by_age();
        node.hub.expire_deadlines(Instant::now());
        node.hub.trim_feeds();
        let budget = node.config.load().max_queued_bytes;
        node.hub.drop_stalled(budget, STALLED);
    }
}

/// Ping persistent subscribers every PingInterval seconds (re-read after
/// each ping, so a reload takes effect).
pub async fn pings(node: Arc<Node>) {
    loop {
        let interval = node.config.load().ping_interval;
        let wait = if interval == 0 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(interval)
        };
        tokio::select! {
            _ = node.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if interval > 0 && node.config.load().ping_interval == interval {
            node.hub.ping_all();
        }
    }
}
