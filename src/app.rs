//! The process around the server: the tokio runtime the servers run on,
//! the tray icon beside it when there is one, and the restart into a new
//! executable after an in-process update.
//!
//! Headless (services, servers, the Pi, `--no-tray`, builds without the
//! `tray` feature, or no display), the main thread runs the runtime. With
//! the tray, the main thread runs the desktop's UI loop — which the tray
//! icon needs — and the servers run on a runtime in a thread of their own.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tracing::info;

use crate::config::{Config, LegacyArgs};
use crate::server::{handle_signals, Server, Shared};

/// What a UI beside the server needs once the listeners are bound.
pub struct Ready {
    pub shared: Arc<Shared>,
    /// The servers' runtime, for work started from the UI.
    pub runtime: tokio::runtime::Handle,
    /// Where the admin UI listens, if it does.
    pub admin: Option<SocketAddr>,
}

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
    let shared = if tray && tray_possible() {
        run_with_tray(config, args)?
    } else {
        serve(config, args, |_| {})?
    };
    Ok(if shared.updates.restart_pending() {
        Exit::Restart
    } else {
        Exit::Stopped
    })
}

/// Bind and serve on a new runtime in this thread until shutdown; `ready`
/// is called once the listeners are bound.
pub fn serve(
    config: Config,
    args: LegacyArgs,
    ready: impl FnOnce(Ready),
) -> anyhow::Result<Arc<Shared>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let handle = runtime.handle().clone();
    runtime.block_on(async move {
        let server = Server::bind(config, args).await?;
        let shared = server.shared();
        tokio::spawn(handle_signals(shared.clone())?);
        tokio::spawn(crate::update::background(shared.clone()));
        ready(Ready {
            shared: shared.clone(),
            runtime: handle,
            admin: server.admin_addr(),
        });
        server.run().await?;
        Ok::<_, anyhow::Error>(shared)
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
fn run_with_tray(config: Config, args: LegacyArgs) -> anyhow::Result<Arc<Shared>> {
    crate::tray::run(config, args)
}

#[cfg(not(feature = "tray"))]
fn run_with_tray(config: Config, args: LegacyArgs) -> anyhow::Result<Arc<Shared>> {
    serve(config, args, |_| {})
}
