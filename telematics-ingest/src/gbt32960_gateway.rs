//! The GB/T 32960.3 gateway: vehicle terminals (and forwarding platforms) connect over TCP
//! and send frames of either edition; reports are handed to ingest in process
//! ([`crate::intake`]) and answered only once they are durable.
//!
//! A gateway holds no state beyond its connections: several instances can sit behind a TCP
//! load balancer, and a killed one loses nothing (a terminal sends again what was not
//! answered; storage keeps a report once, by VIN and time). Each connection is a task of its
//! own (`connection`), tracked and stopped with the gateway.

mod connection;

use std::net::SocketAddr;
use std::time::Duration;

use fleet_storage::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::intake::Submitter;

/// How connections are kept.
#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    /// A connection that sends nothing for this long is closed.
    pub idle: Duration,
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
}

impl GatewayConfig {
    pub const DEFAULT_IDLE: Duration = Duration::from_secs(180);
    pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self { idle: Self::DEFAULT_IDLE, max_connections: Self::DEFAULT_MAX_CONNECTIONS }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[error("binding the GB/T 32960 gateway to {addr}: {source}")]
pub struct BindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// A bound GB/T 32960 gateway, ready to run.
pub struct Gbt32960Gateway {
    listener: TcpListener,
    cfg: GatewayConfig,
    store: Store,
    intake: Submitter,
}

impl Gbt32960Gateway {
    /// Binds the listener (start-up binds everything before it spawns anything).
    pub async fn bind(
        addr: SocketAddr,
        cfg: GatewayConfig,
        store: Store,
        intake: Submitter,
    ) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr).await.map_err(|source| BindError { addr, source })?;
        Ok(Self { listener, cfg, store, intake })
    }

    /// The bound address (the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Accepts connections until `shutdown`, then lets each finish answering what it has in
    /// hand and waits for them.
    pub async fn run(self, shutdown: CancellationToken) {
        let cap = fleet_bus::ConnectionLimit::new("gbt32960", self.cfg.max_connections);
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "gbt32960 gateway: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // At the cap the connection is dropped, which closes it.
            let Some(admission) = cap.admit() else { continue };
            let _ = stream.set_nodelay(true);
            let conn = connection::Connection::new(stream, peer, self.cfg, self.store.clone(), self.intake.clone());
            let token = shutdown.child_token();
            tasks.spawn(async move {
                let _admission = admission;
                conn.serve(token).await;
            });
        }
        tasks.close();
        tasks.wait().await;
    }
}
