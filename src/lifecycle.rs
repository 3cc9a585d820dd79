//! Shutdown and upgrade signals. SIGTERM first turns `/ready` to 503 so that load
//! balancers stop sending new requests, waits `server.shutdown_delay` while listeners
//! still accept, then hands over to pingora's graceful terminate: listeners close,
//! requests in flight finish within `server.grace_period`, and the process exits 0.
//! SIGQUIT is pingora's graceful upgrade (a new process takes the listening sockets
//! through the upgrade socket); SIGINT stops at once.

use crate::gateway::Gateway;
use async_trait::async_trait;
use pingora_core::server::{ShutdownSignal, ShutdownSignalWatch};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Default `server.shutdown_delay`.
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::from_secs(5);

/// Watches SIGTERM, SIGQUIT and SIGINT for pingora's main loop.
pub struct Signals {
    pub gw: Arc<Gateway>,
    pub delay: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = quit.recv() => {
                self.gw.close_connections();
                tracing::info!("SIGQUIT: graceful upgrade, handing the listeners to the new process");
                ShutdownSignal::GracefulUpgrade
            }
            _ = term.recv() => {
                self.gw.start_draining();
                tracing::info!(delay_ms = self.delay.as_millis() as u64, "SIGTERM: /ready answers 503; listeners close after the delay");
                tokio::select! {
                    _ = tokio::time::sleep(self.delay) => {}
                    _ = int.recv() => return ShutdownSignal::FastShutdown,
                }
                tracing::info!("closing listeners; requests in flight finish within the grace period");
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => ShutdownSignal::FastShutdown,
        }
    }
}
