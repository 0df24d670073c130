//! The SHOWSTATS counters.
//!
//! meteord listed only counters that had ever been touched, so each counter
//! remembers whether it was; the order of the listing is fixed (ours) where
//! the original's was random.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Every counter, in the order SHOWSTATS lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Stat {
    TotalRequests,
    CurrentControllers,
    ControllerConnectionsAccepted,
    CurrentSubscribers,
    SubscriberConnectionsAccepted,
    MessagesServed,
    UniqueMessages,
    DocumentsServed,
    DocumentsNotFound,
    ErrorsServed,
    TotalInboundBytes,
    TotalOutboundBytes,
}

impl Stat {
    pub const ALL: [Stat; 12] = [
        Stat::TotalRequests,
        Stat::CurrentControllers,
        Stat::ControllerConnectionsAccepted,
        Stat::CurrentSubscribers,
        Stat::SubscriberConnectionsAccepted,
        Stat::MessagesServed,
        Stat::UniqueMessages,
        Stat::DocumentsServed,
        Stat::DocumentsNotFound,
        Stat::ErrorsServed,
        Stat::TotalInboundBytes,
        Stat::TotalOutboundBytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::TotalRequests => "total_requests",
            Stat::CurrentControllers => "current_controllers",
            Stat::ControllerConnectionsAccepted => "controller_connections_accepted",
            Stat::CurrentSubscribers => "current_subscribers",
            Stat::SubscriberConnectionsAccepted => "subscriber_connections_accepted",
            Stat::MessagesServed => "messages_served",
            Stat::UniqueMessages => "unique_messages",
            Stat::DocumentsServed => "documents_served",
            Stat::DocumentsNotFound => "documents_not_found",
            Stat::ErrorsServed => "errors_served",
            Stat::TotalInboundBytes => "total_inbound_bytes",
            Stat::TotalOutboundBytes => "total_outbound_bytes",
        }
    }
}

/// Process-wide counters, cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Stats {
    values: [AtomicU64; 12],
    touched: AtomicU32,
}

impl Stats {
    pub fn add(&self, stat: Stat, n: u64) {
        self.values[stat as usize].fetch_add(n, Relaxed);
        self.touch(stat);
    }

    pub fn incr(&self, stat: Stat) {
        self.add(stat, 1);
    }

    pub fn decr(&self, stat: Stat) {
        self.values[stat as usize].fetch_sub(1, Relaxed);
        self.touch(stat);
    }

    fn touch(&self, stat: Stat) {
        let bit = 1 << stat as u32;
        // A plain load first: the bit is almost always set already, and a
        // read keeps the cache line shared between cores.
        if self.touched.load(Relaxed) & bit == 0 {
            self.touched.fetch_or(bit, Relaxed);
        }
    }

    pub fn get(&self, stat: Stat) -> u64 {
        self.values[stat as usize].load(Relaxed)
    }

    /// The counters that have ever been touched, with their values.
    pub fn touched(&self) -> Vec<(Stat, u64)> {
        let touched = self.touched.load(Relaxed);
        Stat::ALL
            .iter()
            .filter(|s| touched & (1 << **s as u32) != 0)
            .map(|s| (*s, self.get(*s)))
            .collect()
    }
}
