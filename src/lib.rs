//! meteord: a realtime HTTP push server, compatible with meteord 1.06.
//!
//! # Layout
//!
//! A message's trip is short: a publisher's line on the control port
//! ([`control`]) becomes [`hub::Hub::publish`], which gives it the next id,
//! caches it in its channel and renders it once per subscriber framing; the
//! bytes land in each subscriber's outbox and the subscriber's task
//! ([`subscriber::writer`]) writes them to its socket.
//!
//! - [`config`]: the legacy config file and command line → one typed [`config::Config`].
//! - [`template`]: the `~placeholder~` templates of the legacy protocol.
//! - [`hub`]: channels, message caches, ids, subscribers, stats.
//! - [`control`]: the publisher line protocol over TCP, and UDP.
//! - [`subscriber`]: the subscriber port — legacy `/push`, static files, and
//!   an axum router for everything newer.
//! - [`admin`]: the admin web UI on its own listener.
//! - [`api`]: the HTTP API (`/api`, `/metrics`) on the subscriber port.
//! - [`store`]: the SQLite database — persistence of the caches, accounts.
//! - [`server`]: binding, accept loops, housekeeping, signals, shutdown.

pub mod admin;
pub mod api;
pub mod assets;
pub mod config;
pub mod control;
pub mod hub;
pub mod logging;
pub mod server;
pub mod settings;
pub mod store;
pub mod subscriber;
pub mod template;

pub use config::Config;
pub use server::Server;
