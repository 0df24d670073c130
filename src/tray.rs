//! The tray icon (cargo feature `tray`): the server's status, and a menu to
//! open the admin UI, pause publishing, update, open the logs and quit.
//!
//! The icon must live on the thread that runs the desktop's UI loop — GTK
//! on Linux, the message loop on Windows — so that loop has the main
//! thread and the servers run on their own runtime in a second thread
//! ([`crate::server::runtime::serve`]). The menu acts on the server only through
//! [`Shared`]: Quit is the same graceful shutdown as SIGTERM.
//!
//! On other platforms the server runs headless.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tracing::{error, info, warn};
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use crate::config::{Config, LegacyArgs};
use crate::hub::Stat;
use crate::node::Node;
use crate::server::runtime::Ready;

/// How often the UI loop looks at menu clicks and the server.
const TICK: Duration = Duration::from_millis(100);
/// How often the status line is refreshed.
const REFRESH: Duration = Duration::from_secs(1);

/// Set when the server thread ends (however it ends).
type Stopped = Arc<AtomicBool>;

struct SetOnDrop(Stopped);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Run the servers in a thread and the tray on this one, until the server
/// has shut down. Without a usable tray the server just runs on.
pub fn run(config: Config, args: LegacyArgs) -> anyhow::Result<Arc<Node>> {
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
        if let Err(e) = platform::run(ready, stopped) {
            warn!("no tray icon: {e:#}; the server runs on without it");
        }
    }
    server
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the server thread panicked")))
}

/// The icon and its menu, and what the menu needs to act.
struct Tray {
    ready: Ready,
    stopped: Stopped,
    _icon: TrayIcon,
    status: MenuItem,
    /// The first-run setup code, while no admin password is set.
    setup_code: Option<MenuItem>,
    open_admin: MenuItem,
    pause: MenuItem,
    update: MenuItem,
    open_logs: MenuItem,
    quit: MenuItem,
    /// The update offered by the update item, once a check found one.
    offered: Option<String>,
    last_refresh: Instant,
    /// Messages published, at the last refresh.
    last_published: u64,
}

impl Tray {
    /// Build the icon and menu (on the UI thread, after the UI toolkit is
    /// initialised).
    fn new(ready: Ready, stopped: Stopped) -> anyhow::Result<Tray> {
        let status = MenuItem::new("meteord: starting", false, None);
        let open_admin = MenuItem::new("Open admin", ready.admin.is_some(), None);
        let pause = MenuItem::new("Pause publishing", true, None);
        let update = MenuItem::new("Check for updates", true, None);
        let open_logs = MenuItem::new(
            "Open logs folder",
            crate::logging::directory().is_some(),
            None,
        );
        let quit = MenuItem::new("Quit", true, None);
        // With TLS, the certificate's fingerprint, to compare with what a
        // browser shows before trusting a self-signed certificate.
        let fingerprint = ready.node.tls.as_ref().map(|tls| {
            let kind = if tls.is_self_signed() {
                "Self-signed"
            } else {
                "Certificate"
            };
            MenuItem::new(
                format!("{kind} SHA-256: {}", tls.fingerprint()),
                false,
                None,
            )
        });
        // Until the admin password is set: the code a first run from
        // another machine asks for.
        let setup_code = ready
            .node
            .setup_code()
            .map(|code| MenuItem::new(format!("First-run setup code: {code}"), false, None));
        let menu = Menu::new();
        menu.append(&status)?;
        if let Some(item) = &setup_code {
            menu.append(item)?;
        }
        if let Some(item) = &fingerprint {
            menu.append(item)?;
        }
        menu.append_items(&[
            &PredefinedMenuItem::separator(),
            &open_admin,
            &pause,
            &update,
            &open_logs,
            &PredefinedMenuItem::separator(),
            &quit,
        ])?;
        let icon = TrayIconBuilder::new()
            .with_menu(Box::new(menu))
            .with_tooltip("meteord")
            .with_icon(icon()?)
            .build()?;
        let last_published = ready.node.hub.stats.get(Stat::UniqueMessages);
        let mut tray = Tray {
            ready,
            stopped,
            _icon: icon,
            status,
            setup_code,
            open_admin,
            pause,
            update,
            open_logs,
            quit,
            offered: None,
            last_refresh: Instant::now(),
            last_published,
        };
        tray.refresh(0.0);
        info!("tray icon ready");
        Ok(tray)
    }

    /// Act on menu clicks and refresh the status line. Returns false once
    /// the server has stopped and the UI loop should end.
    fn tick(&mut self) -> bool {
        while let Ok(event) = MenuEvent::receiver().try_recv() {
            self.clicked(&event);
        }
        let elapsed = self.last_refresh.elapsed();
        if elapsed >= REFRESH {
            let published = self.ready.node.hub.stats.get(Stat::UniqueMessages);
            let rate = published.saturating_sub(self.last_published) as f64 / elapsed.as_secs_f64();
            self.last_published = published;
            self.last_refresh = Instant::now();
            self.refresh(rate);
        }
        !self.stopped.load(Ordering::Acquire)
    }

