//! The tray icon (cargo feature `tray`): the server's status, and a menu to
//! open the admin UI, pause publishing, update, open the logs and quit.
//!
//! The icon must live on the thread that runs the desktop's UI loop — GTK
//! on Linux, the message loop on Windows, the AppKit loop (through `tao`)
//! on macOS — so that loop has the main thread ([`platform`]) and the
//! servers run on their own runtime in a second thread
//! ([`crate::server::runtime::serve`]). The menu acts on the server only
//! through its [`Node`]: Quit is the same graceful shutdown as SIGTERM.
//!
//! When meteord already serves on this machine — the Windows service, or
//! another copy on the configured admin port — the tray does not start a
//! second server: it shows that one's state and opens its admin UI
//! ([`attached`]).
//!
//! | file | does |
//! |---|---|
//! | `local.rs` | the menu of the server in this process |
//! | `attached.rs` | the menu of a server running elsewhere on this machine |
//! | `icon.rs` | the status icons (running, paused, error, update available) |
//! | `notify.rs` | the desktop notification of an available update |
//! | `platform.rs` | each desktop's UI loop |

mod attached;
mod icon;
mod local;
mod notify;
mod platform;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracing::{info, warn};

use crate::config::{Config, LegacyArgs};
use crate::node::Node;

/// How often the UI loop looks at menu clicks and the server.
const TICK: Duration = Duration::from_millis(100);

/// Set when the server thread ends (however it ends).
type Stopped = Arc<AtomicBool>;

struct SetOnDrop(Stopped);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// What a UI loop drives: built on the UI thread once the loop runs, then
/// ticked until it says the loop should end.
trait Ticker {
    /// Act on menu clicks and refresh; false once the loop should end.
    fn tick(&mut self) -> bool;
}

/// How a tray run ended.
pub enum Ended {
    /// The server of this process stopped (its node says whether to
    /// restart into an update).
    Served(Arc<Node>),
    /// The tray showed a server running elsewhere, and was closed.
    Attached,
}

/// Run the tray until it is closed: beside a server of this process, or
/// attached to the one already running on this machine.
pub fn run(config: Config, args: LegacyArgs) -> anyhow::Result<Ended> {
    if let Some(url) = attached::running_elsewhere(&config) {
        info!("meteord already runs on this machine ({url}); the tray shows it instead of starting a second server");
        platform::run(move || Ok(Box::new(attached::Attached::new(url)?) as Box<dyn Ticker>))?;
        return Ok(Ended::Attached);
    }
    serve_with_tray(config, args).map(Ended::Served)
}

/// Run the servers in a thread and the tray on this one, until the server
/// has shut down. Without a usable tray the server just runs on.
fn serve_with_tray(config: Config, args: LegacyArgs) -> anyhow::Result<Arc<Node>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stopped = Stopped::default();
    let on_exit = SetOnDrop(stopped.clone());
    let server = std::thread::Builder::new()
        .name("meteord-server".into())
        .spawn(move || {
            let _on_exit = on_exit;
            crate::server::runtime::serve(config, args, move |ready| {
                let _ = ready_tx.send(ready);
            })
        })
        .context("cannot start the server thread")?;
    // No Ready: the server failed to start; its error says why.
    if let Ok(ready) = ready_rx.recv() {
        let build = move || Ok(Box::new(local::Tray::new(ready, stopped)?) as Box<dyn Ticker>);
        if let Err(e) = platform::run(build) {
            warn!("no tray icon: {e:#}; the server runs on without it");
        }
    }
    server
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the server thread panicked")))
}
