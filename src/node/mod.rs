//! The node: the state every connection of this server can reach (a
//! [`Node`] handle), the one door every publisher goes through
//! ([`Node::publish`]), and what the front ends share: connection
//! admission and accept loops ([`listen`]), HTTP helpers ([`web`]).
//!
//! Front ends (control port, subscriber port, API, admin UI) import this
//! module and the ones below it, never each other; the process layer
//! (`server`, `app`) builds the node and runs the front ends.

pub mod access;
mod authorize;
mod engine;
pub mod getting_started;
pub mod listen;
pub mod presence;
mod publish;
mod settings;
pub mod stats;
pub mod web;
pub mod webhooks;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::cluster::Cluster;
use crate::config::{Config, LegacyArgs};
use crate::hub::Hub;
use crate::store::accounts::Accounts;
use crate::store::persist::Persister;
use crate::tls::Tls;
use crate::update::Updates;
pub use engine::Engine;
pub use listen::Clients;
pub use publish::{Ack, PublishError, MAX_TEXT};

/// What a task takes once from its part of the node (its receiver).
fn take_once<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Put the configuration's cache and channel limits in force in the hub.
fn limits_in_force(hub: &Hub, config: &Config) {
    hub.set_limits(config.max_messages_per_channel, config.max_message_age);
    hub.set_channel_limits(crate::hub::ChannelLimits {
        per_subscription: config.max_channels_per_subscription,
        total: config.max_channels,
    });
}

/// One server's state, shared by every task: wrap it in an `Arc`.
pub struct Node {
    pub hub: Arc<Hub>,
    /// The configuration in force (replaced whole on reload).
    pub config: ArcSwap<Config>,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Every connection's task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Writes the channel caches to disk, unless persistence is off.
    pub persister: Option<Arc<Persister>>,
    /// Admin password, sessions and API tokens (none if the database
    /// could not be opened).
    pub accounts: Option<Arc<Accounts>>,
    /// Connections per client address on the subscriber port.
    pub clients: Arc<Clients>,
    /// The certificate, when TLS is on.
    pub tls: Option<Arc<Tls>>,
    /// Self-update: what the last check found, and whether to restart.
    pub updates: Updates,
    /// Memory alone, or Redis shared with other nodes.
    engine: Engine,
    /// The command line, kept for reloads.
    args: LegacyArgs,
    /// Global settings made in the admin UI (they win over everything).
    ui_settings: Mutex<LegacyArgs>,
    /// Publishing paused (tray, admin UI): publishers get an error.
    paused: AtomicBool,
    /// Bumped whenever cached static files must be read again (reload,
    /// SIGUSR2).
    documents_generation: AtomicU64,
    /// Until the admin password is set: the code a first run from another
    /// machine must give.
    setup_code: Mutex<Option<String>>,
    /// Verifies signed subscribe tokens with the configured keys.
    verifier: ArcSwap<crate::jwt::Verifier>,
    /// The authorize callback's recent decisions.
    authorizations: authorize::Authorizations,
    /// Who is in each channel.
    pub presence: presence::Presence,
    /// Events on their way to the application.
    pub webhooks: webhooks::Webhooks,
    /// Where the control and subscriber ports are bound.
    pub addresses: getting_started::Addresses,
    /// Connections the subscriber port may hold (file descriptors).
    pub subscriber_budget: u64,
}

/// What a node is made of; the process layer opens each part.
pub struct Parts {
    pub hub: Arc<Hub>,
    pub config: Config,
    pub args: LegacyArgs,
    pub ui_settings: LegacyArgs,
    pub shutdown: CancellationToken,
    pub persister: Option<Arc<Persister>>,
    pub accounts: Option<Arc<Accounts>>,
    pub tls: Option<Arc<Tls>>,
    pub engine: Engine,
    pub setup_code: Option<String>,
    /// Built from the configuration's token keys ([`access::verifier`]).
    pub verifier: crate::jwt::Verifier,
    /// The database's webhook queue.
    pub deliveries: Option<Arc<crate::store::webhooks::Deliveries>>,
    pub addresses: getting_started::Addresses,
    /// Connections the subscriber port may hold before it answers 503,
    /// from the file descriptor limit (0: none known).
    pub subscriber_budget: u64,
}

impl Node {
    pub fn new(parts: Parts) -> Node {
        limits_in_force(&parts.hub, &parts.config);
        let presence = presence::Presence::new(
            &parts.hub,
            &parts.config.node_name,
            parts.config.presence_leave_delay,
        );
        Node {
            hub: parts.hub,
            config: ArcSwap::from_pointee(parts.config),
            shutdown: parts.shutdown,
            tasks: TaskTracker::new(),
            persister: parts.persister,
            accounts: parts.accounts,
            clients: Arc::default(),
            tls: parts.tls,
            updates: Updates::default(),
            engine: parts.engine,
            args: parts.args,
            ui_settings: Mutex::new(parts.ui_settings),
            paused: AtomicBool::new(false),
            documents_generation: AtomicU64::new(0),
            setup_code: Mutex::new(parts.setup_code),
            verifier: ArcSwap::from_pointee(parts.verifier),
            authorizations: Default::default(),
            presence,
            webhooks: webhooks::Webhooks::new(parts.deliveries),
            addresses: parts.addresses,
            subscriber_budget: parts.subscriber_budget,
        }
    }

    /// The Redis engine's cluster, when this node shares its channels.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.engine.cluster()
    }

    /// Pause (or resume) publishing: while paused every publish — control
    /// port, UDP, HTTP API, admin UI — is refused with
    /// [`PublishError::Paused`], and subscribers stay connected.
    pub fn set_publishing_paused(&self, paused: bool) {
        if self.paused.swap(paused, Ordering::AcqRel) != paused {
            info!("publishing {}", if paused { "paused" } else { "resumed" });
        }
    }

    pub fn publishing_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// The first-run setup code, while no admin password is set.
    pub fn setup_code(&self) -> Option<String> {
        self.setup_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The admin password is set: the setup code is spent.
    pub fn finish_setup(&self) {
        if self
            .setup_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
        {
            crate::store::setup_code::remove(&self.config.load().data_directory);
        }
    }

    /// Connections the subscriber port may hold now: MaxSubscriberConnections
    /// within what the file descriptors allow (0: no limit).
    pub fn subscriber_ceiling(&self) -> u64 {
        let configured = self.config.load().max_subscriber_connections;
        match (configured, self.subscriber_budget) {
            (0, budget) => budget,
            (configured, 0) => configured,
            (configured, budget) => configured.min(budget),
        }
    }

    /// Make every front end read static files afresh (SIGUSR2, reload).
    pub fn drop_document_cache(&self) {
        self.documents_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes whenever cached static files must be dropped.
    pub fn documents_generation(&self) -> u64 {
        self.documents_generation.load(Ordering::Acquire)
    }
}
