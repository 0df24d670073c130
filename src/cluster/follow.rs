//! Following the shared log: the one way messages reach this node's hub.
//!
//! The follower keeps its own connection (a blocking `XREAD` would hold up
//! anything else on it). Before it reads, it synchronises:
//!
//! - Redis holds no state (first start, or it restarted empty): this node
//!   claims it, raises the id counter to its own next id, and refills the
//!   channel histories from its cache, so ids never go back and no backlog
//!   is lost while any node still has it;
//! - the state is the one this node followed, and the log still holds the
//!   entry after the last one taken in: read on from there (an outage cost
//!   nothing);
//! - otherwise (another state, or the log moved on past us): load every
//!   channel's history in one atomic snapshot, deliver what is new in id
//!   order, and follow the log from the snapshot's end.
//!
//! Every log entry carries a sequence number one above the previous one, so
//! a gap (entries trimmed before this node read them) is noticed and repaired
//! with a snapshot.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{random_token, Applied, Cluster, ClusterError};
use crate::hub::Message;

/// How long one `XREAD` waits for news.
const BLOCK: Duration = Duration::from_secs(2);
/// Entries taken per read.
const BATCH: usize = 1000;
/// Waits between attempts to reach Redis.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where this node is in the shared log.
#[derive(Debug, Clone)]
struct Position {
    epoch: String,
    /// The stream id of the last entry taken in.
    entry: String,
    seq: u64,
}

enum Stop {
    Shutdown,
    /// Look at the shared state again (a gap, or someone asked).
    Resync,
}

pub(super) async fn run(cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let mut position: Option<Position> = None;
    let mut backoff = MIN_BACKOFF;
    while !shutdown.is_cancelled() {
        let mut conn = match connect(&cluster).await {
            Ok(conn) => conn,
            Err(e) => {
                cluster.set_link(Some(e.to_string()));
                pause(&shutdown, &mut backoff).await;
                continue;
            }
        };
        loop {
            let synced = tokio::select! {
                _ = shutdown.cancelled() => return,
                synced = sync(&cluster, &mut conn, &mut position) => synced,
            };
            if let Err(e) = synced {
                cluster.set_link(Some(e.to_string()));
                break;
            }
            cluster.set_link(None);
            backoff = MIN_BACKOFF;
            cluster.synced.send_modify(|n| *n += 1);
            let Some(at) = position.as_mut() else { break };
            match follow(&cluster, &mut conn, at, &shutdown).await {
                Ok(Stop::Shutdown) => return,
                Ok(Stop::Resync) => continue,
                Err(e) => {
                    cluster.set_link(Some(e.to_string()));
                    break;
                }
            }
        }
        pause(&shutdown, &mut backoff).await;
    }
}

