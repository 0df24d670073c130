//! Settings pages: channel rules, global settings, API tokens and the
//! admin password. Everything here touches the database, so it runs on the
//! blocking pool.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use tracing::info;

use super::auth::{self, Action, ClientIp, Form, Viewer};
use super::view::{self, Flash, Layout};
use super::{blocking, Admin};
use crate::config::keys::{self, Scope};
use crate::config::Source;
use crate::settings::{ChannelRule, TRANSPORTS};

/// Run a settings change on the blocking pool: `Err` is the change's own
/// complaint (shown by the form); the outer `Err` a failure to run it.
async fn run<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<Result<T, String>, Response> {
    blocking(move || Ok::<_, std::convert::Infallible>(work())).await
}

// ---- channel rules ------------------------------------------------------

/// The rule form as typed.
struct RuleForm {
    pattern: String,
    max_messages: String,
    max_age: String,
    /// "inherit", "on" or "off".
    persist: String,
    transports: Vec<String>,
    anonymous: bool,
}

impl Default for RuleForm {
    fn default() -> RuleForm {
        RuleForm {
            pattern: String::new(),
            max_messages: String::new(),
            max_age: String::new(),
            persist: "inherit".into(),
            transports: TRANSPORTS.iter().map(|t| t.to_string()).collect(),
            anonymous: true,
        }
    }
}

impl RuleForm {
    fn from_rule(rule: &ChannelRule) -> RuleForm {
        RuleForm {
            pattern: rule.pattern.clone(),
            max_messages: rule.max_messages.map(|n| n.to_string()).unwrap_or_default(),
            max_age: rule.max_age.map(|n| n.to_string()).unwrap_or_default(),
            persist: match rule.persist {
                None => "inherit",
                Some(true) => "on",
                Some(false) => "off",
            }
            .into(),
            transports: rule
                .transports
                .clone()
                .unwrap_or_else(|| TRANSPORTS.iter().map(|t| t.to_string()).collect()),
            anonymous: rule.anonymous,
        }
    }

    fn from_form(form: &Form) -> RuleForm {
        RuleForm {
            pattern: form.text("pattern").trim().to_string(),
            max_messages: form.text("max_messages").trim().to_string(),
            max_age: form.text("max_age").trim().to_string(),
            persist: form.get("persist").unwrap_or("inherit").to_string(),
            transports: form.all("transports").map(str::to_string).collect(),
            anonymous: form.checked("anonymous"),
        }
    }

    fn allows(&self, transport: &&str) -> bool {
        self.transports.iter().any(|t| t == transport)
    }

    /// The rule this form describes, or what is wrong with it.
    fn rule(&self) -> Result<ChannelRule, String> {
        let number = |text: &str, what: &str| -> Result<Option<u64>, String> {
            if text.is_empty() {
                Ok(None)
            } else {
                text.parse::<u64>().map(Some).map_err(|_| {
                    format!("{what} is a whole number of 0 or more (or empty to inherit).")
                })
            }
        };
        let persist = match self.persist.as_str() {
            "inherit" => None,
            "on" => Some(true),
            "off" => Some(false),
            _ => return Err("Persistence is inherit, on or off.".into()),
        };
        if self.transports.is_empty() {
            return Err("Allow at least one transport (or delete the rule).".into());
        }
        let transports = if TRANSPORTS.iter().all(|t| self.allows(t)) {
            None
        } else {
            Some(self.transports.clone())
        };
        let rule = ChannelRule {
            pattern: self.pattern.clone(),
            max_messages: number(&self.max_messages, "Max messages")?.map(|n| n as usize),
            max_age: number(&self.max_age, "Max age")?,
            persist,
            transports,
            anonymous: self.anonymous,
        };
        rule.validate()?;
        Ok(rule)
    }
}

struct RuleRow {
    pattern: String,
    max_messages: String,
    max_age: String,
    persist: &'static str,
    transports: String,
    anonymous: bool,
}

impl RuleRow {
    fn edit_link(&self) -> String {
        format!(
            "/channel-settings?edit={}#rule-form",
            view::encode(&self.pattern)
        )
    }
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    layout: Layout,
    rules: Vec<RuleRow>,
    form: RuleForm,
    editing: bool,
    error: Option<String>,
    transports: &'static [&'static str],
    default_max_messages: usize,
    default_max_age: u64,
}

