//! Wiring: bind the listeners, run the accept loops and housekeeping, react
//! to signals, and shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::cluster::Cluster;
use crate::config::{Config, EngineKind, LegacyArgs};
use crate::engine::Engine;
use crate::hub::{Hub, IdReserve, Message};
use crate::store::accounts::Accounts;
use crate::store::persist::Persister;
use crate::store::{IdCeiling, Persistence, Store};
use crate::subscriber::static_files::Documents;

/// How long shutdown waits for connections to take their last bytes.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// State every task can reach.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub config: ArcSwap<Config>,
    /// The command line, kept for reloads.
    pub args: LegacyArgs,
    /// Global settings made in the admin UI (they win over everything).
    pub ui_settings: std::sync::Mutex<LegacyArgs>,
    pub documents: Documents,
    /// The framings of the modern transports, shared by their subscribers.
    pub framings: crate::subscriber::framing::Framings,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    /// Writes the channel caches to disk, unless persistence is off.
    pub persister: Option<Arc<Persister>>,
    /// Admin password, sessions and API tokens (none if the database
    /// could not be opened).
    pub accounts: Option<Arc<Accounts>>,
    /// Connections per client address on the subscriber port.
    pub clients: Clients,
    /// The certificate, when TLS is on.
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// Self-update: what the last check found, and whether to restart.
    pub updates: crate::update::Updates,
    /// Memory alone, or Redis shared with other nodes.
    pub engine: crate::engine::Engine,
}

/// Counts connections per client address.
#[derive(Default)]
pub struct Clients {
    counts: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u64>>,
}

impl Clients {
    /// Count one more connection from `ip` until the slot is dropped.
    pub fn enter(&self, ip: std::net::IpAddr) -> ClientSlot<'_> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_default();
        *count += 1;
        ClientSlot {
            clients: self,
            ip,
            count: *count,
        }
    }
}

/// One connection's place in [`Clients`].
pub struct ClientSlot<'a> {
    clients: &'a Clients,
    ip: std::net::IpAddr,
    count: u64,
}

impl ClientSlot<'_> {
    /// Connections from this address, this one included, when it came.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        let mut counts = self
            .clients
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl Shared {
    /// Pause (or resume) publishing: while paused every publish — control
    /// port, UDP, HTTP API, admin UI — is refused with an error, and
    /// subscribers stay connected.
    pub fn set_publishing_paused(&self, paused: bool) {
        if self.hub.set_paused(paused) != paused {
            info!("publishing {}", if paused { "paused" } else { "resumed" });
        }
    }

    pub fn publishing_paused(&self) -> bool {
        self.hub.paused()
    }

    /// Re-read the configuration (SIGHUP). On error the old one stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let ui = self
            .ui_settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let config = Config::load_with(&self.args, &ui)?;
        self.apply(config);
        if let Some(tls) = &self.tls {
            tls.reload()?;
        }
        Ok(())
    }

    /// Put a new configuration in force.
    pub fn apply(&self, config: Config) {
        for warning in &config.warnings {
            warn!("{warning}");
        }
        let old = self.config.load();
        if (config.controller_ip, config.controller_port)
            != (old.controller_ip, old.controller_port)
            || (config.subscriber_ip, config.subscriber_port)
                != (old.subscriber_ip, old.subscriber_port)
            || (config.udp_ip, config.udp_port) != (old.udp_ip, old.udp_port)
            || config.tls != old.tls
            || config.plain_subscriber_port != old.plain_subscriber_port
            || config.controller_tls != old.controller_tls
        {
            warn!("listening addresses and TLS on or off change only on restart");
        }
        self.hub
            .set_limits(config.max_messages_per_channel, config.max_message_age);
        self.config.store(Arc::new(config));
        self.documents.clear();
    }
}

/// A server with its listeners bound, ready to run.
pub struct Server {
    shared: Arc<Shared>,
    control: TcpListener,
    subscriber: TcpListener,
    /// With TLS on, the optional plain-HTTP subscriber port.
    plain_subscriber: Option<TcpListener>,
    udp: Option<UdpSocket>,
    admin: Option<TcpListener>,
}

