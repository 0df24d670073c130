//! Webhook deliveries kept in the database until the application has
//! taken them: pending ones survive a restart, failed ones wait for their
//! next try, and dead letters stay visible until someone retries them.
//!
//! One row per event and URL. Deliveries of one channel to one URL go out
//! in order: only the oldest pending one of each (URL, channel) is ever
//! due, so a later event never overtakes one that is being retried.

use std::path::Path;
use std::sync::MutexGuard;

use rusqlite::{params, Connection, OptionalExtension};

use super::db::Db;
use super::StoreError;

/// Delivered rows kept for the admin UI's list; older ones are removed.
const KEEP_DELIVERED: i64 = 1000;

/// An event to deliver to one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The event's id (the same for every URL), for the receiver to
    /// drop duplicates.
    pub event_id: String,
    pub url: String,
    pub channel: String,
    pub event: String,
    pub body: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub created: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Retried for as long as allowed: waits for a retry by hand.
    Dead,
}

impl DeliveryState {
    pub const fn name(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    fn from_name(name: &str) -> DeliveryState {
        match name {
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            _ => DeliveryState::Pending,
        }
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub row: i64,
    pub event_id: String,
    pub url: String,
    pub channel: String,
    pub event: String,
    pub body: Vec<u8>,
    pub created: u64,
    pub attempts: u32,
    /// When it is next tried (milliseconds since the epoch).
    pub next_try: u64,
    /// When it was first tried: its retries end a while after.
    pub first_try: Option<u64>,
    pub state: DeliveryState,
    /// The last answer: an HTTP status or why there was none.
    pub last_result: Option<String>,
    pub finished: Option<u64>,
}

/// How many deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

/// The delivery queue of one database.
pub struct Deliveries {
    db: Db,
}

const COLUMNS: &str = "id, event_id, url, channel, event, body, created, attempts, next_try, first_try, state, last_result, finished";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        row: row.get(0)?,
        event_id: row.get(1)?,
        url: row.get(2)?,
        channel: row.get(3)?,
        event: row.get(4)?,
        body: row.get(5)?,
        created: row.get::<_, i64>(6)? as u64,
        attempts: row.get::<_, i64>(7)? as u32,
        next_try: row.get::<_, i64>(8)? as u64,
        first_try: row.get::<_, Option<i64>>(9)?.map(|t| t as u64),
        state: DeliveryState::from_name(&row.get::<_, String>(10)?),
        last_result: row.get(11)?,
        finished: row.get::<_, Option<i64>>(12)?.map(|t| t as u64),
    })
}

