//! Server settings (`/settings`): every key with its value and where the
//! value comes from; global keys can be overridden here (kept in the
//! database, in force at once or at the next start).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use tracing::info;

use super::security::{Action, Viewer};
use super::view::{self, Flash, Layout};
use super::{run, Admin, EditQuery};
use crate::config::keys::SECRET_KEYS;
use crate::config::keys::{self, needs_restart, ui_settable, Scope};
use crate::config::{redact_url, Source};

/// A setting's value as this page may show it: secrets never, a Redis URL
/// without its password.
fn shown(key: &str, raw: &str) -> String {
    if SECRET_KEYS.contains(&key) {
        if raw.trim().is_empty() {
            String::new()
        } else {
            "(hidden)".into()
        }
    } else if key == "RedisURL" {
        redact_url(raw)
    } else {
        raw.to_string()
    }
}

struct SettingRow {
    key: &'static str,
    mode: String,
    raw: String,
    source: String,
    from_ui: bool,
    editable: bool,
    restart: bool,
    help: &'static str,
}

impl SettingRow {
    /// Why a global row has no edit form.
    fn locked_reason(&self) -> &'static str {
        match keys::find(self.key) {
            Some(k) if k.scope == Scope::PerMode => {
                "A default for the subscriber modes: change it in the config file."
            }
            _ => "Not changeable here.",
        }
    }

    fn anchor(&self) -> String {
        if self.mode.is_empty() {
            format!("setting-{}", self.key)
        } else {
            format!("setting-{}-{}", self.key, self.mode)
        }
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    /// Global settings, then per-mode overrides.
    sections: Vec<(&'static str, Vec<SettingRow>)>,
    config_file: String,
    /// The key whose edit form is open, its typed value and its error.
    editing: String,
    draft: String,
    error: Option<String>,
}

fn settings_view(
    admin: &Admin,
    viewer: &Viewer,
    editing: String,
    draft: String,
    error: Option<String>,
) -> SettingsPage {
    let config = admin.node.config.load();
    let (global, per_mode): (Vec<SettingRow>, Vec<SettingRow>) = config
        .settings
        .iter()
        .map(|s| SettingRow {
            key: s.key,
            mode: s.mode.clone().unwrap_or_default(),
            raw: shown(s.key, &s.raw),
            source: match s.source {
                Source::Default | Source::Builtin(_) => "default".into(),
                Source::File(line) => format!("file, line {line}"),
                Source::CommandLine => "command line".into(),
                Source::Ui => "admin UI".into(),
            },
            from_ui: s.source == Source::Ui,
            editable: s.mode.is_none() && ui_settable(s.key),
            restart: needs_restart(s.key),
            help: keys::find(s.key).map_or("", |k| k.help),
        })
        .partition(|row| row.mode.is_empty());
    SettingsPage {
        layout: viewer.layout("Server settings", "settings"),
        sections: vec![
            ("Global settings", global),
            ("Subscriber mode overrides", per_mode),
        ],
        config_file: config.file.as_ref().map_or_else(
            || "none (built-in configuration)".into(),
            |f| f.display().to_string(),
        ),
        editing,
        draft,
        error,
    }
}

pub async fn settings_page(
    State(admin): State<Arc<Admin>>,
    viewer: Viewer,
    Query(query): Query<EditQuery>,
) -> Response {
    let editing = query.edit.unwrap_or_default();
    let page = settings_view(&admin, &viewer, editing, String::new(), None);
    viewer.page(StatusCode::OK, &page)
}

pub async fn save_setting(
    State(admin): State<Arc<Admin>>,
    Action { viewer, form }: Action,
) -> Response {
    let key = form.text("key").to_string();
    let value = form.text("value").to_string();
    if key == "RedisURL" && value.contains(":***@") {
        // The page shows the URL with its password hidden; saving that
        // back would make "***" the password.
        let error = "Type the whole URL with its password: this page never shows it.".to_string();
        let page = settings_view(&admin, &viewer, key, String::new(), Some(error));
        return viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let node = admin.node.clone();
    let (k, v) = (key.clone(), value.clone());
    match run(move || node.set_global_setting(&k, &v)).await {
        Err(response) => response,
        Ok(Err(error)) => {
            let draft = if SECRET_KEYS.contains(&key.as_str()) {
                String::new()
            } else {
                shown(&key, &value)
            };
            let page = settings_view(&admin, &viewer, key, draft, Some(error));
            viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Ok(Ok(())) => {
            info!(user = %viewer.session.user, %key, "admin UI: changed a setting");
            let mut text = format!("{key} is set to \"{}\".", shown(&key, &value));
            if needs_restart(&key) {
                text.push_str(" It takes effect when the server restarts.");
            }
            viewer.redirect(
                &format!("/settings#setting-{}", view::encode(&key)),
                Flash::ok(text),
            )
        }
    }
}

pub async fn reset_setting(
    State(admin): State<Arc<Admin>>,
    Action { viewer, form }: Action,
) -> Response {
    let key = form.text("key").to_string();
    if !ui_settable(&key) {
        return viewer.redirect(
            "/settings",
            Flash::error(format!("'{key}' cannot be changed here.")),
        );
    }
    let node = admin.node.clone();
    let k = key.clone();
    let flash = match run(move || node.clear_global_setting(&k)).await {
        Err(response) => return response,
        Ok(Err(error)) => Flash::error(error),
        Ok(Ok(())) => {
            info!(user = %viewer.session.user, %key, "admin UI: reset a setting");
            Flash::ok(format!(
                "{key} no longer has a value from the admin UI; the file, command line or default applies."
            ))
        }
    };
    viewer.redirect(&format!("/settings#setting-{}", view::encode(&key)), flash)
}
