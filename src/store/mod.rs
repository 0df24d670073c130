//! The SQLite database: schema migrations, and the channel caches kept on
//! disk so that they survive restarts.
//!
//! Only the background persistence thread ([`persist`]) writes messages;
//! publishing never waits on the disk except in durable mode, where a
//! publisher's `OK` waits for the group commit that holds its message.

pub mod accounts;
mod ceiling;
mod db;
pub mod persist;
pub mod private;
pub mod setup_code;
pub mod webhooks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rusqlite::{params, Connection, OpenFlags};

pub use ceiling::IdCeiling;

/// The database's file name inside the data directory.
pub const DB_FILE: &str = "meteord.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: u64,
    pub channel: Bytes,
    pub text: Bytes,
    pub timestamp: u64,
}

/// What a start restores.
#[derive(Debug, Default)]
pub struct Restored {
    /// Oldest first.
    pub messages: Vec<StoredMessage>,
    /// The lowest id the next message may take.
    pub next_id: u64,
}

/// Schema versions, applied in order; `PRAGMA user_version` says how many
/// have run.
const MIGRATIONS: &[&str] = &[
    // 1: channel caches and small facts such as the next message id.
    "CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        channel BLOB NOT NULL,
        text BLOB NOT NULL,
        ts INTEGER NOT NULL
     );
     CREATE INDEX messages_by_channel ON messages(channel, id);
     CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    // 2: the admin account, its sessions, API tokens, and settings made in
    // the admin UI.
    "CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created INTEGER NOT NULL
     );
     CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY,
        user TEXT NOT NULL,
        csrf TEXT NOT NULL,
        expires INTEGER NOT NULL
     );
     CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        token_hash BLOB UNIQUE NOT NULL,
        created INTEGER NOT NULL,
        last_used INTEGER
     );
     CREATE TABLE channel_settings (
        pattern TEXT PRIMARY KEY,
        max_messages INTEGER,
        max_age INTEGER,
        persist INTEGER,
        transports TEXT,
        anonymous INTEGER NOT NULL DEFAULT 1,
        updated INTEGER NOT NULL
     );
     CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated INTEGER NOT NULL
     );",
    // 3: API tokens get scopes and channel patterns; the ones made before
    // keep the full power they had.
    "ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'publish subscribe manage';
     ALTER TABLE api_tokens ADD COLUMN channels TEXT NOT NULL DEFAULT '*';",
    // 4: webhook deliveries, kept until the application takes them.
    "CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        url TEXT NOT NULL,
        channel TEXT NOT NULL,
        event TEXT NOT NULL,
        body BLOB NOT NULL,
        created INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try INTEGER NOT NULL,
        first_try INTEGER,
        state TEXT NOT NULL DEFAULT 'pending',
        last_result TEXT,
        finished INTEGER
     );
     CREATE INDEX webhook_deliveries_queue ON webhook_deliveries(state, url, channel, id);",
];

/// An open database.
pub struct Store {
    path: PathBuf,
    conn: Connection,
}

