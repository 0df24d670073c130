//! The redis engine: several meteord nodes share their channels through one
//! Redis server, so a subscriber on any node sees every message published
//! on any node, with the same ids, in the same order, with the same backlog.
//!
//! - Publishing ([`Cluster::publish`]) runs one Lua script (`scripts.rs`):
//!   it takes the next id from a shared counter, appends the message to its
//!   channel's history and to the shared log. The publisher's `OK` goes out
//!   only once Redis has answered — and once this node has taken the message
//!   in, so whoever published can read it back here at once.
//! - Every node, the publisher included, takes messages into its local hub
//!   only from the shared log, in log order (`follow.rs`): the same order on
//!   every node, and after an outage it reads on from where it stopped. A
//!   node that missed part of the log (or finds Redis emptied) reloads the
//!   channel histories instead. The hub then fans out as with the memory
//!   engine: no Redis round trip per subscriber.
//! - Each node announces itself and its subscriber counts every second
//!   (`nodes.rs`); cluster-wide counts add those up.
//! - Each node shares its presence members the same way (`presence.rs`).

mod follow;
mod nodes;
pub mod presence;
mod scripts;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use nodes::{ClusterView, NodeInfo, NodeView, NODE_TTL};

use crate::config::{redact_url, Config};
use crate::hub::{ChannelSummary, Hub, Stat};
use scripts::Scripts;

/// Entries kept in the shared log: a node that falls further behind (or is
/// cut off from Redis longer) reloads the channel histories instead of
/// reading on. With `~` trimming Redis keeps a little more.
pub const LOG_LENGTH: usize = 100_000;
/// Messages published by one script call: large enough that a pipelining
/// publisher pays for few calls, small enough that no call holds Redis up
/// for long.
const PUBLISH_CHUNK: usize = 500;
/// How long a command to Redis may take before publishing reports failure.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a publisher waits for its own node to take its message in.
const APPLY_WAIT: Duration = Duration::from_secs(2);

/// Why a change could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
}

impl From<redis::RedisError> for ClusterError {
    fn from(e: redis::RedisError) -> ClusterError {
        ClusterError::Unavailable(describe(&e))
    }
}

/// A Redis error in words fit for a log or a reply (never the URL).
fn describe(e: &redis::RedisError) -> String {
    match e.code() {
        Some(code) => format!("{code} {}", e.detail().unwrap_or_default()),
        None if e.is_timeout() => "timed out".into(),
        None if e.is_connection_refusal() => "connection refused".into(),
        None if e.is_io_error() || e.is_connection_dropped() => "connection lost".into(),
        None => format!("{:?}", e.kind()),
    }
}

/// The names of the engine's Redis keys.
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }
    fn epoch(&self) -> String {
        self.key("epoch")
    }
    fn id(&self) -> String {
        self.key("id")
    }
    fn seq(&self) -> String {
        self.key("seq")
    }
    fn log(&self) -> String {
        self.key("log")
    }
    fn channels(&self) -> String {
        self.key("channels")
    }
    /// What precedes a channel name in its history's key.
    fn channel_prefix(&self) -> String {
        self.key("ch:")
    }
    fn channel(&self, name: &[u8]) -> Vec<u8> {
        let mut key = self.channel_prefix().into_bytes();
        key.extend_from_slice(name);
        key
    }
    fn nodes(&self) -> String {
        self.key("nodes")
    }
    fn node(&self, name: &str) -> String {
        self.key(&format!("node:{name}"))
    }
    fn node_subscribers(&self, name: &str) -> String {
        self.key(&format!("node:{name}:subscribers"))
    }
}

/// How far this node has taken in the shared log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Applied {
    /// The last log sequence number taken in.
    seq: u64,
    /// The hub's next message id after it.
    next_id: u64,
}

/// The state of this node's link to Redis, for the admin UI.
#[derive(Debug, Clone, Default)]
pub struct LinkStatus {
    pub connected: bool,
    pub since: Option<SystemTime>,
    pub last_error: Option<String>,
}

