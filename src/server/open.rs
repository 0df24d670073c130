//! Opening what a node is made of, before any listener serves: the
//! database with its accounts and saved settings, and the channel caches
//! persisted by an earlier run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::config::keys::ui_settable;
use crate::config::{Config, EngineKind, LegacyArgs, Persistence};
use crate::hub::{ChannelRules, Hub, Message};
use crate::store::accounts::Accounts;
use crate::store::persist::Persister;
use crate::store::webhooks::Deliveries;
use crate::store::{IdCeiling, Store};

/// What the database gives a node.
pub(super) struct Opened {
    pub store: Option<Store>,
    pub accounts: Option<Arc<Accounts>>,
    pub deliveries: Option<Arc<Deliveries>>,
}

/// Open the database in the data directory, its accounts and webhook
/// queue. A database that cannot be opened is logged and the server runs
/// without one.
pub(super) fn open_store(config: &Config) -> Opened {
    let dir = &config.data_directory;
    let (store, note) = match Store::open(dir) {
        Ok(opened) => opened,
        Err(e) => {
            error!(
                "running without a database (no persistence, no admin accounts, no webhooks): {e}"
            );
            return Opened {
                store: None,
                accounts: None,
                deliveries: None,
            };
        }
    };
    if let Some(note) = note {
        error!("{note}");
    }
    let accounts = match Accounts::open(store.path()) {
        Ok(accounts) => Some(Arc::new(accounts)),
        Err(e) => {
            error!("admin accounts unavailable: {e}");
            None
        }
    };
    let deliveries = match Deliveries::open(store.path()) {
        Ok(deliveries) => Some(Arc::new(deliveries)),
        Err(e) => {
            error!("webhooks unavailable: {e}");
            None
        }
    };
    Opened {
        store: Some(store),
        accounts,
        deliveries,
    }
}

/// Settings saved in the admin UI, put over the configuration, and the
/// channel rules, put in force in `hub`. Returns the saved settings and
/// the configuration with them.
pub(super) fn saved_settings(
    accounts: &Accounts,
    args: &LegacyArgs,
    config: Config,
    hub: &Hub,
) -> (LegacyArgs, Config) {
    let mut ui_settings = LegacyArgs::default();
    let mut config = config;
    match accounts.ui_settings() {
        Ok(saved) if !saved.is_empty() => {
            for (key, value) in saved {
                // Saved by an older version that let the UI set it.
                if !ui_settable(&key) {
                    warn!("ignoring {key} saved in the admin UI: set it in the config file");
                    continue;
                }
                ui_settings.set(&key, None, value);
            }
            match Config::load_with(args, &ui_settings) {
                Ok(with_ui) => config = with_ui,
                Err(e) => error!("ignoring settings saved in the admin UI: {e}"),
            }
        }
        Ok(_) => {}
        Err(e) => error!("cannot read settings saved in the admin UI: {e}"),
    }
    match accounts.channel_rules() {
        Ok(rules) => hub.set_rules(ChannelRules::new(rules)),
        Err(e) => error!("cannot read channel settings: {e}"),
    }
    (ui_settings, config)
}

/// As the Persistence setting says, restore the channel caches from the
/// database and start writing them back. (With the redis engine, Redis
/// keeps the channels and hands out the ids; the database keeps only the
/// accounts and settings.)
pub(super) fn open_channels(
    store: Store,
    config: &Config,
    hub: &Arc<Hub>,
) -> Option<Arc<Persister>> {
    if config.engine == EngineKind::Redis {
        return None;
    }
    let dir = &config.data_directory;
    if config.persistence == Persistence::Off {
        // No channel data on disk, but ids still continue where they were,
        // so that clients resuming after a restart never see one reused.
        let ceiling = Arc::new(IdCeiling::new(dir));
        hub.restore(std::iter::empty(), ceiling.read());
        hub.reserve_ids(ceiling);
        return None;
    }
    let started = Instant::now();
    let oldest = crate::hub::unix_now().saturating_sub(config.max_message_age);
    let restored = match store.load(config.max_messages_per_channel, oldest) {
        Ok(restored) => restored,
        Err(e) => {
            error!("persistence is off for this run: cannot read the database: {e}");
            return None;
        }
    };
    let ceiling = IdCeiling::new(dir);
    let next_id = restored.next_id.max(ceiling.read());
    let count = restored.messages.len();
    hub.restore(
        restored.messages.into_iter().map(|m| Message {
            id: m.id,
            channel: m.channel,
            text: m.text,
            timestamp: m.timestamp,
        }),
        next_id,
    );
    info!(
        "restored {count} messages from {} in {:?}; next message id {next_id}",
        store.path().display(),
        started.elapsed()
    );
    let persister = Persister::start(
        store,
        ceiling,
        hub.clone(),
        config.persistence,
        Duration::from_secs(config.snapshot_interval),
    );
    Some(persister)
}

/// Until an admin password is set: the first-run setup code (made once and
/// kept in the data directory), said in the log for whoever installs the
/// server.
pub(super) fn setup_code(accounts: &Accounts, config: &Config) -> Option<String> {
    match accounts.has_users() {
        Ok(false) => {}
        Ok(true) => {
            crate::store::setup_code::remove(&config.data_directory);
            return None;
        }
        Err(e) => {
            error!("cannot tell whether an admin password is set: {e}");
            return None;
        }
    }
    match crate::store::setup_code::load_or_create(&config.data_directory) {
        Ok(code) => {
            info!(
                "first run: no admin password yet. From this machine, open the admin UI on port {}; from another one, the page asks for this setup code: {code}",
                config.admin_port
            );
            Some(code)
        }
        Err(e) => {
            error!("cannot write the first-run setup code: {e}; the first run works from this machine only");
            None
        }
    }
}
