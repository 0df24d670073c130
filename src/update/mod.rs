//! Self-update from a signed release feed.
//!
//! The feed ([`feed`]: UpdateFeed, else the one an official release was
//! built with) is a JSON release manifest, as self_update's
//! `manifest` backend reads it: releases with a semver version and assets
//! named `meteord-<version>-<target>.tar.gz`, each signed with the release
//! key (zipsign, the signature bound to that file name). An update:
//!
//! 1. reads the manifest and picks the newest release above the running
//!    version on the configured channel (stable skips pre-releases);
//! 2. downloads the archive for this platform and verifies its signature
//!    against the compiled-in key ([`keys`]) — an unsigned or altered
//!    archive is refused and nothing is changed;
//! 3. keeps the running program as `meteord.previous` and replaces the
//!    executable (self_update's `self_replace`); the new one is on trial
//!    until it has served a few seconds ([`rollback`]).
//!
//! `meteord update` stops there: the file is new, a running server keeps
//! its old code until it is restarted. Inside a running server (the admin
//! UI's button, the tray, or `AutoUpdate install`) the server then shuts
//! down gracefully — the same path as SIGTERM, so the persistence thread's
//! final write completes — and [`restart`] starts the new executable with
//! the same arguments. No store write is ever cut short by an update.

pub mod feed;
pub mod keys;
pub mod rollback;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use self_update::backends::manifest::ManifestSource;
use self_update::{Release, ReleaseSource as _};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{AutoUpdate, Config, UpdateChannel};

/// The running version.
pub const CURRENT_VERSION: &str = crate::config::VERSION;
/// How often `AutoUpdate check|install` looks at the feed.
const CHECK_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);
/// The first automatic check waits this long after start, so a restart
/// loop can never hammer the feed.
const FIRST_CHECK_DELAY: Duration = Duration::from_secs(60);
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{0}")]
    NoFeed(String),
    #[error("no previous version is kept (one is kept by every update)")]
    NoPrevious,
    #[error("no trusted update key is built in; refusing to install unverified updates")]
    NoKeys,
    #[error("bad update key: {0}")]
    BadKey(String),
    #[error("cannot read the release feed {url}: {message}")]
    Feed { url: String, message: String },
    #[error("release {version} has no download for this platform ({target})")]
    NoAsset { version: String, target: String },
    #[error("the update was refused, its signature does not verify against the trusted release key ({0}); the installed program was not changed")]
    Signature(String),
    #[error("the update failed: {0}; the installed program was not changed")]
    Install(String),
    #[error("an update is already being installed")]
    Busy,
    #[error("the feed announces meteord {announced} but its archive is {asset}; refused, nothing was changed")]
    Mismatch { announced: String, asset: String },
}

/// A release newer than the running one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    pub version: String,
    pub asset: String,
}

/// What the server knows about updates, for the admin UI and the tray.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub last_check: Option<SystemTime>,
    /// From the last check.
    pub available: Option<Available>,
    pub last_error: Option<String>,
    pub installing: bool,
}

/// Update state kept with the server.
#[derive(Default)]
pub struct Updates {
    status: Mutex<Status>,
    /// Set once a new executable is in place: exit into it.
    restart: AtomicBool,
}

