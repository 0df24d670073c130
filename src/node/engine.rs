//! The engine seam: where changes go and where cluster-wide figures come
//! from. With the memory engine everything is this process's hub; with the
//! redis engine changes go through Redis ([`Cluster`]) and reach the hub
//! from the shared log, and counts add up every node's. This is the only
//! place that asks which engine is in use (publishing is in `publish.rs`).
//!
//! Subscribers never come through here: they always read the local hub.

use std::sync::Arc;

use super::Node;
use crate::cluster::{Cluster, ClusterError};
use crate::hub::{ChannelSummary, Stat};

/// The engine in use.
pub enum Engine {
    /// Channels live in this process alone.
    Memory,
    /// Channels are shared through Redis with other nodes.
    Redis(Arc<Cluster>),
}

impl Engine {
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        match self {
            Engine::Memory => None,
            Engine::Redis(cluster) => Some(cluster),
        }
    }
}

impl Node {
    /// Empty one channel's cache; `None` if there is no such channel.
    pub async fn clear_channel(&self, name: &[u8]) -> Result<Option<usize>, ClusterError> {
        match &self.engine {
            Engine::Memory => Ok(self.hub.clear_channel(name)),
            Engine::Redis(cluster) => cluster.clear_channel(name).await,
        }
    }

    /// Empty every channel's cache.
    pub async fn clear_caches(&self) -> Result<(), ClusterError> {
        match &self.engine {
            Engine::Memory => {
                self.hub.clear_caches();
                Ok(())
            }
            Engine::Redis(cluster) => cluster.clear_caches().await,
        }
    }

    /// Subscribers of a channel (on every node).
    pub fn count_subscribers(&self, channel: &[u8]) -> usize {
        match &self.engine {
            Engine::Memory => self.hub.count_subscribers(channel),
            Engine::Redis(cluster) => cluster.count_subscribers(channel),
        }
    }

    /// Every channel (of every node), in byte order of the names.
    pub fn list_channels(&self) -> Vec<ChannelSummary> {
        match &self.engine {
            Engine::Memory => self.hub.list_channels(),
            Engine::Redis(cluster) => cluster.list_channels(),
        }
    }

    pub fn channel_count(&self) -> usize {
        match &self.engine {
            Engine::Memory => self.hub.channel_count(),
            Engine::Redis(cluster) => cluster.list_channels().len(),
        }
    }

    /// The SHOWSTATS counters (added up over every node).
    pub fn counters(&self) -> Vec<(Stat, u64)> {
        match &self.engine {
            Engine::Memory => self.hub.stats.touched(),
            Engine::Redis(cluster) => cluster.counters(),
        }
    }
}
