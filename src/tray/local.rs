//! The tray of the server in this process: its status (and icon), and a
//! menu to open the admin UI, pause publishing, update, open the logs and
//! quit.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{error, info};
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::TrayIcon;

use super::icon::{self, State};
use super::{notify, Stopped, Ticker};
use crate::hub::Stat;
use crate::server::runtime::Ready;

/// How often the status line is refreshed.
const REFRESH: Duration = Duration::from_secs(1);

/// The icon and its menu, and what the menu needs to act.
pub struct Tray {
    ready: Ready,
    stopped: Stopped,
    icon: TrayIcon,
    /// What the icon shows now.
    shown: (State, bool),
    /// The update the desktop was told about.
    notified: Option<String>,
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
    pub fn new(ready: Ready, stopped: Stopped) -> anyhow::Result<Tray> {
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
        let icon = icon::tray_icon(menu)?;
        let last_published = ready.node.hub.stats.get(Stat::UniqueMessages);
        let mut tray = Tray {
            ready,
            stopped,
            icon,
            shown: (State::Running, false),
            notified: None,
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

    /// The icon's state: an error when writing to the database fails or
    /// the Redis link is down, else paused or running.
    fn state(&self) -> State {
        let node = &self.ready.node;
        let persist_failing = node
            .persister
            .as_ref()
            .is_some_and(|p| p.status().last_error.is_some());
        let redis_down = node.cluster().is_some_and(|c| !c.link().connected);
        if persist_failing || redis_down {
            State::Error
        } else if node.publishing_paused() {
            State::Paused
        } else {
            State::Running
        }
    }

    /// Show the state in the icon and tooltip; tell the desktop once about
    /// each newly available update.
    fn show_state(&mut self, state: State) {
        let available = self.offered.clone();
        let shown = (state, available.is_some());
        if shown != self.shown {
            match icon::icon(state, shown.1) {
                Ok(image) => {
                    if let Err(e) = self.icon.set_icon(Some(image)) {
                        error!("tray: cannot change the icon: {e}");
                    }
                }
                Err(e) => error!("tray: cannot draw the icon: {e}"),
            }
            let tooltip = match &available {
                Some(version) => format!("meteord {}: update {version} available", state.word()),
                None => format!("meteord {}", state.word()),
            };
            let _ = self.icon.set_tooltip(Some(tooltip));
            self.shown = shown;
        }
        if available.is_some() && available != self.notified {
            let version = available.clone().unwrap_or_default();
            info!("tray: telling the desktop that meteord {version} is available");
            notify::update_available(&version);
            self.notified = available;
        }
    }
}

impl Ticker for Tray {
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
}

impl Tray {
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
        let state = self.state().word();
        self.status.set_text(format!(
            "meteord {state} · {subscribers} subscriber{} · {messages_per_s:.0} msg/s",
            if subscribers == 1 { "" } else { "s" }
        ));
        self.refresh_labels();
        let state = self.state();
        self.show_state(state);
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
