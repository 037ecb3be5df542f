//! The GB/T 32960.3 gateway: vehicle terminals (and forwarding platforms) connect over TCP
//! and send frames of either edition; reports are handed to ingest in process
//! ([`crate::intake`]) and answered only once they are durable.
//!
//! Each connection is a task of its own (`connection`), accepted, capped and tracked by the
//! shared listener ([`crate::gateway`]).

mod connection;

use std::net::SocketAddr;
use std::sync::Arc;

use fleet_storage::Store;
use tokio_util::sync::CancellationToken;

use crate::gateway::Listener;
pub use crate::gateway::{BindError, GatewayConfig};
use crate::intake::Submitter;

/// A bound GB/T 32960 gateway, ready to run.
pub struct Gbt32960Gateway {
    listener: Listener,
    store: Store,
    intake: Submitter,
}

impl Gbt32960Gateway {
    /// Binds the listener (start-up binds everything before it spawns anything). With `tls`,
    /// terminals must connect over TLS.
    pub async fn bind(
        addr: SocketAddr,
        cfg: GatewayConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
        store: Store,
        intake: Submitter,
    ) -> Result<Self, BindError> {
        let listener = Listener::bind("gbt32960", addr, cfg, tls).await?;
        Ok(Self { listener, store, intake })
    }

    /// The bound address (the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown`, then lets each finish answering what it has in
    /// hand and waits for them.
    pub async fn run(self, shutdown: CancellationToken) {
        let Self { listener, store, intake } = self;
        let cfg = listener.config();
        listener
            .run(shutdown, move |stream, peer, token| {
                let protocol = connection::Gbt32960::new(peer, store.clone(), intake.clone());
                crate::gateway::serve(stream, peer, cfg, protocol, token)
            })
            .await;
    }
}
