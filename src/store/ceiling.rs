//! Message ids handed out ahead of what is on disk are reserved in a tiny
//! file first, so that after a crash the next id starts above every id any
//! subscriber may have seen: ids never repeat or go back across restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::hub::IdReserve;

pub const CEILING_FILE: &str = "id-ceiling";

pub struct IdCeiling {
    path: PathBuf,
}

impl IdCeiling {
    pub fn new(dir: &Path) -> IdCeiling {
        IdCeiling {
            path: dir.join(CEILING_FILE),
        }
    }

    /// The reserved ceiling, or 0 if none was written.
    pub fn read(&self) -> u64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl IdReserve for IdCeiling {
    /// Write the new ceiling durably: temporary file, fsync, rename.
    fn reserve(&self, upto: u64) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut file = super::private::create_file(&tmp)?;
        writeln!(file, "{upto}")?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            if let Ok(dir) = std::fs::File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}