impl Updates {
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn edit<T>(&self, f: impl FnOnce(&mut Status) -> T) -> T {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// True when the server stopped to restart into a new executable.
    pub fn restart_pending(&self) -> bool {
        self.restart.load(Ordering::Acquire)
    }
}

fn feed_url(config: &Config) -> Result<String, UpdateError> {
    let feed = feed::resolve(config);
    match feed.url {
        Some(url) => Ok(url),
        None => Err(UpdateError::NoFeed(feed.explain())),
    }
}

/// Read the feed: the newest release above the running version on the
/// configured channel that has a download for this platform. Blocking.
pub fn check(config: &Config) -> Result<Option<Available>, UpdateError> {
    check_with(config, false)
}

/// [`check`]; with `allow_downgrade`, the feed's newest release is offered
/// even when it is older than the running one.
fn check_with(config: &Config, allow_downgrade: bool) -> Result<Option<Available>, UpdateError> {
    let url = feed_url(config)?;
    let mut source = ManifestSource::new(&url);
    source.timeout(HTTP_TIMEOUT);
    let releases = source.get_releases().map_err(|e| UpdateError::Feed {
        url: url.clone(),
        message: e.to_string(),
    })?;
    newest(
        &releases,
        config.update_channel,
        CURRENT_VERSION,
        allow_downgrade,
    )
}

/// Pick the release to update to from a feed's releases.
fn newest(
    releases: &[Release],
    channel: UpdateChannel,
    current: &str,
    allow_downgrade: bool,
) -> Result<Option<Available>, UpdateError> {
    let current = semver::Version::parse(current).expect("the package version is semver");
    let best = releases
        .iter()
        .filter_map(|r| Some((semver::Version::parse(r.version()).ok()?, r)))
        .filter(|(v, _)| channel == UpdateChannel::Beta || v.pre.is_empty())
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .filter(|(v, _)| *v > current || (allow_downgrade && *v != current));
    let Some((version, release)) = best else {
        return Ok(None);
    };
    let target = self_update::get_target();
    match release.asset_for(target, None) {
        // The signature covers the archive's name, so the name's version is
        // the archive's own: a feed that announces one version and serves
        // another (an older signed archive) is refused here.
        Some(asset) if asset_version(asset.name()) != Some(version.to_string()) => {
            Err(UpdateError::Mismatch {
                announced: version.to_string(),
                asset: asset.name().to_string(),
            })
        }
        Some(asset) => Ok(Some(Available {
            version: version.to_string(),
            asset: asset.name().to_string(),
        })),
        None => Err(UpdateError::NoAsset {
            version: version.to_string(),
            target: target.to_string(),
        }),
    }
}

/// The version in an archive's name, `meteord-<version>-<target>.tar.gz`.
fn asset_version(name: &str) -> Option<String> {
    let rest = name.strip_prefix("meteord-")?;
    let target = self_update::get_target();
    let version = rest.strip_suffix(&format!("-{target}.tar.gz"))?;
    semver::Version::parse(version).ok()?;
    Some(version.to_string())
}

/// Download, verify and install `release` over the running executable.
/// Blocking.
pub fn install(config: &Config, release: &Available) -> Result<(), UpdateError> {
    let url = feed_url(config)?;
    let keys = keys::trusted()?;
    let exe = rollback::exe()?;
    let staged = rollback::stage_previous(exe)?;
    let updater = self_update::backends::manifest::Update::configure()
        .manifest_url(&url)
        .bin_name("meteord")
        .bin_install_path(exe)
        .current_version(CURRENT_VERSION)
        .target(self_update::get_target())
        .release_tag(release.version.as_str())
        .verifying_keys(keys)
        .timeout(HTTP_TIMEOUT)
        .show_output(false)
        .show_download_progress(false)
        .no_confirm(true)
        .build()
        .map_err(|e| {
            let _ = std::fs::remove_file(&staged);
            UpdateError::Install(e.to_string())
        })?;
    let updated = updater.update();
    if updated.is_ok() {
        rollback::keep_previous(exe, &staged, &release.version);
    } else {
        let _ = std::fs::remove_file(&staged);
    }
    match updated {
        Ok(_) => Ok(()),
        Err(e @ self_update::errors::Error::Signature(_))
        | Err(e @ self_update::errors::Error::NoSignatures(_))
        | Err(e @ self_update::errors::Error::SignatureNonUTF8) => {
            Err(UpdateError::Signature(e.to_string()))
        }
        Err(e) => Err(UpdateError::Install(e.to_string())),
    }
}

/// `meteord update [--check]`: check the feed, and unless `check_only`
/// install the newer release over this executable. Returns the message
/// for the user.
pub fn run_cli(
    config: &Config,
    check_only: bool,
    allow_downgrade: bool,
) -> Result<String, UpdateError> {
    let Some(release) = check_with(config, allow_downgrade)? else {
        return Ok(format!(
            "meteord {CURRENT_VERSION} is up to date ({:?} channel)",
            config.update_channel
        ));
    };
    if check_only {
        return Ok(format!(
            "meteord {} is available (running {CURRENT_VERSION}); 'meteord update' installs it",
            release.version
        ));
    }
    install(config, &release)?;
    Ok(format!(
        "meteord {} installed (signature verified); restart the service to run it \
         ('meteord update --rollback' puts {CURRENT_VERSION} back)",
        release.version
    ))
}

/// `meteord update --rollback`: put the kept previous program back.
pub fn rollback_cli() -> Result<String, UpdateError> {
    let restored = rollback::roll_back(rollback::exe()?)?;
    Ok(format!(
        "meteord {restored} is back in place (the replaced {CURRENT_VERSION} is kept); \
         restart the service to run it"
    ))
}

/// The version of the kept previous program, if any.
pub fn kept_previous() -> Option<String> {
    rollback::exe().ok().and_then(rollback::previous)
}

impl Updates {
    /// Check the feed now and remember the answer.
    pub async fn check_now(&self, config: Arc<Config>) -> Result<Option<Available>, UpdateError> {
        let result = tokio::task::spawn_blocking(move || check(&config))
            .await
            .unwrap_or_else(|e| Err(UpdateError::Install(e.to_string())));
        self.edit(|s| {
            s.last_check = Some(SystemTime::now());
            match &result {
                Ok(available) => {
                    s.available = available.clone();
                    s.last_error = None;
                }
                Err(e) => s.last_error = Some(e.to_string()),
            }
        });
        match &result {
            Ok(Some(a)) => info!("update available: meteord {}", a.version),
            Ok(None) => info!("update check: meteord {CURRENT_VERSION} is up to date"),
            Err(e) => warn!("update check failed: {e}"),
        }
        result
    }