    fn clicked(&mut self, event: &MenuEvent) {
        let node = &self.ready.node;
        if event.id == *self.open_admin.id() {
            if let Some(url) = self.admin_url() {
                if let Err(e) = opener::open_browser(&url) {
                    error!("tray: cannot open {url}: {e}");
                }
            }
        } else if event.id == *self.pause.id() {
            node.set_publishing_paused(!node.publishing_paused());
            self.refresh_labels();
        } else if event.id == *self.update.id() {
            let node = node.clone();
            let install = self.offered.is_some();
            self.update.set_enabled(false);
            self.update.set_text(if install {
                "Installing the update…"
            } else {
                "Checking for updates…"
            });
            self.ready.runtime.spawn(async move {
                if install {
                    let _ = node
                        .updates
                        .install_and_restart(node.config.load_full(), &node.shutdown)
                        .await;
                } else {
                    let _ = node.updates.check_now(node.config.load_full()).await;
                }
            });
        } else if event.id == *self.open_logs.id() {
            if let Some(dir) = crate::logging::directory() {
                if let Err(e) = opener::open(dir) {
                    error!("tray: cannot open {}: {e}", dir.display());
                }
            }
        } else if event.id == *self.quit.id() {
            info!("tray: quit");
            self.status.set_text("meteord: stopping");
            node.shutdown.cancel();
        }
    }

    /// The admin UI's address as a browser reaches it from this machine.
    fn admin_url(&self) -> Option<String> {
        let mut addr = self.ready.admin?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let scheme = if self.ready.node.tls.is_some() {
            "https"
        } else {
            "http"
        };
        Some(format!("{scheme}://{addr}/"))
    }

    fn refresh(&mut self, messages_per_s: f64) {
        let node = &self.ready.node;
        if node.shutdown.is_cancelled() {
            self.status.set_text("meteord: stopping");
            return;
        }
        let subscribers: usize = node.hub.subscribers_by_transport().values().sum();
        let state = if node.publishing_paused() {
            "publishing paused"
        } else {
            "running"
        };
        self.status.set_text(format!(
            "meteord {state} · {subscribers} subscriber{} · {messages_per_s:.0} msg/s",
            if subscribers == 1 { "" } else { "s" }
        ));
        self.refresh_labels();
    }

    fn refresh_labels(&mut self) {
        let node = &self.ready.node;
        if let Some(item) = &self.setup_code {
            if node.setup_code().is_none() {
                item.set_text("Admin password set");
            }
        }
        self.pause.set_text(if node.publishing_paused() {
            "Resume publishing"
        } else {
            "Pause publishing"
        });
        let updates = node.updates.status();
        if updates.installing {
            return;
        }
        self.offered = updates.available.map(|a| a.version);
        self.update.set_enabled(true);
        match &self.offered {
            Some(version) => self
                .update
                .set_text(format!("Install meteord {version} and restart")),
            None if updates.last_error.is_some() => self
                .update
                .set_text("Check for updates (last check failed)"),
            None if updates.last_check.is_some() => {
                self.update.set_text("Check for updates (up to date)")
            }
            None => self.update.set_text("Check for updates"),
        }
    }
}

/// A 32×32 icon: a filled disc with a soft edge.
fn icon() -> anyhow::Result<Icon> {
    const SIZE: u32 = 32;
    let mut rgba = Vec::with_capacity((SIZE * SIZE * 4) as usize);
    let centre = (SIZE as f32 - 1.0) / 2.0;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let d = ((x as f32 - centre).powi(2) + (y as f32 - centre).powi(2)).sqrt();
            let alpha = (15.0 - d).clamp(0.0, 1.0);
            rgba.extend_from_slice(&[0xe8, 0x59, 0x0c, (alpha * 255.0) as u8]);
        }
    }
    Ok(Icon::from_rgba(rgba, SIZE, SIZE)?)
}

#[cfg(target_os = "linux")]
mod platform {
    use gtk::glib;

    use super::{Stopped, Tray, TICK};
    use crate::server::runtime::Ready;

    /// Initialise GTK, show the icon, and run GTK's main loop until the
    /// server has stopped.
    pub fn run(ready: Ready, stopped: Stopped) -> anyhow::Result<()> {
        gtk::init()?;
        let mut tray = Tray::new(ready, stopped)?;
        let _source = glib::timeout_add_local(TICK, move || {
            if tray.tick() {
                glib::ControlFlow::Continue
            } else {
                gtk::main_quit();
                glib::ControlFlow::Break
            }
        });
        gtk::main();
        Ok(())
    }
}

#[cfg(windows)]
mod platform {
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        DispatchMessageW, PeekMessageW, TranslateMessage, MSG, PM_REMOVE,
    };

    use super::{Stopped, Tray, TICK};
    use crate::server::runtime::Ready;

    /// Show the icon and pump this thread's window messages (which the
    /// icon's hidden window needs) until the server has stopped.
    pub fn run(ready: Ready, stopped: Stopped) -> anyhow::Result<()> {
        let mut tray = Tray::new(ready, stopped)?;
        loop {
            // SAFETY: a zeroed MSG is a valid out-parameter, and these
            // calls only touch this thread's message queue.
            unsafe {
                let mut msg: MSG = std::mem::zeroed();
                while PeekMessageW(&mut msg, std::ptr::null_mut(), 0, 0, PM_REMOVE) != 0 {
                    TranslateMessage(&msg);
                    DispatchMessageW(&msg);
                }
            }
            if !tray.tick() {
                return Ok(());
            }
            std::thread::sleep(TICK);
        }
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod platform {
    use super::Stopped;
    use crate::server::runtime::Ready;

    pub fn run(_ready: Ready, _stopped: Stopped) -> anyhow::Result<()> {
        anyhow::bail!("the tray icon is not supported on this platform yet")
    }
}
