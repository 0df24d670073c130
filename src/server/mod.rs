//! The process around one node: open its parts, bind the listeners, run
//! the front ends and the chores, react to signals, and shut down
//! gracefully ([`Server`]); run it all on a runtime of its own
//! ([`runtime::serve`]).

mod descriptors;
mod open;
pub mod runtime;
mod signals;
mod upkeep;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cluster::Cluster;
use crate::config::{Config, EngineKind, LegacyArgs};
use crate::hub::{Hub, IdReserve};
use crate::node::{Engine, Node, Parts};
use crate::store::IdCeiling;
use crate::subscriber::Mounted;
pub use signals::handle_signals;

/// How long shutdown waits for connections to take their last bytes.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A server with its listeners bound, ready to run.
pub struct Server {
    node: Arc<Node>,
    control: TcpListener,
    subscriber: TcpListener,
    /// With TLS on, the optional plain-HTTP subscriber port.
    plain_subscriber: Option<TcpListener>,
    udp: Option<UdpSocket>,
    admin: Option<TcpListener>,
}

/// Connections the kernel may hold for us before we accept them: after a
/// restart every subscriber reconnects at once, and a connection dropped
/// from a full queue waits a second or more to try again.
const LISTEN_BACKLOG: u32 = 4096;

/// A TCP listener with room for a reconnect storm in its accept queue.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std and tokio do on Unix: a restart may bind while old
    // connections linger in TIME_WAIT. (On Windows it would mean sharing.)
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Every listener a configuration asks for.
struct Listeners {
    control: TcpListener,
    subscriber: TcpListener,
    plain_subscriber: Option<TcpListener>,
    udp: Option<UdpSocket>,
    admin: Option<TcpListener>,
}

impl Listeners {
    async fn bind(config: &Config, tls: bool) -> anyhow::Result<Listeners> {
        let tcp = |ip, port, what: &'static str| async move {
            let addr = SocketAddr::new(ip, port);
            listen(addr).with_context(|| format!("cannot listen on {what} address {addr}"))
        };
        let control = tcp(config.controller_ip, config.controller_port, "control").await?;
        let subscriber = tcp(config.subscriber_ip, config.subscriber_port, "subscriber").await?;
        let plain_subscriber = if tls && config.plain_subscriber_port > 0 {
            let port = config.plain_subscriber_port;
            Some(tcp(config.subscriber_ip, port, "plain subscriber").await?)
        } else {
            None
        };
        let udp = if config.udp_port > 0 {
            let addr = SocketAddr::new(config.udp_ip, config.udp_port);
            Some(
                UdpSocket::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on UDP address {addr}"))?,
            )
        } else {
            None
        };
        // The push service matters more than the admin UI: if its address
        // is taken (another instance), say so and serve without it.
        let admin = if config.admin_ui {
            match tcp(config.admin_ip, config.admin_port, "admin").await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    error!("admin UI off: {e:#}");
                    None
                }
            }
        } else {
            None
        };
        Ok(Listeners {
            control,
            subscriber,
            plain_subscriber,
            udp,
            admin,
        })
    }
}

