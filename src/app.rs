//! The process around the server: the tokio runtime the servers run on,
//! the tray icon beside it when there is one, and the restart into a new
//! executable after an in-process update.
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
        run_with_tray(config, args)?
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

#[cfg(feature = "tray")]
fn run_with_tray(config: Config, args: LegacyArgs) -> anyhow::Result<Arc<Node>> {
    crate::tray::run(config, args)
}

#[cfg(not(feature = "tray"))]
fn run_with_tray(config: Config, args: LegacyArgs) -> anyhow::Result<Arc<Node>> {
    serve(config, args, |_| {})
}