impl Deliveries {
    /// Open the queue of the database at `path` (already migrated by
    /// [`super::Store::open`]).
    pub fn open(path: &Path) -> Result<Deliveries, StoreError> {
        Ok(Deliveries {
            db: Db::open(path)?,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db.conn()
    }

    fn error(&self, source: rusqlite::Error) -> StoreError {
        self.db.error(source)
    }

    /// Queue deliveries, due at once, in one transaction.
    pub fn add(&self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.error(e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO webhook_deliveries (event_id, url, channel, event, body, created, next_try)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                )
                .map_err(|e| self.error(e))?;
            for d in deliveries {
                insert
                    .execute(params![
                        d.event_id,
                        d.url,
                        d.channel,
                        d.event,
                        d.body,
                        d.created as i64
                    ])
                    .map_err(|e| self.error(e))?;
            }
        }
        tx.commit().map_err(|e| self.error(e))
    }

    /// The deliveries to try now: of each URL and channel, the oldest
    /// pending one, if its time has come; at most `limit`, oldest first.
    pub fn due(&self, now: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let mut query = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM webhook_deliveries WHERE id IN (
                    SELECT MIN(id) FROM webhook_deliveries WHERE state = 'pending'
                    GROUP BY url, channel)
                 AND next_try <= ?1 ORDER BY id LIMIT ?2"
            ))
            .map_err(|e| self.error(e))?;
        let rows = query
            .query_map(params![now as i64, limit as i64], read_row)
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// When the next pending delivery is due (milliseconds), if any.
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        self.conn()
            .query_row(
                "SELECT MIN(next_try) FROM webhook_deliveries WHERE id IN (
                    SELECT MIN(id) FROM webhook_deliveries WHERE state = 'pending'
                    GROUP BY url, channel)",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|t| t.map(|t| t as u64))
            .map_err(|e| self.error(e))
    }

    /// The application took it.
    pub fn delivered(&self, row: i64, result: &str, now: u64) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,
                last_result = ?2, finished = ?3, first_try = COALESCE(first_try, ?3)
             WHERE id = ?1",
            params![row, result, now as i64],
        )
        .map_err(|e| self.error(e))?;
        conn.execute(
            "DELETE FROM webhook_deliveries WHERE state = 'delivered' AND id NOT IN (
                SELECT id FROM webhook_deliveries WHERE state = 'delivered'
                ORDER BY id DESC LIMIT ?1)",
            params![KEEP_DELIVERED],
        )
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// A try failed: try again at `next_try`, or never again (`None`:
    /// a dead letter).
    pub fn failed(
        &self,
        row: i64,
        result: &str,
        now: u64,
        next_try: Option<u64>,
    ) -> Result<(), StoreError> {
        let (state, next, finished) = match next_try {
            Some(at) => ("pending", at as i64, None),
            None => ("dead", now as i64, Some(now as i64)),
        };
        self.conn()
            .execute(
                "UPDATE webhook_deliveries SET state = ?2, attempts = attempts + 1,
                    last_result = ?3, next_try = ?4, finished = ?5,
                    first_try = COALESCE(first_try, ?6)
                 WHERE id = ?1",
                params![row, state, result, next, finished, now as i64],
            )
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Try a dead letter again from the start. Returns whether it was one.
    pub fn retry(&self, row: i64, now: u64) -> Result<bool, StoreError> {
        self.conn()
            .execute(
                "UPDATE webhook_deliveries SET state = 'pending', attempts = 0,
                    next_try = ?2, first_try = NULL, finished = NULL
                 WHERE id = ?1 AND state = 'dead'",
                params![row, now as i64],
            )
            .map(|n| n > 0)
            .map_err(|e| self.error(e))
    }

    /// The latest deliveries, newest first, optionally of one state.
    pub fn recent(
        &self,
        state: Option<DeliveryState>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let mut query = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM webhook_deliveries
                 WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(|e| self.error(e))?;
        let rows = query
            .query_map(
                params![state.map(DeliveryState::name), limit as i64],
                read_row,
            )
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// One delivery by row.
    pub fn get(&self, row: i64) -> Result<Option<Delivery>, StoreError> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE id = ?1"),
                params![row],
                read_row,
            )
            .optional()
            .map_err(|e| self.error(e))
    }

    pub fn counts(&self) -> Result<Counts, StoreError> {
        let conn = self.conn();
        let mut query = conn
            .prepare_cached("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state")
            .map_err(|e| self.error(e))?;
        let mut counts = Counts::default();
        let rows = query
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.error(e))?;
        for row in rows {
            let (state, n) = row.map_err(|e| self.error(e))?;
            match DeliveryState::from_name(&state) {
                DeliveryState::Pending => counts.pending = n,
                DeliveryState::Delivered => counts.delivered = n,
                DeliveryState::Dead => counts.dead = n,
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> (tempfile::TempDir, Deliveries) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = super::super::Store::open(dir.path()).unwrap();
        let queue = Deliveries::open(store.path()).unwrap();
        (dir, queue)
    }

    fn new(id: &str, channel: &str) -> NewDelivery {
        NewDelivery {
            event_id: id.into(),
            url: "http://127.0.0.1:9/hook".into(),
            channel: channel.into(),
            event: "member_joined".into(),
            body: b"{}".to_vec(),
            created: 100,
        }
    }

    #[test]
    fn only_the_head_of_each_channel_is_due_and_a_failure_holds_it_back() {
        let (_dir, q) = queue();
        q.add(&[new("1", "a"), new("2", "a"), new("3", "b")])
            .unwrap();
        let due: Vec<String> = q
            .due(100, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.event_id)
            .collect();
        assert_eq!(due, ["1", "3"]);
        let head = q.due(100, 10).unwrap()[0].row;
        q.failed(head, "503", 100, Some(200)).unwrap();
        let due: Vec<String> = q
            .due(150, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.event_id)
            .collect();
        assert_eq!(due, ["3"], "channel a waits for its head");
        assert_eq!(q.next_due().unwrap(), Some(100));
        q.delivered(head, "200", 200).unwrap();
        let due: Vec<String> = q
            .due(200, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.event_id)
            .collect();
        assert_eq!(due, ["2", "3"]);
    }

    #[test]
    fn a_dead_letter_lets_the_channel_go_on_and_can_be_retried() {
        let (_dir, q) = queue();
        q.add(&[new("1", "a"), new("2", "a")]).unwrap();
        let head = q.due(100, 10).unwrap()[0].row;
        q.failed(head, "connection refused", 100, None).unwrap();
        assert_eq!(q.due(100, 10).unwrap()[0].event_id, "2");
        assert_eq!(q.counts().unwrap().dead, 1);
        assert!(q.retry(head, 300).unwrap());
        assert!(
            !q.retry(head, 300).unwrap(),
            "only a dead letter is retried"
        );
        let again = q.get(head).unwrap().unwrap();
        assert_eq!(again.state, DeliveryState::Pending);
        assert_eq!(again.attempts, 0);
    }
}
