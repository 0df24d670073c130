//! Dashboard actions of the desktop/edge appliance: pausing publishing, and
//! checking for and installing updates (the tray offers the same).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use tracing::info;

use super::security::Action;
use super::view::Flash;
use super::Admin;
use crate::update::{self, UpdateError};

/// `POST /publishing` with `paused=1` or `paused=0`.
pub async fn set_publishing(
    State(admin): State<Arc<Admin>>,
    Action { viewer, form }: Action,
) -> Response {
    let paused = form.text("paused") == "1";
    admin.node.set_publishing_paused(paused);
    info!(user = %viewer.session.user, paused, "admin UI: publishing switch");
    let flash = if paused {
        Flash::warn("Publishing is paused: publishers get an error until it is resumed. Subscribers stay connected.")
    } else {
        Flash::ok("Publishing resumed.")
    };
    viewer.redirect("/", flash)
}

/// `POST /update/check`: read the release feed now.
pub async fn check(State(admin): State<Arc<Admin>>, Action { viewer, .. }: Action) -> Response {
    let flash = match admin
        .node
        .updates
        .check_now(admin.node.config.load_full())
        .await
    {
        Ok(Some(available)) => Flash::ok(format!(
            "meteord {} is available (running {}).",
            available.version,
            update::CURRENT_VERSION
        )),
        Ok(None) => Flash::ok(format!(
            "meteord {} is up to date.",
            update::CURRENT_VERSION
        )),
        Err(e) => Flash::error(capitalized(&e)),
    };
    viewer.redirect("/", flash)
}

/// `POST /update/install`: install the newest release and restart into it.
pub async fn install(State(admin): State<Arc<Admin>>, Action { viewer, .. }: Action) -> Response {
    info!(user = %viewer.session.user, "admin UI: update requested");
    let flash = match admin
        .node
        .updates
        .install_and_restart(admin.node.config.load_full(), &admin.node.shutdown)
        .await {
        Ok(Some(version)) => Flash::ok(format!(
            "meteord {version} is installed; the server is restarting. Reload this page in a few seconds."
        )),
        Ok(None) => Flash::ok(format!(
            "meteord {} is up to date.",
            update::CURRENT_VERSION
        )),
        Err(e) => Flash::error(capitalized(&e)),
    };
    viewer.redirect("/", flash)
}

/// `POST /update/rollback`: put the kept previous version back and restart.
pub async fn rollback(State(admin): State<Arc<Admin>>, Action { viewer, .. }: Action) -> Response {
    info!(user = %viewer.session.user, "admin UI: rollback requested");
    let flash = match admin.node.updates.rollback_and_restart(&admin.node.shutdown).await {
        Ok(version) => Flash::ok(format!(
            "meteord {version} is back in place; the server is restarting. Reload this page in a few seconds."
        )),
        Err(e) => Flash::error(capitalized(&e)),
    };
    viewer.redirect("/", flash)
}

fn capitalized(e: &UpdateError) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}
