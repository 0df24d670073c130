//! Settings changed while the server runs: the configuration reloaded
//! (SIGHUP), global settings and channel rules changed in the admin UI.
//! Changes made in the admin UI are kept in the database, applied at once,
//! and restored at the next start.
//!
//! The database calls here block: call them from a blocking context
//! (`spawn_blocking`).

use std::sync::Arc;

use tracing::warn;

use super::Node;
use crate::config::keys::{self, needs_restart, ui_settable};
use crate::config::{Config, LegacyArgs};
use crate::hub::{ChannelRule, ChannelRules};
use crate::store::accounts::Accounts;

impl Node {
    /// Re-read the configuration (SIGHUP). On error the old one stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = Config::load_with(&self.args, &self.ui_settings())?;
        self.apply(config);
        if let Some(tls) = &self.tls {
            tls.reload()?;
        }
        Ok(())
    }

    /// Put a new configuration in force. Keys that are read only at start
    /// (addresses, TLS, storage, engine) keep their old effect: say so.
    pub fn apply(&self, config: Config) {
        for warning in &config.warnings {
            warn!("{warning}");
        }
        let old = self.config.load();
        let changed: Vec<&str> = config
            .settings
            .iter()
            .filter(|s| s.mode.is_none() && needs_restart(s.key))
            .filter(|s| {
                !old.settings
                    .iter()
                    .any(|o| o.key == s.key && o.mode.is_none() && o.raw == s.raw)
            })
            .map(|s| s.key)
            .collect();
        if !changed.is_empty() {
            warn!(
                "{} change(s) only when the server restarts",
                changed.join(", ")
            );
        }
        super::limits_in_force(&self.hub, &config);
        self.presence.set_grace(config.presence_leave_delay);
        // A token key that cannot be read keeps the one in force.
        match super::access::verifier(&config) {
            Ok(verifier) => self.verifier.store(Arc::new(verifier)),
            Err(e) => warn!("{e}; the token keys in force stay"),
        }
        self.config.store(Arc::new(config));
        self.drop_document_cache();
    }

    fn ui_settings(&self) -> LegacyArgs {
        self.ui_settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn database(&self) -> Result<&Arc<Accounts>, String> {
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
        self.database()?
            .save_channel_rule(&rule)
            .map_err(|e| e.to_string())?;
        self.reload_rules()
    }

    /// Remove a rule; false if there was none.
    pub fn delete_channel_rule(&self, pattern: &str) -> Result<bool, String> {
        let removed = self
            .database()?
            .delete_channel_rule(pattern)
            .map_err(|e| e.to_string())?;
        self.reload_rules()?;
        Ok(removed)
    }

    fn reload_rules(&self) -> Result<(), String> {
        let rules = self
            .database()?
            .channel_rules()
            .map_err(|e| e.to_string())?;
        self.hub.set_rules(ChannelRules::new(rules));
        Ok(())
    }

    /// Override a global setting (the source becomes "admin UI"). The new
    /// configuration is checked first; a bad value changes nothing.
    pub fn set_global_setting(&self, key: &str, value: &str) -> Result<(), String> {
        let known = keys::find(key).ok_or_else(|| format!("unknown setting '{key}'"))?;
        if !ui_settable(known.name) {
            return Err(format!("'{key}' cannot be changed here"));
        }
        self.change_ui_settings(
            |ui| ui.set(known.name, None, value),
            |db| db.save_ui_setting(known.name, value),
        )
    }

    /// Drop an override made in the admin UI.
    pub fn clear_global_setting(&self, key: &str) -> Result<(), String> {
        self.change_ui_settings(
            |ui| ui.remove(key),
            |db| db.delete_ui_setting(key).map(|_| ()),
        )
    }

    /// Check the configuration `edit` makes, store it with `save`, then put
    /// it in force.
    fn change_ui_settings<E: std::fmt::Display>(
        &self,
        edit: impl FnOnce(&mut LegacyArgs),
        save: impl FnOnce(&Accounts) -> Result<(), E>,
    ) -> Result<(), String> {
        let mut ui = self.ui_settings();
        edit(&mut ui);
        let config = Config::load_with(&self.args, &ui).map_err(|e| e.to_string())?;
        save(self.database()?).map_err(|e| e.to_string())?;
        *self.ui_settings.lock().unwrap_or_else(|e| e.into_inner()) = ui;
        self.apply(config);
        Ok(())
    }
}
