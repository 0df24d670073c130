//! The admin web UI, on its own listener (127.0.0.1:4672 by default).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::server::Shared;

/// The admin routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { "meteord admin" }))
        .with_state(shared)
}

/// Serve the admin UI until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let shutdown = shared.shutdown.clone();
    let app = router(shared).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        tracing::error!("admin UI stopped: {e}");
    }
}
