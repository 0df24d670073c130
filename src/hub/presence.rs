//! Who is subscribed where, as the hub sees it: a notice for every
//! subscriber attached to or detached from a channel, for whoever keeps
//! presence (the node's tracker). Notices are given under the hub's lock,
//! so the receiver must only pass them on (a channel send).

use std::sync::Arc;

use bytes::Bytes;

use super::{Hub, Subscriber};

/// A subscriber came or went on one channel.
#[derive(Debug)]
pub enum Notice {
    Attached {
        channel: Bytes,
        subscriber: Arc<Subscriber>,
    },
    Detached {
        channel: Bytes,
        subscriber: Arc<Subscriber>,
    },
}

/// Takes the notices; called under the hub's lock.
pub type Report = Arc<dyn Fn(Notice) + Send + Sync>;

impl Hub {
    /// Give every attach and detach from now on to `report`, in the order
    /// they happen (one receiver per hub: a second call replaces the first).
    pub fn report_presence(&self, report: impl Fn(Notice) + Send + Sync + 'static) {
        self.lock().notices = Some(Arc::new(report));
    }
}
