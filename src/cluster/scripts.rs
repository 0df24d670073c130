//! The Lua scripts that change the shared state. Each runs atomically in
//! Redis, so a message gets its id, lands in its channel's history and in
//! the shared log in one step, and no node ever sees one without the other.
//!
//! Keys (under the prefix, see [`super::Keys`]):
//! - `epoch`: names the current shared state; missing when Redis has lost
//!   (or never had) it, `seeding:<token>` while a node refills it;
//! - `id`: the next message id; `seq`: the last log sequence number;
//! - `log`: the stream every node follows, one entry per change, with a
//!   `seq` that grows by exactly one, so a node sees any gap;
//! - `channels`: the set of channel names; `ch:<name>`: a channel's
//!   history, a stream whose entry ids are millisecond times (so trimming by
//!   age is `XTRIM MINID`).

use redis::Script;

/// Refuse to change anything while the shared state is missing or being
/// refilled: a message published then could reuse an id.
const GUARD: &str = r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then return redis.error_reply('NOEPOCH no meteord state in Redis yet') end
if string.sub(epoch, 1, 8) == 'seeding:' then
  return redis.error_reply('SEEDING the meteord state is being restored')
end
";

/// Publish a batch of messages, in order. KEYS: epoch, id, seq, log,
/// channels. ARGV: channel key prefix, log length, then for each message:
/// channel, text, max messages (0: no limit), max age (s).
/// Returns the first message's id (the others follow one by one).
/// Ids and log numbers are taken for the whole batch at once, and each
/// channel is trimmed once: a batch costs little more than its XADDs.
const PUBLISH: &str = r"
local n = (#ARGV - 2) / 4
local first = redis.call('INCRBY', KEYS[2], n) - n
local seq = redis.call('INCRBY', KEYS[3], n) - n
local ts = tonumber(redis.call('TIME')[1])
local ages = {}
for k = 0, n - 1 do
  local at = 3 + 4 * k
  local name, text, max = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  local key = ARGV[1] .. name
  if max > 0 then
    redis.call('XADD', key, 'MAXLEN', max, '*', 'id', first + k, 'ts', ts, 'text', text)
  else
    redis.call('XADD', key, '*', 'id', first + k, 'ts', ts, 'text', text)
  end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*',
    'seq', seq + k + 1, 'op', 'm', 'id', first + k, 'ch', name, 'ts', ts, 'text', text)
  ages[name] = tonumber(ARGV[at + 3])
end
for name, age in pairs(ages) do
  local key = ARGV[1] .. name
  if ts > age then redis.call('XTRIM', key, 'MINID', (ts - age) * 1000) end
  redis.call('EXPIRE', key, age + 1)
  redis.call('SADD', KEYS[5], name)
end
return first
";

/// KEYS: epoch, seq, log, channels, channel history.
/// ARGV: channel, log length. Returns {existed (0/1), messages cleared, seq}.
const CLEAR: &str = r"
local existed = redis.call('EXISTS', KEYS[5])
local count = redis.call('XLEN', KEYS[5])
redis.call('DEL', KEYS[5])
redis.call('SREM', KEYS[4], ARGV[1])
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'seq', seq, 'op', 'clear', 'ch', ARGV[1])
return {existed, count, seq}
";

/// KEYS: epoch, seq, log, channels. ARGV: channel key prefix, log length.
/// Returns the seq.
const CLEAR_ALL: &str = r"
for _, name in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  redis.call('DEL', ARGV[1] .. name)
end
redis.call('DEL', KEYS[4])
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'seq', seq, 'op', 'clearall')
return seq
";

/// Everything a node needs to serve: KEYS: epoch, id, seq, log, channels.
/// ARGV: channel key prefix, the node's next id (the id counter is raised
/// to it, so ids never go back after Redis lost data).
/// Returns {epoch, seq, last log entry id, {name, entries, name, ...}}.
const SNAPSHOT: &str = r"
local next_id = tonumber(redis.call('GET', KEYS[2]) or '0')
if next_id < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
local seq = redis.call('GET', KEYS[3]) or '0'
local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
local last_id = '0-0'
if #last > 0 then last_id = last[1][1] end
local channels = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local entries = redis.call('XRANGE', ARGV[1] .. name, '-', '+')
  if #entries == 0 then
    redis.call('SREM', KEYS[5], name)
  else
    table.insert(channels, name)
    table.insert(channels, entries)
  end
end
return {redis.call('GET', KEYS[1]), seq, last_id, channels}
";

/// Start refilling a Redis that has no state. KEYS: epoch, id, seq, log.
/// ARGV: token, the node's next id. Returns 1 if this node may refill it,
/// 0 if another node got there first.
const CLAIM: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], 'seeding:' .. ARGV[1], 'PX', 30000)
local next_id = tonumber(redis.call('GET', KEYS[2]) or '0')
if next_id < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('DEL', KEYS[4])
redis.call('SET', KEYS[3], 0)
return 1
";

/// Refill one channel's history, unless it exists. KEYS: epoch, channels,
/// channel history. ARGV: token, channel, max age, then id, timestamp, text
/// for each message (oldest first).
const SEED_CHANNEL: &str = r"
if redis.call('GET', KEYS[1]) ~= 'seeding:' .. ARGV[1] then
  return redis.error_reply('SEEDING another node is restoring the meteord state')
end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
for i = 4, #ARGV, 3 do
  redis.call('XADD', KEYS[3], ARGV[i + 1] .. '000-*', 'id', ARGV[i], 'ts', ARGV[i + 1], 'text', ARGV[i + 2])
end
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]) + 1)
redis.call('SADD', KEYS[2], ARGV[2])
return 1
";

/// KEYS: epoch. ARGV: token. Returns 1 if the refill was still this node's.
const FINISH_SEED: &str = r"
if redis.call('GET', KEYS[1]) ~= 'seeding:' .. ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
";

pub(super) struct Scripts {
    pub publish: Script,
    pub clear: Script,
    pub clear_all: Script,
    pub snapshot: Script,
    pub claim: Script,
    pub seed_channel: Script,
    pub finish_seed: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        let guarded = |body: &str| Script::new(&format!("{GUARD}{body}"));
        Scripts {
            publish: guarded(PUBLISH),
            clear: guarded(CLEAR),
            clear_all: guarded(CLEAR_ALL),
            snapshot: guarded(SNAPSHOT),
            claim: Script::new(CLAIM),
            seed_channel: Script::new(SEED_CHANNEL),
            finish_seed: Script::new(FINISH_SEED),
        }
    }
}
