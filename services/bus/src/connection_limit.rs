//! A cap on the connections one listener holds open at once, shared by every TCP listener
//! of the process (the HTTP server, ingest's GB/T 32960 gateway), with the metrics
//! `fleet_connections_open` and `fleet_connections_refused_total` labelled by listener.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// At most this many connections of one listener are open at once. Each permit travels with
/// its connection, through a protocol upgrade (a WebSocket) too, and is given back when the
/// connection is closed.
#[derive(Clone)]
pub struct ConnectionLimit {
    permits: Arc<Semaphore>,
    /// The `listener` label of the metrics.
    listener: &'static str,
}

impl ConnectionLimit {
    pub fn new(listener: &'static str, max: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))), listener }
    }

    /// A place for one more connection, or None at the cap (counted in
    /// `fleet_connections_refused_total`; the caller closes the connection).
    pub fn admit(&self) -> Option<Admission> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!("fleet_connections_open", "listener" => self.listener).increment(1.0);
                Some(Admission { _permit: permit, listener: self.listener })
            }
            Err(_) => {
                metrics::counter!("fleet_connections_refused_total", "listener" => self.listener).increment(1);
                None
            }
        }
    }
}

/// One connection's place under the cap, held until the connection is dropped.
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    listener: &'static str,
}

impl Drop for Admission {
    fn drop(&mut self) {
        metrics::gauge!("fleet_connections_open", "listener" => self.listener).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_refuses_past_its_size_and_frees_a_place_on_drop() {
        let limit = ConnectionLimit::new("test", 2);
        let a = limit.admit().unwrap();
        let _b = limit.admit().unwrap();
        assert!(limit.admit().is_none());
        drop(a);
        assert!(limit.admit().is_some());
    }
}