/// The redis engine of one node. Cheap to share: it lives in an `Arc`.
pub struct Cluster {
    /// This node's name.
    pub node: String,
    /// Tells this process from an earlier one with the same name.
    instance: String,
    /// The Redis URL without its password.
    pub url: String,
    client: redis::Client,
    /// Publishing and the node registry (reconnects by itself).
    conn: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
    hub: Arc<Hub>,
    addresses: (SocketAddr, SocketAddr),
    applied: watch::Sender<Applied>,
    /// Counts the follower's (re)synchronisations.
    synced: watch::Sender<u64>,
    /// Asks the follower to check the shared state again.
    recheck: Notify,
    link: Mutex<LinkStatus>,
    view: ArcSwap<ClusterView>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Cluster {
    /// Connect this node's hub to the Redis engine and start following the
    /// shared log and announcing the node. Waits a few seconds for the
    /// first synchronisation (so the node starts with the backlog); if
    /// Redis cannot be reached it starts anyway and keeps trying.
    pub async fn start(
        config: &Config,
        hub: Arc<Hub>,
        control: SocketAddr,
        subscriber: SocketAddr,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Arc<Cluster>> {
        let url = redact_url(&config.redis_url);
        let client = match &config.redis_ca_file {
            None => redis::Client::open(config.redis_url.as_str()),
            Some(path) => {
                let root = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("RedisCAFile {}: {e}", path.display()))?;
                redis::Client::build_with_tls(
                    config.redis_url.as_str(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root),
                    },
                )
            }
        }
        .map_err(|e| anyhow::anyhow!("RedisURL {url}: {}", describe(&e)))?;
        let conn = ConnectionManager::new_lazy_with_config(
            client.clone(),
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(COMMAND_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500)),
        )
        .map_err(|e| anyhow::anyhow!("Redis {url}: {}", describe(&e)))?;
        let cluster = Arc::new(Cluster {
            node: config.node_name.clone(),
            instance: random_token(),
            url,
            client,
            conn,
            keys: Keys {
                prefix: config.redis_prefix.clone(),
            },
            scripts: Scripts::new(),
            addresses: (control, subscriber),
            applied: watch::Sender::new(Applied {
                seq: 0,
                next_id: hub.next_message_id(),
            }),
            hub,
            synced: watch::Sender::new(0),
            recheck: Notify::new(),
            link: Mutex::new(LinkStatus::default()),
            view: ArcSwap::from_pointee(ClusterView::default()),
            tasks: Mutex::new(Vec::new()),
        });
        info!(node = %cluster.node, "redis engine: {}", cluster.url);
        let mut synced = cluster.synced.subscribe();
        let follower = tokio::spawn(follow::run(cluster.clone(), shutdown.clone()));
        let registry = tokio::spawn(nodes::run(cluster.clone(), shutdown));
        cluster
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([follower, registry]);
        if tokio::time::timeout(Duration::from_secs(5), synced.changed())
            .await
            .is_err()
        {
            warn!(
                "redis engine: Redis at {} is not reachable yet; serving without the shared backlog until it is",
                cluster.url
            );
        }
        Ok(cluster)
    }

    /// Wait for the follower and the registry to finish (after shutdown
    /// was signalled); the registry removes this node on its way out.
    pub async fn finish(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    pub fn link(&self) -> LinkStatus {
        self.link.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_link(&self, error: Option<String>) {
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        let connected = error.is_none();
        if connected != link.connected || link.since.is_none() {
            link.since = Some(SystemTime::now());
            match &error {
                None => info!("redis engine: connected to {}", self.url),
                Some(e) => warn!("redis engine: lost {}: {e}", self.url),
            }
        }
        link.connected = connected;
        if error.is_some() {
            link.last_error = error;
        }
    }

    /// The nodes as last seen.
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.load_full()
    }

    /// Publish messages in this order (one round trip for all of them).
    /// Each gets its id, or the reason it was not published.
    pub async fn publish_many(&self, batch: &[(Bytes, Bytes)]) -> Vec<Result<u64, ClusterError>> {
        let chunks: Vec<&[(Bytes, Bytes)]> = batch.chunks(PUBLISH_CHUNK).collect();
        let mut results: Vec<Option<Result<u64, ClusterError>>> = vec![None; chunks.len()];
        let mut pending: Vec<usize> = (0..chunks.len()).collect();
        // A first round; then, for what Redis refused only because it had
        // restarted, up to two more: after loading the script it forgot,
        // after the follower restored the state it lost.
        for _ in 0..3 {
            if pending.is_empty() {
                break;
            }
            let replies = match self.send_publishes(&chunks, &pending).await {
                Ok(replies) => replies,
                Err(e) => {
                    for &i in &pending {
                        results[i] = Some(Err(e.clone()));
                    }
                    break;
                }
            };
            let (mut no_script, mut no_state) = (Vec::new(), Vec::new());
            for (&i, reply) in pending.iter().zip(replies) {
                results[i] = Some(match reply {
                    Value::Int(first) => Ok(first as u64),
                    Value::ServerError(e) => {
                        match e.code() {
                            "NOSCRIPT" => no_script.push(i),
                            "NOEPOCH" | "SEEDING" => no_state.push(i),
                            _ => {}
                        }
                        Err(ClusterError::Unavailable(format!(
                            "{} {}",
                            e.code(),
                            e.details().unwrap_or_default()
                        )))
                    }
                    _ => Err(ClusterError::Unavailable("unexpected reply".into())),
                });
            }
            if !no_script.is_empty() {
                if let Err(e) = self.load_script(&self.scripts.publish).await {
                    for &i in &no_script {
                        results[i] = Some(Err(e.clone()));
                    }
                    no_script.clear();
                }
            }
            if !no_state.is_empty() && !self.await_resync().await {
                no_state.clear();
            }
            pending = no_script;
            pending.extend(no_state);
            pending.sort_unstable();
        }
        let mut ids = Vec::with_capacity(batch.len());
        for (chunk, result) in chunks.iter().zip(results) {
            let result =
                result.unwrap_or_else(|| Err(ClusterError::Unavailable("not sent".into())));
            ids.extend((0..chunk.len() as u64).map(|k| result.clone().map(|first| first + k)));
        }
        let published = ids.iter().filter(|r| r.is_ok()).count();
        if published > 0 {
            self.hub.stats.add(Stat::UniqueMessages, published as u64);
        }
        if let Some(last) = ids.iter().rev().find_map(|r| r.as_ref().ok()) {
            self.wait_applied(|a| a.next_id > *last).await;
        }
        ids
    }

    /// One pipeline of publish scripts, one for each chunk at `indexes`.
    async fn send_publishes(
        &self,
        chunks: &[&[(Bytes, Bytes)]],
        indexes: &[usize],
    ) -> Result<Vec<Value>, ClusterError> {
        let channel_prefix = self.keys.channel_prefix();
        let invocations: Vec<_> = indexes
            .iter()
            .map(|&i| {
                let mut invocation = self.scripts.publish.prepare_invoke();
                invocation
                    .key(self.keys.epoch())
                    .key(self.keys.id())
                    .key(self.keys.seq())
                    .key(self.keys.log())
                    .key(self.keys.channels())
                    .arg(&channel_prefix)
                    .arg(LOG_LENGTH);
                for (channel, text) in chunks[i] {
                    let (max, age) = self.hub.limits_for(channel);
                    invocation
                        .arg(channel.as_ref())
                        .arg(text.as_ref())
                        .arg(max)
                        .arg(age);
                }
                invocation
            })
            .collect();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for invocation in &invocations {
            pipe.invoke_script(invocation);
        }
        self.query(&pipe).await
    }

    /// Publish one message.
    pub async fn publish(&self, channel: &[u8], text: Bytes) -> Result<u64, ClusterError> {
        self.publish_many(&[(Bytes::copy_from_slice(channel), text)])
            .await
            .pop()
            .unwrap_or_else(|| Err(ClusterError::Unavailable("not sent".into())))
    }

    /// Empty one channel's history on every node; `None` if no node knows
    /// the channel.
    pub async fn clear_channel(&self, name: &[u8]) -> Result<Option<usize>, ClusterError> {
        let mut invocation = self.scripts.clear.prepare_invoke();
        invocation
            .key(self.keys.epoch())
            .key(self.keys.seq())
            .key(self.keys.log())
            .key(self.keys.channels())
            .key(self.keys.channel(name))
            .arg(name)
            .arg(LOG_LENGTH);
        let known_here = self.hub.list_channels().iter().any(|c| c.name == name);
        let (existed, count, seq): (i64, u64, u64) = self.invoke(&invocation).await?;
        self.wait_applied(|a| a.seq >= seq).await;
        Ok((existed == 1 || known_here).then_some(count as usize))
    }

    /// Empty every channel's history on every node.
    pub async fn clear_caches(&self) -> Result<(), ClusterError> {
        let mut invocation = self.scripts.clear_all.prepare_invoke();
        invocation
            .key(self.keys.epoch())
            .key(self.keys.seq())
            .key(self.keys.log())
            .key(self.keys.channels())
            .arg(self.keys.channel_prefix())
            .arg(LOG_LENGTH);
        let seq: u64 = self.invoke(&invocation).await?;
        self.wait_applied(|a| a.seq >= seq).await;
        Ok(())
    }

    /// Run a script (loading it if Redis does not have it).
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, ClusterError> {
        let mut conn = self.conn.clone();
        let mut attempt =
            tokio::time::timeout(COMMAND_TIMEOUT, invocation.invoke_async(&mut conn)).await;
        if matches!(&attempt, Ok(Err(e)) if e.is_connection_refusal()) {
            // Nothing was sent, and the manager is now reconnecting (Redis
            // may be back): one more try.
            attempt =
                tokio::time::timeout(COMMAND_TIMEOUT, invocation.invoke_async(&mut conn)).await;
        }
        match attempt {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if matches!(e.code(), Some("NOEPOCH" | "SEEDING")) {
                    self.recheck.notify_one();
                }
                Err(e.into())
            }
            Err(_) => Err(ClusterError::Unavailable("timed out".into())),
        }
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, ClusterError> {
        let mut conn = self.conn.clone();
        let mut attempt = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async(&mut conn)).await;
        if matches!(&attempt, Ok(Err(e)) if e.is_connection_refusal()) {
            // Nothing was sent, and the manager is now reconnecting (Redis
            // may be back): one more try.
            attempt = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async(&mut conn)).await;
        }
        match attempt {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(ClusterError::Unavailable("timed out".into())),
        }
    }

    async fn load_script(&self, script: &redis::Script) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(
            COMMAND_TIMEOUT,
            script.prepare_invoke().load_async(&mut conn),
        )
        .await
        {
            Ok(result) => result.map(|_| ()).map_err(Into::into),
            Err(_) => Err(ClusterError::Unavailable("timed out".into())),
        }
    }

    /// Ask the follower to look at the shared state again and wait (a
    /// little) until it has. Returns whether it did.
    async fn await_resync(&self) -> bool {
        let mut synced = self.synced.subscribe();
        synced.borrow_and_update();
        self.recheck.notify_one();
        tokio::time::timeout(APPLY_WAIT, synced.changed())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Wait until this node has taken in the log up to what `done` asks
    /// (bounded: the change is in Redis either way).
    async fn wait_applied(&self, done: impl Fn(&Applied) -> bool) {
        let mut applied = self.applied.subscribe();
        let _ = tokio::time::timeout(APPLY_WAIT, applied.wait_for(|a| done(a))).await;
    }

    /// Subscribers of a channel on every live node.
    pub fn count_subscribers(&self, channel: &[u8]) -> usize {
        self.hub.count_subscribers(channel) + self.view().others_on(channel)
    }

    /// Every channel known to any live node, with the cached messages and
    /// the subscribers of all nodes, in byte order of the names.
    pub fn list_channels(&self) -> Vec<ChannelSummary> {
        let mut list = self.hub.list_channels();
        let view = self.view();
        let mut extra: std::collections::BTreeMap<Bytes, usize> = Default::default();
        for node in view.others() {
            for (name, n) in &node.subscribers {
                match list.binary_search_by(|c| c.name.as_ref().cmp(name.as_ref())) {
                    Ok(i) => list[i].subscribers += n,
                    Err(_) => *extra.entry(name.clone()).or_default() += n,
                }
            }
        }
        list.extend(extra.into_iter().map(|(name, subscribers)| ChannelSummary {
            name,
            messages: 0,
            subscribers,
            last_id: None,
        }));
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// The counters of every live node added up, in SHOWSTATS order; a
    /// counter is listed once any node has touched it.
    pub fn counters(&self) -> Vec<(Stat, u64)> {
        let mut totals: Vec<(Stat, u64)> = self.hub.stats.touched();
        let view = self.view();
        for node in view.others() {
            let Some(info) = &node.info else { continue };
            for (name, value) in &info.counters {
                let Some(stat) = Stat::ALL.iter().find(|s| s.name() == name) else {
                    continue;
                };
                match totals.iter_mut().find(|(s, _)| s == stat) {
                    Some((_, total)) => *total += value,
                    None => totals.push((*stat, *value)),
                }
            }
        }
        totals.sort_by_key(|(s, _)| *s as usize);
        totals
    }
}

/// The field/value pairs of an `HGETALL` reply (RESP2 array or RESP3 map).
fn hash_pairs(reply: Value) -> Vec<(Value, Value)> {
    match reply {
        Value::Array(flat) => {
            let mut flat = flat.into_iter();
            std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => Vec::new(),
    }
}

/// A random hex token.
fn random_token() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; 12];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