fn rules_view(
    admin: &Admin,
    viewer: &Viewer,
    form: RuleForm,
    editing: bool,
    error: Option<String>,
) -> RulesPage {
    let config = admin.shared.config.load();
    let rules = admin
        .shared
        .channel_rules()
        .iter()
        .map(|r| RuleRow {
            pattern: r.pattern.clone(),
            max_messages: match r.max_messages {
                None => "inherit".into(),
                Some(0) => "no limit".into(),
                Some(n) => n.to_string(),
            },
            max_age: r
                .max_age
                .map_or_else(|| "inherit".into(), |s| format!("{s} s")),
            persist: match r.persist {
                None => "inherit",
                Some(true) => "on",
                Some(false) => "off",
            },
            transports: r
                .transports
                .as_ref()
                .map_or_else(|| "all".into(), |t| t.join(", ")),
            anonymous: r.anonymous,
        })
        .collect();
    RulesPage {
        layout: viewer.layout("Channel settings", "rules"),
        rules,
        form,
        editing,
        error,
        transports: TRANSPORTS,
        default_max_messages: config.max_messages_per_channel,
        default_max_age: config.max_message_age,
    }
}

#[derive(Deserialize)]
pub struct EditQuery {
    edit: Option<String>,
}

pub async fn rules_page(
    State(admin): State<Arc<Admin>>,
    viewer: Viewer,
    Query(query): Query<EditQuery>,
) -> Response {
    let existing = query.edit.as_deref().and_then(|pattern| {
        admin
            .shared
            .channel_rules()
            .into_iter()
            .find(|r| r.pattern == pattern)
    });
    let (form, editing) = match (&existing, query.edit) {
        (Some(rule), _) => (RuleForm::from_rule(rule), true),
        // A pattern without a rule yet: start a new one for it.
        (None, Some(pattern)) => (
            RuleForm {
                pattern,
                ..RuleForm::default()
            },
            false,
        ),
        (None, None) => (RuleForm::default(), false),
    };
    let page = rules_view(&admin, &viewer, form, editing, None);
    viewer.page(StatusCode::OK, &page)
}

