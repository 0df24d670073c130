//! meteord: a realtime HTTP push server, compatible with meteord 1.06.
//!
//! The crate is layered; each module imports only the layers below it
//! (ARCHITECTURE.md has the picture and a message's trip):
//!
//! | layer | modules |
//! |---|---|
//! | process | [`app`], `tray` (cargo feature `tray`), [`server`], [`service`] (Windows) |
//! | front ends | [`control`], [`subscriber`], [`api`], [`admin`] — never each other |
//! | node | [`node`]: the state handle, the publish door, listeners and HTTP helpers |
//! | services | [`store`], [`cluster`], [`tls`], [`update`], [`logging`], [`jwt`], [`outbound`] |
//! | hub | [`hub`]: channels, caches, ids, subscribers, rules |
//! | values | [`config`], [`template`], [`names`], [`assets`] |

pub mod admin;
pub mod api;
pub mod app;
pub mod assets;
pub mod cluster;
pub mod config;
pub mod control;
pub mod hub;
pub mod jwt;
pub mod logging;
pub mod names;
pub mod node;
pub mod outbound;
pub mod server;
pub mod service;
pub mod store;
pub mod subscriber;
pub mod template;
pub mod tls;
#[cfg(feature = "tray")]
pub mod tray;
pub mod update;

pub use config::Config;
pub use server::Server;
