//! One connection to the (already migrated) database, shared by a part of
//! the store behind a lock, with errors that name the file.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

pub(crate) struct Db {
    conn: Mutex<Connection>,
    path: String,
}

impl Db {
    /// Open another connection to the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Db, StoreError> {
        let name = path.display().to_string();
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite {
            path: name.clone(),
            source,
        })?;
        let _ = conn.busy_timeout(Duration::from_secs(5));
        Ok(Db {
            conn: Mutex::new(conn),
            path: name,
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A database error, naming the file.
    pub(crate) fn error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}