pub async fn save_rule(
    State(admin): State<Arc<Admin>>,
    Action { viewer, form }: Action,
) -> Response {
    let typed = RuleForm::from_form(&form);
    let editing = form.checked("editing");
    let rule = match typed.rule() {
        Ok(rule) => rule,
        Err(error) => {
            let page = rules_view(&admin, &viewer, typed, editing, Some(error));
            return viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let shared = admin.shared.clone();
    let pattern = rule.pattern.clone();
    match run(move || shared.set_channel_rule(rule)).await {
        Err(response) => response,
        Ok(Err(error)) => {
            let page = rules_view(&admin, &viewer, typed, editing, Some(error));
            viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Ok(Ok(())) => {
            info!(user = %viewer.session.user, %pattern, "admin UI: saved a channel rule");
            viewer.redirect(
                "/channel-settings",
                Flash::ok(format!("The rule for {pattern} is saved and in force.")),
            )
        }
    }
}

pub async fn delete_rule(
    State(admin): State<Arc<Admin>>,
    Action { viewer, form }: Action,
) -> Response {
    let pattern = form.text("pattern").to_string();
    let shared = admin.shared.clone();
    let target = pattern.clone();
    let flash = match run(move || shared.delete_channel_rule(&target)).await {
        Err(response) => return response,
        Ok(Err(error)) => Flash::error(error),
        Ok(Ok(true)) => {
            info!(user = %viewer.session.user, %pattern, "admin UI: deleted a channel rule");
            Flash::ok(format!("The rule for {pattern} is deleted."))
        }
        Ok(Ok(false)) => Flash::warn(format!("There was no rule for {pattern}.")),
    };
    viewer.redirect("/channel-settings", flash)
}

// ---- global settings ----------------------------------------------------

/// Settings that take effect only when the server starts.
fn needs_restart(key: &str) -> bool {
    key.ends_with("IP")
        || key.ends_with("Port")
        || matches!(
            key,
            "AdminUI"
                | "DataDirectory"
                | "Persistence"
                | "SnapshotInterval"
                | "TLS"
                | "TLSCertificateFile"
                | "TLSKeyFile"
                | "TLSHostnames"
                | "ControllerTLS"
                | "Engine"
                | "NodeName"
                | "RedisCAFile"
                | "RedisPrefix"
                | "RedisURL"
        )
}

use crate::settings::settable;

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
    let config = admin.shared.config.load();
    let (global, per_mode): (Vec<SettingRow>, Vec<SettingRow>) = config
        .settings
        .iter()
        .map(|s| SettingRow {
            key: s.key,
            mode: s.mode.clone().unwrap_or_default(),
            // A Redis URL may hold a password: never shown.
            raw: if s.key == "RedisURL" {
                crate::config::redact_url(&s.raw)
            } else {
                s.raw.clone()
            },
            source: match s.source {
                Source::Default | Source::Builtin(_) => "default".into(),
                Source::File(line) => format!("file, line {line}"),
                Source::CommandLine => "command line".into(),
                Source::Ui => "admin UI".into(),
            },
            from_ui: s.source == Source::Ui,
            editable: s.mode.is_none() && settable(s.key),
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
    let shared = admin.shared.clone();
    let (k, v) = (key.clone(), value.clone());
    match run(move || shared.set_global_setting(&k, &v)).await {
        Err(response) => response,
        Ok(Err(error)) => {
            let draft = if key == "RedisURL" {
                crate::config::redact_url(&value)
            } else {
                value
            };
            let page = settings_view(&admin, &viewer, key, draft, Some(error));
            viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Ok(Ok(())) => {
            info!(user = %viewer.session.user, %key, "admin UI: changed a setting");
            let shown = if key == "RedisURL" {
                crate::config::redact_url(&value)
            } else {
                value.clone()
            };
            let mut text = format!("{key} is set to \"{shown}\".");
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
    if !settable(&key) {
        return viewer.redirect(
            "/settings",
            Flash::error(format!("'{key}' cannot be changed here.")),
        );
    }
    let shared = admin.shared.clone();
    let k = key.clone();
    let flash = match run(move || shared.clear_global_setting(&k)).await {
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

// ---- API tokens and password --------------------------------------------

struct TokenRow {
    id: i64,
    name: String,
    created: u64,
    last_used: Option<u64>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenRow>,
    /// A token just made: (name, secret), shown this once.
    new_token: Option<(String, String)>,
    token_name: String,
    token_error: Option<String>,
    password_error: Option<String>,
    min_password: usize,
    subscriber_port: u16,
}

impl TokensPage {
    fn utc(&self, ts: impl view::UnixTime) -> String {
        view::utc(ts.unix())
    }
}

async fn tokens_view(admin: &Admin, viewer: &Viewer) -> Result<TokensPage, Response> {
    let accounts = admin.accounts()?;
    let tokens = blocking(move || accounts.tokens()).await?;
    Ok(TokensPage {
        layout: viewer.layout("API tokens and password", "tokens"),
        tokens: tokens
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                name: t.name,
                created: t.created,
                last_used: t.last_used,
            })
            .collect(),
        new_token: None,
        token_name: String::new(),
        token_error: None,
        password_error: None,
        min_password: crate::store::accounts::MIN_PASSWORD,
        subscriber_port: admin.shared.config.load().subscriber_port,
    })
}

pub async fn tokens_page(State(admin): State<Arc<Admin>>, viewer: Viewer) -> Response {
    match tokens_view(&admin, &viewer).await {
        Ok(page) => viewer.page(StatusCode::OK, &page),
        Err(response) => response,
    }
}

pub async fn create_token(
    State(admin): State<Arc<Admin>>,
    Action { viewer, form }: Action,
) -> Response {
    let name = form.text("name").trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        let mut page = match tokens_view(&admin, &viewer).await {
            Ok(page) => page,
            Err(response) => return response,
        };
        page.token_name = name;
        page.token_error = Some(
            "Give the token a name of 1 to 100 characters, such as the program that will use it."
                .into(),
        );
        return viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let label = name.clone();
    let (id, token) = match blocking(move || accounts.create_token(&label)).await {
        Ok(made) => made,
        Err(response) => return response,
    };
    info!(user = %viewer.session.user, token_id = id, name = %name, "admin UI: created an API token");
    let mut page = match tokens_view(&admin, &viewer).await {
        Ok(page) => page,
        Err(response) => return response,
    };
    page.new_token = Some((name, token));
    // Rendered here rather than redirected, so the secret is never stored.
    viewer.page(StatusCode::OK, &page)
}

pub async fn revoke_token(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
    Action { viewer, .. }: Action,
) -> Response {
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let flash = match blocking(move || accounts.revoke_token(id)).await {
        Err(response) => return response,
        Ok(true) => {
            info!(user = %viewer.session.user, token_id = id, "admin UI: revoked an API token");
            Flash::ok("The token is revoked; requests using it are refused from now on.")
        }
        Ok(false) => Flash::warn("That token was already revoked."),
    };
    viewer.redirect("/tokens", flash)
}

pub async fn change_password(
    State(admin): State<Arc<Admin>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Action { viewer, form }: Action,
) -> Response {
    let fail = |error: String| async {
        match tokens_view(&admin, &viewer).await {
            Ok(mut page) => {
                page.password_error = Some(error);
                viewer.page(StatusCode::UNPROCESSABLE_ENTITY, &page)
            }
            Err(response) => response,
        }
    };
    if admin.limiter.blocked(ip) {
        return fail(
            "Too many wrong passwords from your address. Wait a minute, then try again.".into(),
        )
        .await;
    }
    if let Err(error) = auth::check_new_password(form.text("password"), form.text("password2")) {
        return fail(error).await;
    }
    let accounts = match admin.accounts() {
        Ok(accounts) => accounts,
        Err(response) => return response,
    };
    let user = viewer.session.user.clone();
    let current = form.text("current").to_string();
    let new = form.text("password").to_string();
    let changed = blocking(move || {
        if !accounts.verify_password(&user, &current)? {
            return Ok(false);
        }
        accounts.set_password(&user, &new)
    })
    .await;
    match changed {
        Err(response) => response,
        Ok(false) => {
            admin.limiter.fail(ip);
            fail("The current password is wrong.".into()).await
        }
        Ok(true) => {
            info!(user = %viewer.session.user, "admin UI: changed the admin password");
            // Changing the password ended every session, this one too.
            auth::start_session(
                &admin,
                &headers,
                viewer.session.user.clone(),
                "/tokens",
                Some(Flash::ok(
                    "The password is changed. Other signed-in browsers were signed out.",
                )),
            )
            .await
            .unwrap_or_else(|r| r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_forms() {
        let form = RuleForm {
            pattern: "chat.*".into(),
            max_messages: "50".into(),
            max_age: String::new(),
            persist: "off".into(),
            transports: vec!["sse".into(), "websocket".into()],
            anonymous: false,
        };
        let rule = form.rule().unwrap();
        assert_eq!(rule.max_messages, Some(50));
        assert_eq!(rule.max_age, None);
        assert_eq!(rule.persist, Some(false));
        assert_eq!(
            rule.transports,
            Some(vec!["sse".into(), "websocket".into()])
        );
        assert!(!rule.anonymous);
        // Every transport ticked: no restriction.
        let all = RuleForm {
            pattern: "x".into(),
            ..RuleForm::default()
        };
        assert_eq!(all.rule().unwrap().transports, None);
        let bad = RuleForm {
            pattern: "x".into(),
            max_age: "soon".into(),
            ..RuleForm::default()
        };
        assert!(bad.rule().unwrap_err().contains("Max age"));
        let none = RuleForm {
            pattern: "x".into(),
            transports: vec![],
            ..RuleForm::default()
        };
        assert!(none.rule().is_err());
        assert!(RuleForm::default().rule().is_err()); // no pattern
    }

    #[test]
    fn which_settings_need_a_restart() {
        assert!(needs_restart("SubscriberPort"));
        assert!(needs_restart("UDPIP"));
        assert!(needs_restart("Persistence"));
        assert!(!needs_restart("MaxMessagesPerChannel"));
        assert!(settable("MaxMessagesPerChannel"));
        assert!(!settable("ConfigFileLocation"));
        assert!(!settable("MessageTemplate")); // per mode
    }
}
