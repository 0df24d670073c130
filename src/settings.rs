//! Settings changed at run time (from the admin UI): per-channel rules and
//! overrides of the global configuration. Both are kept in the database,
//! applied at once, and restored at the next start.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{keys, Config};
use crate::server::Shared;
use crate::store::accounts::Accounts;

/// The transports a channel rule may allow.
pub const TRANSPORTS: &[&str] = &["legacy", "sse", "websocket", "poll"];

/// Settings for the channels a pattern matches: an exact name, or a glob
/// where `*` stands for any run of characters (`chat.*`). The most specific
/// matching rule applies: an exact name first, then the longest pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRule {
    pub pattern: String,
    /// Overrides MaxMessagesPerChannel (0: no limit).
    pub max_messages: Option<usize>,
    /// Overrides MaxMessageAge, in seconds.
    pub max_age: Option<u64>,
    /// Overrides whether the channel's cache is persisted.
    pub persist: Option<bool>,
    /// Transports subscribers may use (`None`: all of [`TRANSPORTS`]).
    pub transports: Option<Vec<String>>,
    /// May subscribers without an API token subscribe?
    pub anonymous: bool,
}

impl ChannelRule {
    /// A rule that changes nothing, for `pattern`.
    pub fn new(pattern: &str) -> ChannelRule {
        ChannelRule {
            pattern: pattern.to_string(),
            max_messages: None,
            max_age: None,
            persist: None,
            transports: None,
            anonymous: true,
        }
    }

    /// Check a rule before it is stored.
    pub fn validate(&self) -> Result<(), String> {
        // A pattern is spelled like a channel name (with `*`s).
        if !crate::hub::valid_channel_name(&self.pattern) {
            return Err(format!("pattern: {}", crate::hub::CHANNEL_NAME_RULE));
        }
        if let Some(transports) = &self.transports {
            if let Some(bad) = transports
                .iter()
                .find(|t| !TRANSPORTS.contains(&t.as_str()))
            {
                return Err(format!(
                    "unknown transport '{bad}' (known: {})",
                    TRANSPORTS.join(", ")
                ));
            }
        }
        Ok(())
    }

    pub fn matches(&self, channel: &[u8]) -> bool {
        glob_match(self.pattern.as_bytes(), channel)
    }

    fn specificity(&self) -> (bool, usize) {
        (!self.pattern.contains('*'), self.pattern.len())
    }
}

/// `*` matches any run of bytes (including none); everything else itself.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.iter().position(|&b| b == b'*') {
        None => pattern == text,
        Some(star) => {
            let (head, rest) = (&pattern[..star], &pattern[star + 1..]);
            if !text.starts_with(head) {
                return false;
            }
            let text = &text[head.len()..];
            (0..=text.len()).any(|skip| glob_match(rest, &text[skip..]))
        }
    }
}

/// The rules in force, most specific first.
#[derive(Debug, Default, Clone)]
pub struct ChannelRules {
    rules: Vec<ChannelRule>,
}

impl ChannelRules {
    pub fn new(mut rules: Vec<ChannelRule>) -> ChannelRules {
        rules.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        ChannelRules { rules }
    }

    /// The rule for a channel, if any matches.
    pub fn for_channel(&self, channel: &[u8]) -> Option<&ChannelRule> {
        self.rules.iter().find(|r| r.matches(channel))
    }

    /// The most messages a channel keeps: its rule's limit, else `global`
    /// (0: no limit).
    pub fn max_messages(&self, channel: &[u8], global: usize) -> usize {
        self.for_channel(channel)
            .and_then(|r| r.max_messages)
            .unwrap_or(global)
    }

    pub fn all(&self) -> &[ChannelRule] {
        &self.rules
    }
}

/// May the admin UI change this key? Global keys only, and not where the
/// config file is (nor help), nor the log files, which are set up before
/// the database (and its saved settings) is opened.
pub fn settable(key: &str) -> bool {
    keys::find(key).is_some_and(|k| {
        k.scope == keys::Scope::Global
            && !matches!(
                k.name,
                "ConfigFileLocation" | "Help" | "LogDirectory" | "LogFormat" | "LogRetention"
            )
    })
}

