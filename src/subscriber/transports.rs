//! The transports served through the HTTP router, registered in one place.
//!
//! Adding one is a file with its handler, its framing and its [`Routes`],
//! and a line in [`ROUTED`] (plus its name in `hub::Transport`, which
//! channel rules and stats use). The legacy `/push` modes are not here:
//! they are answered with raw bytes before any router (`push.rs`).

use std::sync::Arc;

use axum::Router;

use crate::hub::Transport;
use crate::node::Node;

/// One transport's place on the subscriber port.
pub struct Routes {
    pub transport: Transport,
    /// Requests whose path starts with this go to the router, never to
    /// static files.
    pub prefix: &'static str,
    pub router: fn() -> Router<Arc<Node>>,
    /// Pages of other origins may read it (as AllowOrigin says).
    pub cross_origin: bool,
}

/// Every transport the router serves.
pub const ROUTED: &[Routes] = &[super::sse::ROUTES, super::poll::ROUTES, super::ws::ROUTES];
