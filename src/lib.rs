//! meteord: a realtime HTTP push server, compatible with meteord 1.06.
//!
//! # Layout
//!
//! A message's trip is short: a publisher's line on the control port
//! ([`control`]), an API request ([`api`]) or the admin form ([`admin`])
//! becomes [`hub::Hub::publish`], which gives it the next id, caches it in
//! its channel and appends it — rendered once per subscriber framing — to
//! the channel's live feed; each subscriber's task copies the new entries
//! into one buffer and writes them to its socket ([`subscriber::writer`]
//! for raw legacy streams, an HTTP body for SSE and long-poll, frames for
//! WebSocket). The persistence thread ([`store::persist`]) writes changed
//! channels to SQLite off that path.
//!
//! - [`config`]: the legacy config file and command line → one typed [`config::Config`].
//! - [`template`]: the `~placeholder~` templates of the legacy protocol.
//! - [`hub`]: channels, message caches, ids, subscribers, stats.
//! - [`engine`]: where publishes go — the hub alone (memory), or Redis
//!   shared by several nodes ([`cluster`]), whose shared log every node
//!   follows to feed its own hub.
//! - [`control`]: the publisher line protocol over TCP, and UDP.
//! - [`subscriber`]: the subscriber port — legacy `/push`, static files, and
//!   an axum router for everything newer.
//! - [`tls`]: HTTPS/WSS (and optionally the control port) with rustls; the
//!   certificate, its reloads, and the plain-or-TLS connection type.
//! - [`admin`]: the admin web UI on its own listener.
//! - [`api`]: the HTTP API (`/api`, `/metrics`) on the subscriber port.
//! - [`store`]: the SQLite database — persistence of the caches, accounts.
//! - [`settings`]: channel rules and settings changed at run time.
//! - [`server`]: binding, accept loops, housekeeping, signals, shutdown.
//! - [`app`]: the process around the server: runtime, tray icon (cargo
//!   feature `tray`, module `tray`), restart after an update.
//! - [`update`]: self-update from a signed release feed.
//! - [`logging`]: standard error and the daily log files.

pub mod admin;
pub mod api;
pub mod app;
pub mod assets;
pub mod cluster;
pub mod config;
pub mod control;
pub mod engine;
pub mod hub;
pub mod logging;
pub mod server;
pub mod settings;
pub mod store;
pub mod subscriber;
pub mod template;
pub mod tls;
#[cfg(feature = "tray")]
pub mod tray;
pub mod update;

pub use config::Config;
pub use server::Server;
