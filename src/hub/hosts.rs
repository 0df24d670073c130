//! Host id → the persistent subscriber using it. The table keeps no copy of
//! the host ids: it holds each subscriber's id with the hash of its host id
//! and compares through the subscriber's own details — an idle subscriber
//! costs 16 bytes here instead of a second handle on its host id and a
//! map entry four times the size.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::state::Member;

#[derive(Default)]
pub(super) struct Hosts {
    /// (hash of the host id, subscriber id)
    table: HashTable<(u64, u64)>,
    hasher: std::collections::hash_map::RandomState,
}

impl Hosts {
    fn hash(&self, host: &[u8]) -> u64 {
        self.hasher.hash_one(host)
    }

    /// The subscriber holding `host`.
    pub(super) fn get(&self, host: &[u8], members: &HashMap<u64, Member>) -> Option<u64> {
        let hash = self.hash(host);
        self.table
            .find(hash, |&(h, id)| h == hash && holds(members, id, host))
            .map(|&(_, id)| id)
    }

    /// `id` now holds `host` (a previous holder must have been removed).
    pub(super) fn insert(&mut self, host: &[u8], id: u64) {
        let hash = self.hash(host);
        self.table.insert_unique(hash, (hash, id), |&(h, _)| h);
    }

    /// Forget that `id` holds `host`, if it does.
    pub(super) fn remove(&mut self, host: &[u8], id: u64) {
        let hash = self.hash(host);
        if let Ok(entry) = self
            .table
            .find_entry(hash, |&(h, held)| h == hash && held == id)
        {
            entry.remove();
        }
    }
}

fn holds(members: &HashMap<u64, Member>, id: u64, host: &[u8]) -> bool {
    members
        .get(&id)
        .and_then(|m| m.subscriber.info.host_id.as_deref())
        == Some(host)
}