async fn pause(shutdown: &CancellationToken, backoff: &mut Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

async fn connect(cluster: &Cluster) -> Result<MultiplexedConnection, ClusterError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(BLOCK + Duration::from_secs(3)));
    Ok(cluster
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

/// Bring the hub in line with Redis and set where to read the log from.
async fn sync(
    cluster: &Cluster,
    conn: &mut MultiplexedConnection,
    position: &mut Option<Position>,
) -> Result<(), ClusterError> {
    let keys = &cluster.keys;
    loop {
        let epoch: Option<String> = redis::cmd("GET")
            .arg(keys.epoch())
            .query_async(conn)
            .await?;
        match epoch {
            None => seed(cluster, conn).await?,
            Some(epoch) if epoch.starts_with("seeding:") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some(epoch) => {
                if let Some(at) = position.as_ref() {
                    if at.epoch == epoch && continues(cluster, conn, at).await? {
                        return Ok(());
                    }
                }
                match snapshot(cluster, conn).await {
                    Ok(at) => {
                        *position = Some(at);
                        return Ok(());
                    }
                    // The state went away under us: start over.
                    Err(e) if e.code().is_some_and(|c| c == "NOEPOCH" || c == "SEEDING") => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

/// Whether the log still holds the entry right after `at`.
async fn continues(
    cluster: &Cluster,
    conn: &mut MultiplexedConnection,
    at: &Position,
) -> Result<bool, ClusterError> {
    let keys = &cluster.keys;
    let next: Value = redis::cmd("XRANGE")
        .arg(keys.log())
        .arg(format!("({}", at.entry))
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    if let Some(entry) = entries(next).into_iter().next() {
        return Ok(entry.number("seq") == Some(at.seq + 1));
    }
    let seq: Option<u64> = redis::cmd("GET").arg(keys.seq()).query_async(conn).await?;
    Ok(seq.unwrap_or(0) == at.seq)
}

/// Load every channel's history atomically and make the hub match it.
async fn snapshot(
    cluster: &Cluster,
    conn: &mut MultiplexedConnection,
) -> Result<Position, redis::RedisError> {
    let keys = &cluster.keys;
    let mut invocation = cluster.scripts.snapshot.prepare_invoke();
    invocation
        .key(keys.epoch())
        .key(keys.id())
        .key(keys.seq())
        .key(keys.log())
        .key(keys.channels())
        .arg(keys.channel_prefix())
        .arg(cluster.hub.next_message_id());
    let reply: Value = invocation.invoke_async(conn).await?;
    let bad = || redis::RedisError::from((redis::ErrorKind::Parse, "unexpected snapshot reply"));
    let Value::Array(mut parts) = reply else {
        return Err(bad());
    };
    if parts.len() != 4 {
        return Err(bad());
    }
    let listing = parts.pop().ok_or_else(bad)?;
    let entry = text(&parts[2]).ok_or_else(bad)?;
    let seq = text(&parts[1])
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let epoch = text(&parts[0]).ok_or_else(bad)?;
    let mut channels = Vec::new();
    let mut count = 0;
    if let Value::Array(items) = listing {
        let mut items = items.into_iter();
        while let (Some(name), Some(history)) = (items.next(), items.next()) {
            let Some(name) = bytes(name) else { continue };
            let messages: Vec<Message> = entries(history)
                .into_iter()
                .filter_map(|e| e.message(name.clone()))
                .collect();
            count += messages.len();
            channels.push((name, messages));
        }
    }
    let channel_count = channels.len();
    let fresh = cluster.hub.resync(channels);
    info!(
        "redis engine: loaded {count} messages in {channel_count} channels ({fresh} new here); next message id {}",
        cluster.hub.next_message_id()
    );
    cluster.applied.send_replace(Applied {
        seq,
        next_id: cluster.hub.next_message_id(),
    });
    Ok(Position { epoch, entry, seq })
}

/// Fill an empty Redis from this node's caches (if no other node is at it).
async fn seed(cluster: &Cluster, conn: &mut MultiplexedConnection) -> Result<(), ClusterError> {
    let keys = &cluster.keys;
    let hub = &cluster.hub;
    let token = random_token();
    let claimed: i64 = cluster
        .scripts
        .claim
        .key(keys.epoch())
        .key(keys.id())
        .key(keys.seq())
        .key(keys.log())
        .arg(&token)
        .arg(hub.next_message_id())
        .invoke_async(conn)
        .await?;
    if claimed == 0 {
        return Ok(());
    }
    let mut count = 0;
    for channel in hub.list_channels() {
        let messages = hub.messages(&channel.name);
        if messages.is_empty() {
            continue;
        }
        let (_, age) = hub.limits_for(&channel.name);
        // The whole cache in one call (oldest first): it holds at most
        // MaxMessagesPerChannel messages.
        let mut invocation = cluster.scripts.seed_channel.prepare_invoke();
        invocation
            .key(keys.epoch())
            .key(keys.channels())
            .key(keys.channel(&channel.name))
            .arg(&token)
            .arg(channel.name.as_ref())
            .arg(age);
        for message in &messages {
            invocation
                .arg(message.id)
                .arg(message.timestamp)
                .arg(message.text.as_ref());
        }
        let _: i64 = invocation.invoke_async(conn).await?;
        count += messages.len();
    }
    let done: i64 = cluster
        .scripts
        .finish_seed
        .key(keys.epoch())
        .arg(&token)
        .invoke_async(conn)
        .await?;
    if done == 1 {
        info!(
            "redis engine: Redis held no meteord state; filled it from this node ({count} messages, next message id {})",
            hub.next_message_id()
        );
    }
    Ok(())
}

/// Read the log and take each entry in, until told to stop or Redis fails.
async fn follow(
    cluster: &Cluster,
    conn: &mut MultiplexedConnection,
    at: &mut Position,
    shutdown: &CancellationToken,
) -> Result<Stop, ClusterError> {
    let hub = &cluster.hub;
    let log = cluster.keys.log();
    loop {
        let mut xread = redis::cmd("XREAD");
        xread
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&log)
            .arg(&at.entry);
        let read = xread.query_async::<Value>(conn);
        let reply = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Stop::Shutdown),
            _ = cluster.recheck.notified() => return Ok(Stop::Resync),
            reply = read => reply?,
        };
        // [[log, [entry, ...]]], or nil when nothing came.
        let Value::Array(streams) = reply else {
            continue;
        };
        let Some(Value::Array(stream)) = streams.into_iter().next() else {
            continue;
        };
        let Some(list) = stream.into_iter().nth(1) else {
            continue;
        };
        let mut batch = Vec::new();
        let mut stop = None;
        for entry in entries(list) {
            if entry.number("seq") != Some(at.seq + 1) {
                warn!(
                    "redis engine: the shared log skipped past entry {} (this node fell behind); reloading the channels",
                    at.seq + 1
                );
                stop = Some(Stop::Resync);
                break;
            }
            match entry.field("op") {
                Some(b"m") => {
                    if let Some(message) = entry
                        .field("ch")
                        .map(Bytes::copy_from_slice)
                        .and_then(|ch| entry.message(ch))
                    {
                        batch.push(message);
                    }
                }
                Some(b"clear") => {
                    hub.apply(batch.drain(..));
                    if let Some(name) = entry.field("ch") {
                        hub.clear_channel(name);
                    }
                }
                Some(b"clearall") => {
                    hub.apply(batch.drain(..));
                    hub.clear_caches();
                }
                _ => {}
            }
            at.seq += 1;
            at.entry = entry.id;
        }
        hub.apply(batch);
        cluster.applied.send_replace(Applied {
            seq: at.seq,
            next_id: hub.next_message_id(),
        });
        if let Some(stop) = stop {
            return Ok(stop);
        }
    }
}

/// One stream entry: its id and fields.
struct Entry {
    id: String,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    fn number(&self, name: &str) -> Option<u64> {
        std::str::from_utf8(self.field(name)?).ok()?.parse().ok()
    }

    /// The message this entry holds, in `channel`.
    fn message(&self, channel: Bytes) -> Option<Message> {
        Some(Message {
            id: self.number("id")?,
            timestamp: self.number("ts")?,
            text: Bytes::copy_from_slice(self.field("text")?),
            channel,
        })
    }
}

/// The entries of an XRANGE/XREAD reply; malformed ones are left out.
fn entries(reply: Value) -> Vec<Entry> {
    let Value::Array(items) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut pair) = item else {
                return None;
            };
            if pair.len() != 2 {
                return None;
            }
            let Value::Array(flat) = pair.pop()? else {
                return None;
            };
            let id = text(&pair[0])?;
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut flat = flat.into_iter();
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                fields.push((bytes(k)?.to_vec(), bytes(v)?.to_vec()));
            }
            Some(Entry { id, fields })
        })
        .collect()
}

fn bytes(value: Value) -> Option<Bytes> {
    match value {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s)),
        Value::Int(n) => Some(Bytes::from(n.to_string())),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}
