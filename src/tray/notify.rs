//! Telling the desktop that an update is available, besides the icon's
//! dot and the menu: a notification through the freedesktop notification
//! service on Linux (D-Bus, through GTK's gio), and through Notification
//! Center on macOS (`osascript`, which every Mac has). Windows shows the
//! icon, its tooltip and the menu item only.

/// Show "meteord `version` is available" as a desktop notification.
pub fn update_available(version: &str) {
    imp::notify(
        &format!("meteord {version} is available"),
        "Open the tray menu to install it and restart.",
    );
}

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::HashMap;

    use gtk::gio;
    use gtk::glib::{ToVariant, Variant};
    use tracing::warn;

    pub fn notify(summary: &str, body: &str) {
        let sent =
            gio::bus_get_sync(gio::BusType::Session, gio::Cancellable::NONE).and_then(|bus| {
                // Notify(app_name, replaces_id, icon, summary, body, actions,
                // hints, expire_timeout)
                let arguments = (
                    "meteord",
                    0u32,
                    "software-update-available",
                    summary,
                    body,
                    Vec::<String>::new(),
                    HashMap::<String, Variant>::new(),
                    -1i32,
                )
                    .to_variant();
                bus.call_sync(
                    Some("org.freedesktop.Notifications"),
                    "/org/freedesktop/Notifications",
                    "org.freedesktop.Notifications",
                    "Notify",
                    Some(&arguments),
                    None,
                    gio::DBusCallFlags::NONE,
                    2000,
                    gio::Cancellable::NONE,
                )
            });
        if let Err(e) = sent {
            warn!("tray: no desktop notification ({e}); the tray menu offers the update");
        }
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use tracing::warn;

    /// An AppleScript string literal of `text`.
    fn quoted(text: &str) -> String {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }

    pub fn notify(summary: &str, body: &str) {
        let script = format!(
            "display notification {} with title {}",
            quoted(body),
            quoted(summary)
        );
        match std::process::Command::new("/usr/bin/osascript")
            .args(["-e", &script])
            .spawn()
        {
            // Reaped on a thread of its own: the tray's loop must not stall.
            Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
            Err(e) => {
                warn!("tray: no desktop notification ({e}); the tray menu offers the update")
            }
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod imp {
    pub fn notify(_summary: &str, _body: &str) {}
}
