//! The JT/T 808 gateway: Beidou vehicle terminals (2013 and 2019 headers) connect over TCP,
//! register and authenticate by their phone number, and send location reports, which are
//! decoded here and handed to ingest in process ([`crate::intake`]); each is answered only
//! once it is durable.
//!
//! A terminal is known by the `terminal_phone` of a registered vehicle. The authentication
//! code a registration gives is kept with the vehicle, so any instance (and a restarted one)
//! accepts it: a gateway holds nothing beyond its connections ([`crate::gateway`]).

mod connection;

use std::net::SocketAddr;

use fleet_storage::Store;
use tokio_util::sync::CancellationToken;

use crate::gateway::Listener;
pub use crate::gateway::{BindError, GatewayConfig};
use crate::intake::Submitter;

/// A bound JT/T 808 gateway, ready to run.
pub struct Jt808Gateway {
    listener: Listener,
    store: Store,
    intake: Submitter,
}

impl Jt808Gateway {
    /// Binds the listener (start-up binds everything before it spawns anything).
    pub async fn bind(
        addr: SocketAddr,
        cfg: GatewayConfig,
        store: Store,
        intake: Submitter,
    ) -> Result<Self, BindError> {
        let listener = Listener::bind("jt808", addr, cfg, None).await?;
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
                let protocol = connection::Jt808::new(peer, store.clone(), intake.clone());
                crate::gateway::serve(stream, peer, cfg, protocol, token)
            })
            .await;
    }
}