impl Server {
    /// Bind every listener the configuration asks for.
    pub async fn bind(config: Config, args: LegacyArgs) -> anyhow::Result<Server> {
        let hub = Arc::new(Hub::new(
            config.max_messages_per_channel,
            config.max_message_age,
        ));
        let (store, accounts) = open_store(&config);
        // Settings made in the admin UI, and channel rules, from the database.
        let mut ui_settings = LegacyArgs::default();
        let mut config = config;
        if let Some(accounts) = &accounts {
            match accounts.ui_settings() {
                Ok(saved) if !saved.is_empty() => {
                    for (key, value) in saved {
                        ui_settings.set(&key, None, value);
                    }
                    match Config::load_with(&args, &ui_settings) {
                        Ok(with_ui) => config = with_ui,
                        Err(e) => error!("ignoring settings saved in the admin UI: {e}"),
                    }
                }
                Ok(_) => {}
                Err(e) => error!("cannot read settings saved in the admin UI: {e}"),
            }
            match accounts.channel_rules() {
                Ok(rules) => hub.set_rules(crate::settings::ChannelRules::new(rules)),
                Err(e) => error!("cannot read channel settings: {e}"),
            }
        }
        // Settings saved in the admin UI may move the listeners, so they
        // are bound only now.
        let tls = crate::tls::Tls::start(&config.tls, &config.data_directory)
            .context("TLS is on but its certificate cannot be used")?;
        let control_addr = SocketAddr::new(config.controller_ip, config.controller_port);
        let subscriber_addr = SocketAddr::new(config.subscriber_ip, config.subscriber_port);
        let control = TcpListener::bind(control_addr)
            .await
            .with_context(|| format!("cannot listen on control address {control_addr}"))?;
        let subscriber = TcpListener::bind(subscriber_addr)
            .await
            .with_context(|| format!("cannot listen on subscriber address {subscriber_addr}"))?;
        let plain_subscriber =
            match (&tls, config.plain_subscriber_port) {
                (Some(_), port) if port > 0 => {
                    let addr = SocketAddr::new(config.subscriber_ip, port);
                    Some(TcpListener::bind(addr).await.with_context(|| {
                        format!("cannot listen on plain subscriber address {addr}")
                    })?)
                }
                _ => None,
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
            let addr = SocketAddr::new(config.admin_ip, config.admin_port);
            match TcpListener::bind(addr).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    error!("admin UI off: cannot listen on admin address {addr}: {e}");
                    None
                }
            }
        } else {
            None
        };
        hub.set_limits(config.max_messages_per_channel, config.max_message_age);
        let persister = store.and_then(|store| open_channels(store, &config, &hub));
        let shutdown = CancellationToken::new();
        let engine = match config.engine {
            EngineKind::Memory => Engine::Memory,
            EngineKind::Redis => Engine::Redis(
                Cluster::start(
                    &config,
                    hub.clone(),
                    control.local_addr()?,
                    subscriber.local_addr()?,
                    shutdown.clone(),
                )
                .await?,
            ),
        };
        let shared = Arc::new(Shared {
            hub,
            config: ArcSwap::from_pointee(config),
            args,
            ui_settings: std::sync::Mutex::new(ui_settings),
            documents: Documents::default(),
            framings: Default::default(),
            shutdown,
            tasks: TaskTracker::new(),
            persister,
            accounts,
            clients: Clients::default(),
            tls,
            updates: Default::default(),
            engine,
        });
        Ok(Server {
            shared,
            control,
            subscriber,
            plain_subscriber,
            udp,
            admin,
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

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Cancel this to shut the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Serve until the shutdown token is cancelled, then close every
    /// connection (with the shutdown messages) and wait for them.
    pub async fn run(self) -> anyhow::Result<()> {
        let shared = self.shared;
        info!("meteord {} starting", env!("CARGO_PKG_VERSION"));
        let tls = shared.tls.clone();
        let scheme = |on: bool| if on { " (TLS)" } else { "" };
        let controller_tls = shared.config.load().controller_tls;
        info!(
            "control listening on {}{}",
            self.control.local_addr()?,
            scheme(controller_tls)
        );
        info!(
            "subscriber listening on {}{}",
            self.subscriber.local_addr()?,
            scheme(tls.is_some())
        );
        if let Some(plain) = &self.plain_subscriber {
            info!("plain subscriber listening on {}", plain.local_addr()?);
        }
        if let Some(udp) = &self.udp {
            info!("udp listening on {}", udp.local_addr()?);
        }
        if let Some(admin) = &self.admin {
            info!(
                "admin listening on {}{}",
                admin.local_addr()?,
                scheme(tls.is_some())
            );
        }
        let mut loops = tokio::task::JoinSet::new();
        loops.spawn(crate::control::serve(
            self.control,
            shared.clone(),
            tls.clone().filter(|_| controller_tls),
        ));
        loops.spawn(crate::subscriber::serve(
            self.subscriber,
            shared.clone(),
            tls.clone(),
        ));
        if let Some(plain) = self.plain_subscriber {
            loops.spawn(crate::subscriber::serve(plain, shared.clone(), None));
        }
        if let Some(tls) = tls {
            loops.spawn(crate::tls::watch(tls, shared.shutdown.clone()));
        }
        if let Some(udp) = self.udp {
            loops.spawn(crate::control::udp::serve(udp, shared.clone()));
        }
        if let Some(admin) = self.admin {
            loops.spawn(crate::admin::serve(admin, shared.clone()));
        }
        loops.spawn(housekeeping(shared.clone()));
        loops.spawn(pings(shared.clone()));

        shared.shutdown.cancelled().await;
        info!("shutting down");
        shared.hub.close_all();
        loops.join_all().await;
        shared.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, shared.tasks.wait())
            .await
            .is_err()
        {
            warn!(
                "{} connection(s) still open after {SHUTDOWN_GRACE:?}; exiting anyway",
                shared.tasks.len()
            );
        }
        if let Some(cluster) = shared.engine.cluster() {
            cluster.finish().await;
        }
        match shared.persister.clone() {
            Some(persister) => {
                let _ = tokio::task::spawn_blocking(move || persister.shutdown()).await;
            }
            // A clean stop: the next start continues ids without a gap.
            None if shared.accounts.is_some() && shared.engine.cluster().is_none() => {
                let ceiling = IdCeiling::new(&shared.config.load().data_directory);
                if let Err(e) = ceiling.reserve(shared.hub.next_message_id()) {
                    warn!("cannot record the next message id: {e}");
                }
            }
            None => {}
        }
        info!("shutdown complete");
        Ok(())
    }
}

