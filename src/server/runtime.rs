//! Running a server on a tokio runtime of its own, in the calling thread,
//! and telling a UI beside it (the tray) once the listeners are bound.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use super::{handle_signals, Server};
use crate::config::{Config, LegacyArgs};
use crate::node::Node;

/// What a UI beside the server needs once the listeners are bound.
pub struct Ready {
    pub node: Arc<Node>,
    /// The servers' runtime, for work started from the UI.
    pub runtime: tokio::runtime::Handle,
    /// Where the admin UI listens, if it does.
    pub admin: Option<SocketAddr>,
}

/// Bind and serve on a new runtime in this thread until shutdown; `ready`
/// is called once the listeners are bound.
pub fn serve(
    config: Config,
    args: LegacyArgs,
    ready: impl FnOnce(Ready),
) -> anyhow::Result<Arc<Node>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let handle = runtime.handle().clone();
    runtime.block_on(async move {
        let server = Server::bind(config, args).await?;
        let node = server.node();
        tokio::spawn(handle_signals(node.clone())?);
        let updating = node.clone();
        tokio::spawn(async move {
            let node = updating;
            node.updates.background(&node.config, &node.shutdown).await
        });
        tokio::spawn(crate::update::confirm_after_trial(node.shutdown.clone()));
        ready(Ready {
            node: node.clone(),
            runtime: handle,
            admin: server.admin_addr(),
        });
        server.run().await?;
        Ok::<_, anyhow::Error>(node)
    })
}
