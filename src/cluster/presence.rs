//! Presence shared between nodes: each node keeps its own members in a
//! Redis hash (channel → its member list, as JSON the node layer writes)
//! with a version beside it, both expiring unless renewed. Others read a
//! node's hash again only when its version changes; a node that dies stops
//! renewing, and its members vanish with its keys.

use std::collections::HashMap;

use bytes::Bytes;
use redis::Value;

use super::nodes::NODE_TTL;
use super::{Cluster, ClusterError};

impl Cluster {
    fn presence_key(&self, node: &str) -> String {
        self.keys.key(&format!("presence:{node}"))
    }

    fn presence_version_key(&self, node: &str) -> String {
        self.keys.key(&format!("presence:{node}:version"))
    }

    /// A version string no earlier process of this node used.
    pub fn presence_version(&self, counter: u64) -> String {
        format!("{}:{counter}", self.instance)
    }

    /// Write this node's member lists of the changed channels (`None`: no
    /// member there now) and its new version.
    pub async fn share_presence(
        &self,
        changes: &[(Bytes, Option<Vec<u8>>)],
        version: &str,
    ) -> Result<(), ClusterError> {
        let key = self.presence_key(&self.node);
        let ttl = NODE_TTL.as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let gone: Vec<&Bytes> = changes
            .iter()
            .filter(|(_, m)| m.is_none())
            .map(|(c, _)| c)
            .collect();
        if !gone.is_empty() {
            let mut hdel = redis::cmd("HDEL");
            hdel.arg(&key);
            for channel in gone {
                hdel.arg(channel.as_ref());
            }
            pipe.add_command(hdel).ignore();
        }
        let set: Vec<(&Bytes, &Vec<u8>)> = changes
            .iter()
            .filter_map(|(c, m)| m.as_ref().map(|m| (c, m)))
            .collect();
        if !set.is_empty() {
            let mut hset = redis::cmd("HSET");
            hset.arg(&key);
            for (channel, members) in set {
                hset.arg(channel.as_ref()).arg(members.as_slice());
            }
            pipe.add_command(hset).ignore();
        }
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl)
            .ignore()
            .cmd("SET")
            .arg(self.presence_version_key(&self.node))
            .arg(version)
            .arg("PX")
            .arg(ttl)
            .ignore();
        self.query::<()>(&pipe).await
    }

    /// Keep this node's presence from expiring. Returns false if its keys
    /// were already gone (after an outage): everything must be shared again.
    pub async fn renew_presence(&self) -> Result<bool, ClusterError> {
        let ttl = NODE_TTL.as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.cmd("PEXPIRE")
            .arg(self.presence_key(&self.node))
            .arg(ttl)
            .ignore()
            .cmd("PEXPIRE")
            .arg(self.presence_version_key(&self.node))
            .arg(ttl);
        let (renewed,): (u8,) = self.query(&pipe).await?;
        Ok(renewed == 1)
    }

    /// The presence version of every other node that is up (`None`: it
    /// shares none).
    pub async fn presence_versions(&self) -> Result<Vec<(String, Option<String>)>, ClusterError> {
        let others: Vec<String> = self.view().others().map(|n| n.name.clone()).collect();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for node in &others {
            pipe.cmd("GET").arg(self.presence_version_key(node));
        }
        let versions: Vec<Option<String>> = self.query(&pipe).await?;
        Ok(others.into_iter().zip(versions).collect())
    }

    /// Another node's member lists: channel → JSON.
    pub async fn read_presence(&self, node: &str) -> Result<Vec<(Bytes, Vec<u8>)>, ClusterError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(self.presence_key(node));
        let (reply,): (Value,) = self.query(&pipe).await?;
        Ok(super::hash_pairs(reply)
            .into_iter()
            .filter_map(|pair| match pair {
                (Value::BulkString(channel), Value::BulkString(json)) => {
                    Some((Bytes::from(channel), json))
                }
                _ => None,
            })
            .collect())
    }

    /// Remove this node's presence (clean shutdown): the others see its
    /// members leave at once.
    pub async fn withdraw_presence(&self) {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL")
            .arg(self.presence_key(&self.node))
            .arg(self.presence_version_key(&self.node))
            .ignore();
        let _: Result<(), _> = self.query(&pipe).await;
    }

    /// Is this node the one that sends cluster-wide events? The first (by
    /// name) of the nodes up; alone, or cut off from Redis, it is.
    pub fn is_leader(&self) -> bool {
        let view = self.view();
        view.nodes
            .iter()
            .filter(|n| n.up)
            .map(|n| n.name.as_str())
            .min()
            .is_none_or(|first| first == self.node)
    }
}

/// Parse a node's member lists; a list that does not parse is left out.
pub fn parse_lists<T: serde::de::DeserializeOwned>(
    lists: Vec<(Bytes, Vec<u8>)>,
) -> HashMap<Bytes, T> {
    lists
        .into_iter()
        .filter_map(|(channel, json)| Some((channel, serde_json::from_slice(&json).ok()?)))
        .collect()
}
