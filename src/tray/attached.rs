//! The tray of a meteord that already runs on this machine (the Windows
//! service, or another copy on the configured admin port): its state, its
//! admin UI and its logs, without a second server. Quit closes the tray
//! only; the server runs on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tracing::{error, info};
use tray_icon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tray_icon::TrayIcon;

use super::icon::{self, State};
use super::Ticker;
use crate::config::Config;

/// How often the server is asked whether it still answers.
const PROBE_EVERY: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// The admin UI of a meteord already serving on this machine, if there is
/// one.
pub fn running_elsewhere(config: &Config) -> Option<String> {
    if let Some(url) = crate::service::running_admin_url() {
        return Some(url);
    }
    // Another copy on this configuration's admin port (a port chosen at
    // start, 0, cannot be taken by anyone else).
    if !config.admin_ui || config.admin_port == 0 {
        return None;
    }
    let ip = if config.admin_ip.is_unspecified() {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        config.admin_ip
    };
    let addr = SocketAddr::new(ip, config.admin_port);
    answers_as_meteord(addr).then(|| format!("http://{addr}/"))
}

/// Does a meteord admin UI answer at `addr` (plain HTTP)?
fn answers_as_meteord(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(PROBE_TIMEOUT));
    let request = format!("GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    // The sign-in page, or (before the first password) the way to setup.
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    answer.contains("meteord admin") || answer.contains("\r\nlocation: /setup\r\n")
}

/// The icon and menu of the server elsewhere.
pub struct Attached {
    url: String,
    addr: Option<SocketAddr>,
    icon: TrayIcon,
    status: MenuItem,
    open_admin: MenuItem,
    open_logs: MenuItem,
    quit: MenuItem,
    up: Option<bool>,
    last_probe: Option<Instant>,
    quitting: bool,
}

impl Attached {
    pub fn new(url: String) -> anyhow::Result<Attached> {
        let status = MenuItem::new("meteord: looking", false, None);
        let open_admin = MenuItem::new("Open admin", true, None);
        let open_logs = MenuItem::new("Open logs folder", logs_folder().is_some(), None);
        let quit = MenuItem::new("Close this icon (the server runs on)", true, None);
        let menu = Menu::new();
        menu.append_items(&[
            &status,
            &PredefinedMenuItem::separator(),
            &open_admin,
            &open_logs,
            &PredefinedMenuItem::separator(),
            &quit,
        ])?;
        let icon = icon::tray_icon(menu)?;
        let addr = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|authority| authority.to_socket_addrs().ok()?.next());
        info!("tray icon ready (showing the meteord at {url})");
        Ok(Attached {
            url,
            addr,
            icon,
            status,
            open_admin,
            open_logs,
            quit,
            up: None,
            last_probe: None,
            quitting: false,
        })
    }

    fn probe(&mut self) {
        let up = self
            .addr
            .is_some_and(|addr| TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok());
        if self.up == Some(up) {
            return;
        }
        self.up = Some(up);
        let (state, text) = if up {
            (
                State::Running,
                format!("meteord running · admin UI {}", self.url),
            )
        } else {
            (
                State::Error,
                format!("meteord not answering at {}", self.url),
            )
        };
        self.status.set_text(text.clone());
        let _ = self.icon.set_tooltip(Some(text));
        match icon::icon(state, false) {
            Ok(image) => {
                let _ = self.icon.set_icon(Some(image));
            }
            Err(e) => error!("tray: cannot draw the icon: {e}"),
        }
    }
}

impl Ticker for Attached {
    fn tick(&mut self) -> bool {
        while let Ok(event) = MenuEvent::receiver().try_recv() {
            if event.id == *self.open_admin.id() {
                if let Err(e) = opener::open_browser(&self.url) {
                    error!("tray: cannot open {}: {e}", self.url);
                }
            } else if event.id == *self.open_logs.id() {
                if let Some(dir) = logs_folder() {
                    if let Err(e) = opener::open(&dir) {
                        error!("tray: cannot open {}: {e}", dir.display());
                    }
                }
            } else if event.id == *self.quit.id() {
                info!("tray: closed; the meteord at {} runs on", self.url);
                self.quitting = true;
            }
        }
        if self.last_probe.is_none_or(|at| at.elapsed() >= PROBE_EVERY) {
            self.last_probe = Some(Instant::now());
            self.probe();
        }
        !self.quitting
    }
}

/// The service's logs on Windows; elsewhere the log folder of this
/// configuration, which the other copy most likely shares.
fn logs_folder() -> Option<std::path::PathBuf> {
    if crate::service::running_admin_url().is_some() {
        return crate::service::program_data().map(|dir| dir.join("logs"));
    }
    crate::logging::directory().map(|d| d.to_path_buf())
}
