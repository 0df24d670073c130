//! Signals, as meteord reads them: HUP reloads, USR1 empties the channel
//! caches, USR2 drops the document cache, TERM and INT shut down.

use std::sync::Arc;

use tracing::info;

use crate::node::Node;

/// React to Unix signals: HUP reloads, USR1 empties the channel caches,
/// USR2 drops the document cache, TERM and INT shut down.
///
/// The handlers are installed before this returns (so a signal that comes
/// right after start-up is not lost to the default action); the returned
/// future then serves them.
#[cfg(unix)]
pub fn handle_signals(node: Arc<Node>) -> std::io::Result<impl std::future::Future<Output = ()>> {
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
                    if let Err(e) = node.reload() {
                        tracing::error!("reload failed, keeping the running configuration: {e:#}");
                    }
                }
                _ = usr1.recv() => {
                    info!("SIGUSR1: emptying all channel caches");
                    if let Err(e) = node.clear_caches().await {
                        tracing::error!("cannot empty the channel caches: {e}");
                    }
                }
                _ = usr2.recv() => {
                    info!("SIGUSR2: dropping the document cache");
                    node.drop_document_cache();
                }
                _ = term.recv() => { info!("SIGTERM"); node.shutdown.cancel(); return; }
                _ = int.recv() => { info!("SIGINT"); node.shutdown.cancel(); return; }
            }
        }
    })
}

/// On Windows, Ctrl-C (and a service stop, which arrives the same way)
/// shuts down.
#[cfg(windows)]
pub fn handle_signals(node: Arc<Node>) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
    Ok(async move {
        ctrl_c.recv().await;
        info!("Ctrl-C");
        node.shutdown.cancel();
    })
}
