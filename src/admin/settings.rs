//! Server settings (`/settings`): every key with its value and where the
//! value comes from, grouped by topic, with a filter (`?q=`) and "only
//! changed" (`?changed=1`); global keys can be overridden here (kept in
//! the database, in force at once or at the next start).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tracing::info;

use super::security::{Action, Viewer};
use super::view::{self, Flash, Layout};
use super::{run, Admin};
use crate::config::keys::SECRET_KEYS;
use crate::config::keys::{self, needs_restart, ui_settable, Scope};
use crate::config::topics::{topic, Topic};
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
    /// Not the default: set in the file, on the command line or here.
    changed: bool,
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

    /// What the filter box searches: name, mode, value and help.
    fn search_text(&self) -> String {
        format!("{} {} {} {}", self.key, self.mode, self.raw, self.help).to_lowercase()
    }

    fn anchor(&self) -> String {
        if self.mode.is_empty() {
            format!("setting-{}", self.key)
        } else {
            format!("setting-{}-{}", self.key, self.mode)
        }
    }
}

/// The settings of one topic (or the per-mode overrides).
struct Group {
    slug: &'static str,
    title: &'static str,
    rows: Vec<SettingRow>,
    /// Rows of this group that are not the default.
    changed: usize,
    /// The per-mode overrides: read-only here.
    per_mode: bool,
}

/// `?edit=<key>&q=<text>&changed=1`.
#[derive(Deserialize, Default)]
pub struct SettingsQuery {
    edit: Option<String>,
    #[serde(default)]
    q: String,
    #[serde(default)]
    changed: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    /// Global settings by topic, then per-mode overrides; groups with no
    /// row left by the filter are not listed.
    groups: Vec<Group>,
    /// Settings in all, and those the filter leaves.
    total: usize,
    shown: usize,
    query: String,
    changed_only: bool,
    config_file: String,
    /// The key whose edit form is open, its typed value and its error.
    editing: String,
    draft: String,
    error: Option<String>,
}

/// What the page shows: the filter typed and "only changed".
#[derive(Default)]
struct Filter {
    query: String,
    changed_only: bool,
}

impl Filter {
    fn keeps(&self, row: &SettingRow) -> bool {
        (!self.changed_only || row.changed)
            && (self.query.is_empty() || row.search_text().contains(&self.query.to_lowercase()))
    }
}

fn settings_view(
    admin: &Admin,
    viewer: &Viewer,
    filter: Filter,
    (editing, draft, error): (String, String, Option<String>),
) -> SettingsPage {
    let config = admin.node.config.load();
    let rows: Vec<SettingRow> = config
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
            changed: !matches!(s.source, Source::Default | Source::Builtin(_)),
        })
        .collect();
    let total = rows.len();
    let mut groups: Vec<Group> = Topic::ALL
        .iter()
        .map(|t| Group {
            slug: t.slug(),
            title: t.title(),
            rows: Vec::new(),
            changed: 0,
            per_mode: false,
        })
        .collect();
    groups.push(Group {
        slug: "modes",
        title: "Subscriber mode overrides",
        rows: Vec::new(),
        changed: 0,
        per_mode: true,
    });
    for row in rows {
        let at = if row.mode.is_empty() {
            let t = topic(row.key).unwrap_or(Topic::LegacyTemplates);
            Topic::ALL.iter().position(|x| *x == t).unwrap_or(0)
        } else {
            groups.len() - 1
        };
        groups[at].changed += usize::from(row.changed);
        if filter.keeps(&row) {
            groups[at].rows.push(row);
        }
    }
    groups.retain(|g| !g.rows.is_empty());
    SettingsPage {
        layout: viewer.layout("Server settings", "settings"),
        shown: groups.iter().map(|g| g.rows.len()).sum(),
        total,
        groups,
        query: filter.query,
        changed_only: filter.changed_only,
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
    Query(query): Query<SettingsQuery>,
) -> Response {
    let editing = query.edit.unwrap_or_default();
    let filter = Filter {
        query: query.q.trim().to_string(),
        changed_only: query.changed == "1",
    };
    let page = settings_view(&admin, &viewer, filter, (editing, String::new(), None));
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
        let page = settings_view(
            &admin,
            &viewer,
            Filter::default(),
            (key, String::new(), Some(error)),
        );
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
            let page = settings_view(
                &admin,
                &viewer,
                Filter::default(),
                (key, draft, Some(error)),
            );
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