    /// Check, install a newer release, then cancel `shutdown` so that
    /// `main` restarts into it. Returns the version installed, or `None`
    /// when up to date.
    pub async fn install_and_restart(
        &self,
        config: Arc<Config>,
        shutdown: &CancellationToken,
    ) -> Result<Option<String>, UpdateError> {
        let busy = self.edit(|s| std::mem::replace(&mut s.installing, true));
        if busy {
            return Err(UpdateError::Busy);
        }
        let result: Result<Option<String>, UpdateError> = async {
            let Some(release) = self.check_now(config.clone()).await? else {
                return Ok(None);
            };
            info!("installing meteord {}", release.version);
            let version = release.version.clone();
            tokio::task::spawn_blocking(move || install(&config, &release))
                .await
                .unwrap_or_else(|e| Err(UpdateError::Install(e.to_string())))?;
            Ok(Some(version))
        }
        .await;
        self.edit(|s| {
            s.installing = false;
            if let Err(e) = &result {
                s.last_error = Some(e.to_string());
            }
        });
        match &result {
            Ok(Some(version)) => {
                info!("meteord {version} installed; restarting into it");
                self.restart.store(true, Ordering::Release);
                shutdown.cancel();
            }
            Ok(None) => {}
            Err(e) => error!("update not installed: {e}"),
        }
        result
    }

    /// Put the kept previous program back, then cancel `shutdown` so that
    /// `main` restarts into it. Returns the restored version.
    pub async fn rollback_and_restart(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<String, UpdateError> {
        let busy = self.edit(|s| std::mem::replace(&mut s.installing, true));
        if busy {
            return Err(UpdateError::Busy);
        }
        let result = tokio::task::spawn_blocking(|| rollback::roll_back(rollback::exe()?))
            .await
            .unwrap_or_else(|e| Err(UpdateError::Install(e.to_string())));
        self.edit(|s| {
            s.installing = false;
            s.available = None;
        });
        match &result {
            Ok(version) => {
                info!("meteord {version} is back in place; restarting into it");
                self.restart.store(true, Ordering::Release);
                shutdown.cancel();
            }
            Err(e) => error!("rollback failed: {e}"),
        }
        result
    }

    /// AutoUpdate check|install: look at the feed once a day, with the
    /// configuration in force at the time.
    pub async fn background(&self, config: &ArcSwap<Config>, shutdown: &CancellationToken) {
        let mut wait = FIRST_CHECK_DELAY;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = CHECK_PERIOD;
            let config = config.load_full();
            if feed::resolve(&config).url.is_none() {
                continue;
            }
            match config.auto_update {
                AutoUpdate::Off => {}
                AutoUpdate::Check => {
                    let _ = self.check_now(config).await;
                }
                AutoUpdate::Install => {
                    let _ = self.install_and_restart(config, shutdown).await;
                }
            }
        }
    }
}

/// A program on trial since its update is confirmed once it has served for
/// the trial period.
pub async fn confirm_after_trial(shutdown: CancellationToken) {
    let Ok(exe) = rollback::exe() else {
        return;
    };
    if !rollback::on_trial(exe) {
        return;
    }
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(rollback::trial_period()) => {
            let _ = tokio::task::spawn_blocking(move || rollback::confirm(exe)).await;
        }
    }
}

