//! The previous program, kept by every update, and going back to it.
//!
//! Before an update replaces the program it copies it to
//! `meteord.previous` (`meteord.previous.exe` on Windows) beside it, and
//! notes in `meteord.update.json` which version that is and that the new
//! program is *on trial*. The new program counts its starts while on
//! trial; it is confirmed once it has served for [`trial_period`] or
//! stopped cleanly. A start that finds an earlier start of the same trial
//! never confirmed (the program crashed, was killed or failed within its
//! first seconds) puts the previous program back and runs it instead.
//! `meteord update --rollback` and the dashboard do the same on request;
//! the program they replace becomes the kept one, so a rollback can
//! itself be undone.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{UpdateError, CURRENT_VERSION};

/// How long a new program must serve before it is trusted.
const TRIAL: Duration = Duration::from_secs(10);
/// Debug builds: the trial in seconds, for the tests.
const TRIAL_ENV: &str = "METEORD_UPDATE_TRIAL_SECONDS";

/// What is known about the kept program and the one on trial.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// The version of `meteord.previous`.
    pub previous_version: Option<String>,
    /// Set by an update until the new program is confirmed.
    pub trial: Option<Trial>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Trial {
    /// The version the update installed.
    pub version: String,
    /// How often the program started while on trial.
    pub starts: u32,
}

/// What a start found.
#[derive(Debug, PartialEq, Eq)]
pub enum OnStart {
    /// Serve (on trial or not).
    Serve,
    /// The program on trial failed before; the previous one (this version)
    /// is back in place and should be started.
    RolledBack { failed: String, restored: String },
}

/// The running executable, as it was when first asked (before anything
/// replaced it: on Linux the path of a replaced program gains a
/// " (deleted)" suffix).
pub fn exe() -> Result<&'static Path, UpdateError> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| std::env::current_exe().ok())
        .as_deref()
        .ok_or_else(|| UpdateError::Install("cannot find the running program's path".into()))
}

/// How long a new program must serve before it is trusted.
pub fn trial_period() -> Duration {
    if cfg!(debug_assertions) {
        if let Some(secs) = std::env::var(TRIAL_ENV).ok().and_then(|s| s.parse().ok()) {
            return Duration::from_secs(secs);
        }
    }
    TRIAL
}

/// `meteord.previous` beside `exe`.
pub fn previous_path(exe: &Path) -> PathBuf {
    exe.with_file_name(format!("meteord.previous{}", std::env::consts::EXE_SUFFIX))
}

fn state_path(exe: &Path) -> PathBuf {
    exe.with_file_name("meteord.update.json")
}

pub fn load(exe: &Path) -> State {
    std::fs::read(state_path(exe))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn save(exe: &Path, state: &State) -> std::io::Result<()> {
    let path = state_path(exe);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state).unwrap_or_default())?;
    std::fs::rename(tmp, path)
}

/// The version of the kept program, if there is one.
pub fn previous(exe: &Path) -> Option<String> {
    previous_path(exe).is_file().then(|| {
        load(exe)
            .previous_version
            .unwrap_or_else(|| "unknown".into())
    })
}

/// Before an update: copy the running program aside, to a file that
/// [`keep_previous`] makes the kept one once the update is in place.
pub fn stage_previous(exe: &Path) -> Result<PathBuf, UpdateError> {
    let staged = previous_path(exe).with_extension("staged");
    std::fs::copy(exe, &staged).map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        UpdateError::Install(format!("cannot keep a copy of the running program: {e}"))
    })?;
    Ok(staged)
}

/// After an update: the staged copy is the kept program, and the new one
/// (`version`) is on trial.
pub fn keep_previous(exe: &Path, staged: &Path, version: &str) {
    let state = State {
        previous_version: Some(CURRENT_VERSION.to_string()),
        trial: Some(Trial {
            version: version.to_string(),
            starts: 0,
        }),
    };
    let kept = std::fs::rename(staged, previous_path(exe)).and_then(|_| save(exe, &state));
    if let Err(e) = kept {
        warn!("cannot keep the previous program: {e}; it cannot be rolled back to");
    }
}

/// The program on trial has proven itself.
pub fn confirm(exe: &Path) {
    let mut state = load(exe);
    if let Some(trial) = state.trial.take() {
        match save(exe, &state) {
            Ok(()) => info!(
                "meteord {} runs well; the update is confirmed",
                trial.version
            ),
            Err(e) => warn!("cannot confirm the update: {e}"),
        }
    }
}

/// Is the running program on trial (and not yet confirmed)?
pub fn on_trial(exe: &Path) -> bool {
    load(exe).trial.is_some()
}

