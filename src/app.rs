//! The process around the server: the tokio runtime the servers run on,
//! the tray icon beside it when there is one, the restart into a new
//! executable after an in-process update, and going back to the previous
//! one when a new one fails within its first seconds.
//!
//! Headless (services, servers, the Pi, `--no-tray`, builds without the
//! `tray` feature, or no display), the main thread runs the runtime. With
//! the tray, the main thread runs the desktop's UI loop — which the tray
//! icon needs — and the servers run on a runtime in a thread of their own.

use std::sync::Arc;

use tracing::info;

use crate::config::{Config, LegacyArgs};
use crate::node::Node;
use crate::server::runtime::serve;
use crate::update::rollback;

/// How a run ended.
pub enum Exit {
    /// Shut down (signal, tray, admin UI).
    Stopped,
    /// A new executable is in place: start it with the same arguments.
    Restart,
}

/// Serve until shut down, with a tray icon if `tray` and the build, the
/// platform and a display allow one.
pub fn run(config: Config, args: LegacyArgs, tray: bool) -> anyhow::Result<Exit> {
    let node = if tray && tray_possible() {
        match run_with_tray(config, args)? {
            Some(node) => node,
            // The tray showed a server running elsewhere.
            None => return Ok(Exit::Stopped),
        }
    } else {
        serve(config, args, |_| {})?
    };
    Ok(if node.updates.restart_pending() {
        Exit::Restart
    } else {
        Exit::Stopped
    })
}

/// Is there somewhere to show a tray icon? On Linux: an X11 or Wayland
/// display; elsewhere the feature decides.
fn tray_possible() -> bool {
    if !cfg!(feature = "tray") {
        tracing::debug!("this build has no tray icon (cargo feature 'tray')");
        return false;
    }
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        info!("no display (DISPLAY, WAYLAND_DISPLAY): running headless, without the tray icon");
        return false;
    }
    true
}

/// The node of the server this process ran, or `None` when the tray
/// showed one running elsewhere on this machine.
#[cfg(feature = "tray")]
fn run_with_tray(config: Config, args: LegacyArgs) -> anyhow::Result<Option<Arc<Node>>> {
    Ok(match crate::tray::run(config, args)? {
        crate::tray::Ended::Served(node) => Some(node),
        crate::tray::Ended::Attached => None,
    })
}

#[cfg(not(feature = "tray"))]
fn run_with_tray(config: Config, args: LegacyArgs) -> anyhow::Result<Option<Arc<Node>>> {
    serve(config, args, |_| {}).map(Some)
}

/// At start: if an update's new program failed before proving itself (see
/// [`crate::update::rollback`]), put the previous one back and run it
/// instead. Returns only when there is nothing to roll back (or the
/// restart failed, which is reported).
pub fn roll_back_a_failed_update() {
    let Ok(exe) = rollback::exe() else {
        return;
    };
    if let rollback::OnStart::RolledBack { failed, restored } = rollback::on_start(exe) {
        eprintln!(
            "meteord: meteord {failed} did not stay up after its update; \
             meteord {restored} is back in place and starting"
        );
        restart_into_restored();
    }
}

/// The server could not start or stopped with an error: while the
/// program is on trial after an update, that is a failed update — go back.
pub fn failed_to_start() {
    let Ok(exe) = rollback::exe() else {
        return;
    };
    if !rollback::on_trial(exe) {
        return;
    }
    match rollback::roll_back(exe) {
        Ok(restored) => {
            eprintln!(
                "meteord: the updated program failed within its first seconds; \
                 meteord {restored} is back in place and starting"
            );
            restart_into_restored();
        }
        Err(e) => eprintln!("meteord: the updated program failed, and rolling back failed: {e}"),
    }
}

/// A clean stop proves an updated program as well as serving does.
pub fn stopped_cleanly() {
    if let Ok(exe) = rollback::exe() {
        rollback::confirm(exe);
    }
}

fn restart_into_restored() {
    let e = crate::update::restart();
    eprintln!("meteord: {e:#}");
}
