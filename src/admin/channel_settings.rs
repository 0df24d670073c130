//! Channel settings (`/channel-settings`): the rules that set limits,
//! persistence, transports and anonymous access for the channels a
//! pattern matches.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use tracing::info;

use super::security::{Action, Form, Viewer};
use super::view::{self, Flash, Layout};
use super::{run, Admin, EditQuery};
use crate::hub::{ChannelRule, Transport};

/// Every transport's name, in the order the form lists them.
const TRANSPORTS: [&str; 4] = [
    Transport::ALL[0].name(),
    Transport::ALL[1].name(),
    Transport::ALL[2].name(),
    Transport::ALL[3].name(),
];

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
            transports: match &rule.transports {
                Some(allowed) => allowed.iter().map(|t| t.name().to_string()).collect(),
                None => TRANSPORTS.iter().map(|t| t.to_string()).collect(),
            },
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
            let named = self.transports.iter().map(|t| {
                Transport::from_name(t).ok_or_else(|| format!("There is no transport '{t}'."))
            });
            Some(named.collect::<Result<Vec<_>, _>>()?)
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
    let config = admin.node.config.load();
    let rules = admin
        .node
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
            transports: r.transports.as_ref().map_or_else(
                || "all".into(),
                |t| t.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "),
            ),
            anonymous: r.anonymous,
        })
        .collect();
    RulesPage {
        layout: viewer.layout("Channel settings", "rules"),
        rules,
        form,
        editing,
        error,
        transports: &TRANSPORTS,
        default_max_messages: config.max_messages_per_channel,
        default_max_age: config.max_message_age,
    }
}

pub async fn rules_page(
    State(admin): State<Arc<Admin>>,
    viewer: Viewer,
    Query(query): Query<EditQuery>,
) -> Response {
    let existing = query.edit.as_deref().and_then(|pattern| {
        admin
            .node
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
    let node = admin.node.clone();
    let pattern = rule.pattern.clone();
    match run(move || node.set_channel_rule(rule)).await {
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
    let node = admin.node.clone();
    let target = pattern.clone();
    let flash = match run(move || node.delete_channel_rule(&target)).await {
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
            Some(vec![Transport::Sse, Transport::WebSocket])
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
}