/// At the start of a server: count the start of a program on trial, or
/// roll back when an earlier start of it never proved itself.
pub fn on_start(exe: &Path) -> OnStart {
    let mut state = load(exe);
    let Some(trial) = state.trial.as_mut() else {
        return OnStart::Serve;
    };
    if trial.starts == 0 {
        trial.starts = 1;
        if let Err(e) = save(exe, &state) {
            warn!("cannot record the update's trial: {e}");
        }
        return OnStart::Serve;
    }
    let failed = trial.version.clone();
    match roll_back(exe) {
        Ok(restored) => OnStart::RolledBack { failed, restored },
        Err(e) => {
            warn!("meteord {failed} did not stay up after its update, but cannot roll back: {e}");
            OnStart::Serve
        }
    }
}

/// Put the kept program back in place; the one replaced becomes the kept
/// one. Returns the restored version.
pub fn roll_back(exe: &Path) -> Result<String, UpdateError> {
    let kept = previous_path(exe);
    if !kept.is_file() {
        return Err(UpdateError::NoPrevious);
    }
    let state = load(exe);
    let restored = state
        .previous_version
        .clone()
        .unwrap_or_else(|| "unknown".into());
    // The program in place now: the next kept one.
    let aside = exe.with_file_name(format!("meteord.rollback{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(exe, &aside).map_err(|e| UpdateError::Install(e.to_string()))?;
    if let Err(e) = replace(exe, &kept) {
        let _ = std::fs::remove_file(&aside);
        return Err(UpdateError::Install(format!(
            "cannot restore {}: {e}",
            kept.display()
        )));
    }
    std::fs::rename(&aside, &kept).map_err(|e| UpdateError::Install(e.to_string()))?;
    let replaced = match &state.trial {
        Some(trial) => trial.version.clone(),
        None => CURRENT_VERSION.to_string(),
    };
    let next = State {
        previous_version: Some(replaced),
        trial: None,
    };
    save(exe, &next).map_err(|e| UpdateError::Install(e.to_string()))?;
    Ok(restored)
}

/// Put a copy of `new` at `exe`: the running program is replaced the way
/// the platform allows (a running Windows program cannot be overwritten).
fn replace(exe: &Path, new: &Path) -> std::io::Result<()> {
    let running = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .ok()
        .zip(exe.canonicalize().ok())
        .is_some_and(|(running, target)| running == target);
    if running {
        return self_replace::self_replace(new);
    }
    let tmp = exe.with_extension("tmp");
    std::fs::copy(new, &tmp)?;
    std::fs::rename(&tmp, exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(dir: &Path, bytes: &[u8]) -> PathBuf {
        let exe = dir.join(format!("meteord{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&exe, bytes).unwrap();
        exe
    }

    /// "old", updated to "new" (9.0.0) as an update does it.
    fn updated() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let exe = program(dir.path(), b"old");
        assert!(matches!(roll_back(&exe), Err(UpdateError::NoPrevious)));
        let staged = stage_previous(&exe).unwrap();
        std::fs::write(&exe, b"new").unwrap();
        keep_previous(&exe, &staged, "9.0.0");
        (dir, exe)
    }

    #[test]
    fn a_rollback_swaps_the_programs() {
        let (_dir, exe) = updated();
        assert_eq!(previous(&exe).as_deref(), Some(CURRENT_VERSION));

        assert_eq!(roll_back(&exe).unwrap(), CURRENT_VERSION);
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");
        assert_eq!(std::fs::read(previous_path(&exe)).unwrap(), b"new");
        assert_eq!(previous(&exe).as_deref(), Some("9.0.0"));
        assert!(!on_trial(&exe));
    }

    #[test]
    fn a_second_start_of_an_unconfirmed_trial_rolls_back() {
        let (_dir, exe) = updated();
        assert_eq!(on_start(&exe), OnStart::Serve);
        assert!(on_trial(&exe));
        // It died without confirming; the next start goes back.
        assert_eq!(
            on_start(&exe),
            OnStart::RolledBack {
                failed: "9.0.0".into(),
                restored: CURRENT_VERSION.into()
            }
        );
        assert_eq!(std::fs::read(&exe).unwrap(), b"old");
        assert_eq!(on_start(&exe), OnStart::Serve);
    }

    #[test]
    fn a_confirmed_program_stays() {
        let (_dir, exe) = updated();
        assert_eq!(on_start(&exe), OnStart::Serve);
        confirm(&exe);
        assert_eq!(on_start(&exe), OnStart::Serve);
        assert_eq!(on_start(&exe), OnStart::Serve);
        assert_eq!(std::fs::read(&exe).unwrap(), b"new");
    }
}