/// Replace this process with the new executable, same arguments (on
/// Windows: start it and exit). Returns only on failure.
pub fn restart() -> anyhow::Error {
    match self_update::restart::restart() {
        Ok(never) => match never {},
        Err(e) => anyhow::anyhow!("cannot start the updated program: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use self_update::ReleaseAsset;

    fn release(version: &str, asset: &str) -> Release {
        Release::builder()
            .version(version)
            .asset(ReleaseAsset::new(asset, format!("http://x/{asset}")))
            .build()
            .unwrap()
    }

    #[test]
    fn the_channel_decides_about_pre_releases() {
        let target = self_update::get_target();
        let feed = [
            release("0.9.0", &format!("meteord-0.9.0-{target}.tar.gz")),
            release("1.1.0", &format!("meteord-1.1.0-{target}.tar.gz")),
            release(
                "1.2.0-beta.1",
                &format!("meteord-1.2.0-beta.1-{target}.tar.gz"),
            ),
        ];
        let stable = newest(&feed, UpdateChannel::Stable, "1.0.0", false).unwrap();
        assert_eq!(stable.unwrap().version, "1.1.0");
        let beta = newest(&feed, UpdateChannel::Beta, "1.0.0", false).unwrap();
        assert_eq!(beta.unwrap().version, "1.2.0-beta.1");
        assert_eq!(
            newest(&feed, UpdateChannel::Stable, "1.1.0", false).unwrap(),
            None
        );
    }

    #[test]
    fn a_release_without_this_platform_is_an_error() {
        let feed = [release("2.0.0", "meteord-2.0.0-sparc-sun-solaris.tar.gz")];
        assert!(matches!(
            newest(&feed, UpdateChannel::Stable, "1.0.0", false),
            Err(UpdateError::NoAsset { .. })
        ));
    }

    #[test]
    fn an_archive_must_be_the_version_announced() {
        let target = self_update::get_target();
        // An old signed archive offered as a new release: refused.
        let feed = [release("9.9.9", &format!("meteord-0.0.1-{target}.tar.gz"))];
        assert!(matches!(
            newest(&feed, UpdateChannel::Stable, "1.0.0", false),
            Err(UpdateError::Mismatch { .. })
        ));
    }

    #[test]
    fn downgrades_only_when_asked() {
        let target = self_update::get_target();
        let feed = [release("0.9.0", &format!("meteord-0.9.0-{target}.tar.gz"))];
        assert_eq!(
            newest(&feed, UpdateChannel::Stable, "1.0.0", false).unwrap(),
            None
        );
        let older = newest(&feed, UpdateChannel::Stable, "1.0.0", true).unwrap();
        assert_eq!(older.unwrap().version, "0.9.0");
        assert_eq!(
            newest(&feed, UpdateChannel::Stable, "0.9.0", true).unwrap(),
            None,
            "never the running version itself"
        );
    }

    #[test]
    fn settings_parse() {
        assert_eq!("Install".parse(), Ok(AutoUpdate::Install));
        assert_eq!("off".parse(), Ok(AutoUpdate::Off));
        assert!("sometimes".parse::<AutoUpdate>().is_err());
        assert_eq!("beta".parse(), Ok(UpdateChannel::Beta));
        assert!("nightly".parse::<UpdateChannel>().is_err());
    }
}