/// Changing settings at run time. These touch the database: call them from
/// a blocking context (`spawn_blocking`).
impl Shared {
    fn accounts(&self) -> Result<&Arc<Accounts>, String> {
        self.accounts
            .as_ref()
            .ok_or_else(|| "the database is unavailable".to_string())
    }

    /// The channel rules in force, most specific first.
    pub fn channel_rules(&self) -> Vec<ChannelRule> {
        self.hub.rules().all().to_vec()
    }

    /// Add or replace the rule for `rule.pattern`; it applies at once.
    pub fn set_channel_rule(&self, rule: ChannelRule) -> Result<(), String> {
        rule.validate()?;
        let accounts = self.accounts()?;
        accounts
            .save_channel_rule(&rule)
            .map_err(|e| e.to_string())?;
        self.reload_rules()
    }

    /// Remove a rule; false if there was none.
    pub fn delete_channel_rule(&self, pattern: &str) -> Result<bool, String> {
        let removed = self
            .accounts()?
            .delete_channel_rule(pattern)
            .map_err(|e| e.to_string())?;
        self.reload_rules()?;
        Ok(removed)
    }

    fn reload_rules(&self) -> Result<(), String> {
        let rules = self
            .accounts()?
            .channel_rules()
            .map_err(|e| e.to_string())?;
        self.hub.set_rules(ChannelRules::new(rules));
        Ok(())
    }

    /// Override a global setting (the source becomes "admin UI"). The new
    /// configuration is checked first; a bad value changes nothing.
    pub fn set_global_setting(&self, key: &str, value: &str) -> Result<(), String> {
        let known = keys::find(key).ok_or_else(|| format!("unknown setting '{key}'"))?;
        if !settable(known.name) {
            return Err(format!("'{key}' cannot be changed here"));
        }
        let mut ui = self
            .ui_settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ui.set(known.name, None, value);
        let config = Config::load_with(&self.args, &ui).map_err(|e| e.to_string())?;
        self.accounts()?
            .save_ui_setting(known.name, value)
            .map_err(|e| e.to_string())?;
        *self.ui_settings.lock().unwrap_or_else(|e| e.into_inner()) = ui;
        self.apply(config);
        Ok(())
    }

    /// Drop an override made in the admin UI.
    pub fn clear_global_setting(&self, key: &str) -> Result<(), String> {
        let mut ui = self
            .ui_settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ui.remove(key);
        let config = Config::load_with(&self.args, &ui).map_err(|e| e.to_string())?;
        self.accounts()?
            .delete_ui_setting(key)
            .map_err(|e| e.to_string())?;
        *self.ui_settings.lock().unwrap_or_else(|e| e.into_inner()) = ui;
        self.apply(config);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"chat.*", b"chat.room1"));
        assert!(glob_match(b"chat.*", b"chat."));
        assert!(!glob_match(b"chat.*", b"chatroom"));
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        assert!(glob_match(b"exact", b"exact"));
        assert!(!glob_match(b"exact", b"exactly"));
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let rules = ChannelRules::new(vec![
            ChannelRule::new("*"),
            ChannelRule::new("chat.*"),
            ChannelRule::new("chat.vip"),
        ]);
        assert_eq!(rules.for_channel(b"chat.vip").unwrap().pattern, "chat.vip");
        assert_eq!(rules.for_channel(b"chat.x").unwrap().pattern, "chat.*");
        assert_eq!(rules.for_channel(b"news").unwrap().pattern, "*");
        let none = ChannelRules::new(vec![ChannelRule::new("a")]);
        assert!(none.for_channel(b"b").is_none());
    }

    #[test]
    fn validation() {
        let mut rule = ChannelRule::new("chat.*");
        assert!(rule.validate().is_ok());
        rule.transports = Some(vec!["sse".into(), "pigeon".into()]);
        assert!(rule.validate().unwrap_err().contains("pigeon"));
        assert!(ChannelRule::new("has space").validate().is_err());
    }
}