impl Server {
    /// Open the node's parts and bind every listener the configuration
    /// asks for.
    pub async fn bind(config: Config, args: LegacyArgs) -> anyhow::Result<Server> {
        let hub = Arc::new(Hub::new(
            config.max_messages_per_channel,
            config.max_message_age,
        ));
        let open::Opened {
            store,
            accounts,
            deliveries,
        } = open::open_store(&config);
        let (ui_settings, config) = match &accounts {
            Some(accounts) => open::saved_settings(accounts, &args, config, &hub),
            None => (LegacyArgs::default(), config),
        };
        // Settings saved in the admin UI may move the listeners, so they
        // are bound only now.
        let tls = crate::tls::Tls::start(&config.tls, &config.data_directory)
            .context("TLS is on but its certificate cannot be used")?;
        let verifier = crate::node::access::verifier(&config).map_err(anyhow::Error::msg)?;
        let listeners = Listeners::bind(&config, tls.is_some()).await?;
        let persister = store.and_then(|store| open::open_channels(store, &config, &hub));
        let setup_code = accounts
            .as_deref()
            .and_then(|accounts| open::setup_code(accounts, &config));
        let shutdown = CancellationToken::new();
        let engine = match config.engine {
            EngineKind::Memory => Engine::Memory,
            EngineKind::Redis => Engine::Redis(
                Cluster::start(
                    &config,
                    hub.clone(),
                    listeners.control.local_addr()?,
                    listeners.subscriber.local_addr()?,
                    shutdown.clone(),
                )
                .await?,
            ),
        };
        let addresses = crate::node::getting_started::Addresses {
            control: listeners.control.local_addr()?,
            subscriber: listeners.subscriber.local_addr()?,
            admin: listeners.admin.as_ref().and_then(|a| a.local_addr().ok()),
        };
        let node = Arc::new(Node::new(Parts {
            addresses,
            hub,
            config,
            args,
            ui_settings,
            shutdown,
            persister,
            accounts,
            tls,
            engine,
            setup_code,
            verifier,
            deliveries,
            subscriber_budget: descriptors::subscriber_budget(),
        }));
        Ok(Server {
            node,
            control: listeners.control,
            subscriber: listeners.subscriber,
            plain_subscriber: listeners.plain_subscriber,
            udp: listeners.udp,
            admin: listeners.admin,
        })
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|a| a.local_addr().ok())
    }

    pub fn control_addr(&self) -> SocketAddr {
        self.control.local_addr().expect("bound")
    }

    pub fn subscriber_addr(&self) -> SocketAddr {
        self.subscriber.local_addr().expect("bound")
    }

    /// The plain-HTTP subscriber port kept beside a TLS one.
    pub fn plain_subscriber_addr(&self) -> Option<SocketAddr> {
        self.plain_subscriber
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|u| u.local_addr().ok())
    }

    pub fn node(&self) -> Arc<Node> {
        self.node.clone()
    }

    /// Cancel this to shut the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.node.shutdown.clone()
    }

    fn log_addresses(&self) -> anyhow::Result<()> {
        let scheme = |on: bool| if on { " (TLS)" } else { "" };
        let tls = self.node.tls.is_some();
        let controller_tls = self.node.config.load().controller_tls;
        let control = self.control.local_addr()?;
        info!("control listening on {control}{}", scheme(controller_tls));
        let subscriber = self.subscriber.local_addr()?;
        info!("subscriber listening on {subscriber}{}", scheme(tls));
        if let Some(plain) = &self.plain_subscriber {
            info!("plain subscriber listening on {}", plain.local_addr()?);
        }
        if let Some(udp) = &self.udp {
            info!("udp listening on {}", udp.local_addr()?);
        }
        if let Some(admin) = &self.admin {
            info!("admin listening on {}{}", admin.local_addr()?, scheme(tls));
        }
        Ok(())
    }

    /// Serve until the shutdown token is cancelled, then close every
    /// connection (with the shutdown messages) and wait for them.
    pub async fn run(self) -> anyhow::Result<()> {
        info!("meteord {} starting", crate::config::VERSION);
        self.log_addresses()?;
        let node = self.node;
        let tls = node.tls.clone();
        let controller_tls = node.config.load().controller_tls;
        let mut loops = tokio::task::JoinSet::new();
        loops.spawn(crate::control::serve(
            self.control,
            node.clone(),
            tls.clone().filter(|_| controller_tls),
        ));
        // The HTTP API is served on the subscriber port.
        let api = Mounted {
            router: crate::api::router(),
            prefixes: crate::api::PREFIXES,
        };
        loops.spawn(crate::subscriber::serve(
            self.subscriber,
            node.clone(),
            tls.clone(),
            api.clone(),
        ));
        if let Some(plain) = self.plain_subscriber {
            loops.spawn(crate::subscriber::serve(plain, node.clone(), None, api));
        }
        if let Some(tls) = tls {
            if tls.acme().is_some() {
                loops.spawn(crate::tls::acme::maintain(
                    tls.clone(),
                    node.shutdown.clone(),
                ));
            }
            loops.spawn(crate::tls::watch(tls, node.shutdown.clone()));
        }
        if let Some(udp) = self.udp {
            loops.spawn(crate::control::udp::serve(udp, node.clone()));
        }
        if let Some(admin) = self.admin {
            loops.spawn(crate::admin::serve(admin, node.clone()));
        }
        loops.spawn(crate::node::presence::run(node.clone()));
        loops.spawn(crate::node::webhooks::run(node.clone()));
        loops.spawn(upkeep::housekeeping(node.clone()));
        loops.spawn(upkeep::pings(node.clone()));

        node.shutdown.cancelled().await;
        info!("shutting down");
        node.hub.close_all();
        loops.join_all().await;
        finish(&node).await;
        info!("shutdown complete");
        Ok(())
    }
}

/// After the listeners stopped: wait for the connections, then leave the
/// cluster and write what is to be kept.
async fn finish(node: &Arc<Node>) {
    node.tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, node.tasks.wait())
        .await
        .is_err()
    {
        warn!(
            "{} connection(s) still open after {SHUTDOWN_GRACE:?}; exiting anyway",
            node.tasks.len()
        );
    }
    if let Some(cluster) = node.cluster() {
        cluster.finish().await;
    }
    match node.persister.clone() {
        Some(persister) => {
            let _ = tokio::task::spawn_blocking(move || persister.shutdown()).await;
        }
        // A clean stop: the next start continues ids without a gap.
        None if node.accounts.is_some() && node.cluster().is_none() => {
            let ceiling = IdCeiling::new(&node.config.load().data_directory);
            if let Err(e) = ceiling.reserve(node.hub.next_message_id()) {
                warn!("cannot record the next message id: {e}");
            }
        }
        None => {}
    }
}