impl Store {
    /// Open (creating if needed) the database in `dir`. A file that is not
    /// a usable database is renamed aside — never deleted — and a fresh one
    /// started; the returned note says so.
    pub fn open(dir: &Path) -> Result<(Store, Option<String>), StoreError> {
        private::create_dir(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        match Store::open_file(&path) {
            Ok(store) => Ok((store, None)),
            Err(error) if path.exists() => {
                let aside = set_aside(&path).map_err(|source| StoreError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                let note = format!(
                    "{} could not be used ({error}); it was moved to {} and a new database started",
                    path.display(),
                    aside.display()
                );
                Ok((Store::open_file(&path)?, Some(note)))
            }
            Err(error) => Err(error),
        }
    }

    fn open_file(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        // SQLite gives its WAL and shared-memory files the database's mode.
        let private = if path.exists() {
            private::restrict(path, 0o600)
        } else {
            private::create_file(path).map(drop)
        };
        private.map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
        .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // WAL: readers never block the writer; NORMAL sync is durable at
        // each checkpoint, FULL where a commit must be (durable mode).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", path.display()));
            if side.exists() {
                let _ = private::restrict(&side, 0o600);
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        // 8 MiB of page cache instead of SQLite's 2: a snapshot of many
        // channels inserts into the channel index all over, and with the
        // default cache each such insert re-reads its page from the file
        // (a 200,000-message snapshot took 1.7 times as long). Pages are only
        // held once a database is that large.
        conn.pragma_update(None, "cache_size", -8192).map_err(err)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(check),
            )));
        }
        let mut store = Store {
            path: path.to_path_buf(),
            conn,
        };
        store.migrate().map_err(err)?;
        Ok(store)
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        let version: usize =
            self.conn
                .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (index + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Load the stored caches, keeping at most `max_per_channel` messages
    /// (0: all) per channel, none older than `oldest` (Unix seconds).
    pub fn load(&self, max_per_channel: usize, oldest: u64) -> Result<Restored, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, channel, text, ts FROM messages ORDER BY id")
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredMessage {
                    id: r.get::<_, i64>(0)? as u64,
                    channel: Bytes::from(r.get::<_, Vec<u8>>(1)?),
                    text: Bytes::from(r.get::<_, Vec<u8>>(2)?),
                    timestamp: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(|e| self.error(e))?;
        let mut all = Vec::new();
        let mut max_id = None;
        for row in rows {
            let message = row.map_err(|e| self.error(e))?;
            max_id = Some(max_id.map_or(message.id, |m: u64| m.max(message.id)));
            if message.timestamp >= oldest {
                all.push(message);
            }
        }
        // Keep only the newest `max_per_channel` of each channel.
        if max_per_channel > 0 {
            let mut kept: HashMap<Bytes, usize> = HashMap::new();
            let mut keep = vec![false; all.len()];
            for (i, message) in all.iter().enumerate().rev() {
                let count = kept.entry(message.channel.clone()).or_default();
                if *count < max_per_channel {
                    *count += 1;
                    keep[i] = true;
                }
            }
            let mut flags = keep.into_iter();
            all.retain(|_| flags.next().unwrap_or(false));
        }
        let stored_next = self.meta("next_id")?.unwrap_or(0);
        Ok(Restored {
            messages: all,
            next_id: stored_next.max(max_id.map_or(0, |m| m + 1)),
        })
    }

    fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
                r.get::<_, i64>(0)
            }) {
            Ok(v) => Ok(Some(v as u64)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The highest stored id of each channel.
    pub fn stored_heads(&self) -> Result<HashMap<Bytes, u64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT channel, MAX(id) FROM messages GROUP BY channel")
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    Bytes::from(r.get::<_, Vec<u8>>(0)?),
                    r.get::<_, i64>(1)? as u64,
                ))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// One transaction: insert `new` messages, make each listed channel
    /// hold nothing older than its oldest cached id (all gone for `None`),
    /// and record the next id.
    pub fn write(
        &mut self,
        new: &[&crate::hub::Message],
        trims: &[(Bytes, Option<u64>)],
        next_id: u64,
    ) -> Result<(), StoreError> {
        let path = self.path.display().to_string();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages (id, channel, text, ts) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err)?;
            for m in new {
                insert
                    .execute(params![
                        m.id as i64,
                        m.channel.as_ref(),
                        m.text.as_ref(),
                        m.timestamp as i64
                    ])
                    .map_err(err)?;
            }
            let mut trim = tx
                .prepare_cached("DELETE FROM messages WHERE channel = ?1 AND id < ?2")
                .map_err(err)?;
            for (channel, oldest) in trims {
                let below = oldest.map_or(i64::MAX, |id| id as i64);
                trim.execute(params![channel.as_ref(), below])
                    .map_err(err)?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('next_id', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
                [next_id as i64],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

/// Rename a damaged database (and its journal files) out of the way.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = crate::hub::unix_now();
    let aside = path.with_extension(format!("db.corrupt-{stamp}"));
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let journal = PathBuf::from(format!("{}{suffix}", path.display()));
        if journal.exists() {
            let _ = std::fs::rename(&journal, format!("{}{suffix}", aside.display()));
        }
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Message;

    fn message(id: u64, channel: &'static str, ts: u64) -> Message {
        Message {
            id,
            channel: Bytes::from_static(channel.as_bytes()),
            text: Bytes::from(format!("t{id}")),
            timestamp: ts,
        }
    }

    #[test]
    fn write_trim_and_load_with_limits() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, note) = Store::open(dir.path()).unwrap();
        assert!(note.is_none());
        let msgs: Vec<Message> = (0..6)
            .map(|i| message(i, if i % 2 == 0 { "a" } else { "b" }, 100 + i))
            .collect();
        let refs: Vec<&Message> = msgs.iter().collect();
        store.write(&refs, &[], 6).unwrap();
        // b loses everything before id 3.
        store
            .write(&[], &[(Bytes::from_static(b"b"), Some(3))], 6)
            .unwrap();
        let restored = store.load(0, 0).unwrap();
        let ids: Vec<u64> = restored.messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, [0, 2, 3, 4, 5]);
        assert_eq!(restored.next_id, 6);
        // Limits apply on load: 1 per channel, nothing older than ts 103.
        let ids: Vec<u64> = store
            .load(1, 103)
            .unwrap()
            .messages
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, [4, 5]);
        // A channel gone entirely.
        store
            .write(&[], &[(Bytes::from_static(b"a"), None)], 6)
            .unwrap();
        let heads = store.stored_heads().unwrap();
        assert_eq!(heads.get(&Bytes::from_static(b"b")), Some(&5));
        assert!(!heads.contains_key(&Bytes::from_static(b"a")));
        // The next id never goes back, even if a smaller one is written.
        store.write(&[], &[], 2).unwrap();
        assert_eq!(store.load(0, 0).unwrap().next_id, 6);
    }

    #[test]
    fn a_corrupt_file_is_set_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(DB_FILE),
            b"this is not a database at all, not even close",
        )
        .unwrap();
        let (store, note) = Store::open(dir.path()).unwrap();
        let note = note.expect("a note about the bad file");
        assert!(note.contains("meteord.db"), "{note}");
        assert!(store.load(0, 0).unwrap().messages.is_empty());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            std::fs::read(aside[0].path()).unwrap(),
            b"this is not a database at all, not even close"
        );
    }
}
