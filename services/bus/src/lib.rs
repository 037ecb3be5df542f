//! Bounded in-process events between the services: ingest announces committed telemetry,
//! dispatch announces order changes, and the live feed listens. Built on a broadcast channel:
//! a slow listener loses the oldest events (`Lagged`) and must resynchronise from storage; a
//! sender never waits.

use std::sync::Arc;

use fleet_domain::{Order, Sample, Vehicle};
use tokio::sync::broadcast;

/// Events kept for the slowest listener. When it falls further behind, it receives
/// `RecvError::Lagged(n)` and must resynchronise from storage (a fresh snapshot).
pub const BUS_CAPACITY: usize = 1024;

/// Something that happened in one service that others may care about.
#[derive(Debug, Clone)]
pub enum Event {
    /// Samples just committed by ingest (in arrival order; older samples included, listeners
    /// compare times themselves).
    SamplesCommitted(Arc<[Sample]>),
    /// An order changed status (or car): its state after the change.
    OrderChanged(Arc<Order>),
    /// A vehicle was registered or its registry record changed.
    VehicleChanged(Arc<Vehicle>),
}

/// The event bus: clone freely.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    pub fn new() -> Self {
        Self { tx: broadcast::channel(BUS_CAPACITY).0 }
    }

    /// Publishes an event; with no listener it is dropped (nobody needed it).
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
