//! `meteord service install|uninstall|start|stop`: meteord as a Windows
//! service, started at boot by the service control manager and running
//! with nobody signed in.
//!
//! The service runs `meteord.exe service run` with its configuration,
//! data and logs in `%ProgramData%\meteord` (given as options when it is
//! installed). A stop request is the same graceful shutdown as Ctrl-C.
//! An update installed from the admin UI ends the service with an error
//! code on purpose: the recovery actions set at install restart it, and
//! the service manager then runs the new program. The tray of a signed-in
//! user finds the running service and opens its admin UI instead of
//! starting a second server ([`running_admin_url`]).
//!
//! Elsewhere the command says to use the platform's own service manager.

use std::process::ExitCode;

use crate::config::cli::ServiceAction;
use crate::config::LegacyArgs;

/// The service's name for `sc` and the Services console.
pub const NAME: &str = "meteord";

/// `meteord service <action> [-Key value]...`.
pub fn command(action: ServiceAction, args: &LegacyArgs) -> ExitCode {
    match imp::command(action, args) {
        Ok(message) => {
            if !message.is_empty() {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meteord service: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where a running service's admin UI answers, when meteord runs as a
/// service on this machine (Windows).
pub fn running_admin_url() -> Option<String> {
    imp::running_admin_url()
}

/// The service's folder (`C:\ProgramData\meteord`), on Windows.
pub fn program_data() -> Option<std::path::PathBuf> {
    imp::program_data()
}

/// The file in the service's data directory where it writes its admin
/// UI's address for the tray.
pub const ADMIN_URL_FILE: &str = "admin-url";

#[cfg(not(windows))]
mod imp {
    use super::*;

    pub fn command(_action: ServiceAction, _args: &LegacyArgs) -> anyhow::Result<String> {
        anyhow::bail!(
            "the service commands are for Windows; on Linux the packages install a systemd \
             unit (systemctl start meteord), on macOS a launchd service (see INSTALL.md)"
        )
    }

    pub fn running_admin_url() -> Option<String> {
        None
    }

    pub fn program_data() -> Option<std::path::PathBuf> {
        None
    }
}

#[cfg(windows)]
mod imp;