/// Open the database in the data directory and its accounts. A database
/// that cannot be opened is logged and the server runs without one.
fn open_store(config: &Config) -> (Option<Store>, Option<Arc<Accounts>>) {
    let dir = &config.data_directory;
    let (store, note) = match Store::open(dir) {
        Ok(opened) => opened,
        Err(e) => {
            error!("running without a database (no persistence, no admin accounts): {e}");
            return (None, None);
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
    (Some(store), accounts)
}

/// As the Persistence setting says, restore the channel caches from the
/// database and start writing them back. (With the redis engine, Redis
/// keeps the channels and hands out the ids; the database keeps only the
/// accounts and settings.)
fn open_channels(store: Store, config: &Config, hub: &Arc<Hub>) -> Option<Arc<Persister>> {
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

/// Age out cached messages and close subscriptions past MaxTime.
async fn housekeeping(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        shared.hub.trim_by_age();
        shared.hub.expire_deadlines(Instant::now());
        shared.hub.trim_feeds();
    }
}

/// Ping persistent subscribers every PingInterval seconds (re-read after
/// each ping, so a reload takes effect).
async fn pings(shared: Arc<Shared>) {
    loop {
        let interval = shared.config.load().ping_interval;
        let wait = if interval == 0 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(interval)
        };
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if interval > 0 && shared.config.load().ping_interval == interval {
            shared.hub.ping_all();
        }
    }
}

/// Accept connections until shutdown, running `handle` for each as a
/// tracked task. After a failed accept (often: out of file descriptors) it
/// waits a little instead of spinning.
pub async fn accept_loop<F, Fut>(
    port: &'static str,
    listener: TcpListener,
    shared: Arc<Shared>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr, Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                shared.tasks.spawn(handle(stream, peer, shared.clone()));
            }
            Err(error) => {
                error!("{port} accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serve HTTP/1.1 on one connection with `router` until the client leaves,
/// or shutdown comes and its current answer is done (a few seconds at most).
pub async fn serve_http<I>(io: I, router: axum::Router, shutdown: &CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let service = hyper_util::service::TowerToHyperService::new(router);
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(crate::subscriber::request::MAX_HEAD)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        }
    }
}

/// React to Unix signals: HUP reloads, USR1 empties the channel caches,
/// USR2 drops the document cache, TERM and INT shut down.
///
/// The handlers are installed before this returns (so a signal that comes
/// right after start-up is not lost to the default action); the returned
/// future then serves them.
#[cfg(unix)]
pub fn handle_signals(
    shared: Arc<Shared>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    info!("SIGHUP: reloading the configuration and dropping the document cache");
                    if let Err(e) = shared.reload() {
                        error!("reload failed, keeping the running configuration: {e:#}");
                    }
                }
                _ = usr1.recv() => {
                    info!("SIGUSR1: emptying all channel caches");
                    if let Err(e) = shared.clear_caches().await {
                        error!("cannot empty the channel caches: {e}");
                    }
                }
                _ = usr2.recv() => {
                    info!("SIGUSR2: dropping the document cache");
                    shared.documents.clear();
                }
                _ = term.recv() => { info!("SIGTERM"); shared.shutdown.cancel(); return; }
                _ = int.recv() => { info!("SIGINT"); shared.shutdown.cancel(); return; }
            }
        }
    })
}

/// On Windows, Ctrl-C (and a service stop, which arrives the same way)
/// shuts down.
#[cfg(windows)]
pub fn handle_signals(
    shared: Arc<Shared>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
    Ok(async move {
        ctrl_c.recv().await;
        info!("Ctrl-C");
        shared.shutdown.cancel();
    })
}
