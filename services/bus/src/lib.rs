//! Bounded in-process events between the services: ingest announces committed telemetry,
//! dispatch announces order changes, and the live feed listens. Built on a broadcast channel:
//! a slow listener loses the oldest events (`Lagged`) and must resynchronise from storage; a
//! sender never waits.
//!
//! When several fleetd instances share one database, a bus made with [`Bus::with_outbox`]
//! also hands every event published here to an outbox, which fleetd relays to the other
//! instances ([`wire`] is the format); what they relay back is delivered with
//! [`Bus::deliver`], to local listeners only, so nothing travels twice.
//!
//! Beside the events, the process-wide plumbing every service shares: ingest's messages in
//! hand ([`Bus::ingest_in_hand`]) and the cap on a TCP listener's open connections
//! ([`ConnectionLimit`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fleet_domain::{Order, Sample, Vehicle};
use tokio::sync::{broadcast, mpsc};

mod connection_limit;
pub mod wire;

pub use connection_limit::{Admission, ConnectionLimit};

/// Events kept for the slowest listener. When it falls further behind, it receives
/// `RecvError::Lagged(n)` and must resynchronise from storage (a fresh snapshot).
pub const BUS_CAPACITY: usize = 1024;

/// Events waiting to be relayed to other instances. When the relay falls this far behind,
/// further events are not relayed (counted in [`Bus::outbox_dropped`]) and the relay tells
/// the other instances to resynchronise from storage.
pub const OUTBOX_CAPACITY: usize = 4096;

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
    /// Events from other instances may have been lost (the relay fell behind or its
    /// database connection dropped): listeners reload what they keep from storage.
    Resync,
    /// Login tokens were revoked: whatever still runs on them (live-feed connections) stops.
    TokensRevoked(Arc<Revocation>),
}

/// Which of a user's login tokens were revoked, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    pub user_id: i64,
    /// The SHA-256 (hex) of the one token revoked; `None`: all the user's tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// With `token_hash` `None`: the one token kept (the session that changed the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
    pub reason: RevokeReason,
}

/// Why tokens were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    LoggedOut,
    PasswordChanged,
    /// The account was retired or its access changed.
    AccountChanged,
}

impl Revocation {
    /// Whether the token with this hash, of this user, is among those revoked.
    pub fn covers(&self, user_id: i64, token_hash: &str) -> bool {
        self.user_id == user_id
            && match &self.token_hash {
                Some(one) => one == token_hash,
                None => self.except.as_deref() != Some(token_hash),
            }
    }
}

/// The event bus: clone freely.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
    outbox: Option<mpsc::Sender<Event>>,
    dropped: Arc<AtomicU64>,
    in_hand: Arc<AtomicU64>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// A bus for one instance alone.
    pub fn new() -> Self {
        Self { tx: broadcast::channel(BUS_CAPACITY).0, outbox: None, dropped: Arc::default(), in_hand: Arc::default() }
    }

    /// A bus whose events also go to other instances: the receiver yields every event
    /// published on this bus (not those delivered from elsewhere), for the relay to forward.
    pub fn with_outbox() -> (Self, mpsc::Receiver<Event>) {
        let (out_tx, out_rx) = mpsc::channel(OUTBOX_CAPACITY);
        (
            Self {
                tx: broadcast::channel(BUS_CAPACITY).0,
                outbox: Some(out_tx),
                dropped: Arc::default(),
                in_hand: Arc::default(),
            },
            out_rx,
        )
    }

    /// Publishes an event from this instance; with no listener it is dropped (nobody needed
    /// it). Never waits: a full outbox drops the event for other instances and counts it.
    pub fn publish(&self, event: Event) {
        if let Some(outbox) = &self.outbox
            && outbox.try_send(event.clone()).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.tx.send(event);
    }

    /// Delivers an event that another instance published, to this instance's listeners only.
    pub fn deliver(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Telemetry messages this instance's ingest has received and not yet committed: ingest
    /// keeps the count, and background work (trip derivation) gives way while it is high, so
    /// that a burst is made durable first. Local to the instance, like the CPU it shares.
    pub fn ingest_in_hand(&self) -> Arc<AtomicU64> {
        self.in_hand.clone()
    }

    /// Events not relayed to other instances because the outbox was full, since start.
    pub fn outbox_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn published_events_reach_the_outbox_and_delivered_ones_do_not() {
        let (bus, mut outbox) = Bus::with_outbox();
        let mut local = bus.subscribe();
        bus.publish(Event::Resync);
        bus.deliver(Event::Resync);
        assert!(matches!(local.recv().await, Ok(Event::Resync)));
        assert!(matches!(local.recv().await, Ok(Event::Resync)));
        assert!(matches!(outbox.try_recv(), Ok(Event::Resync)));
        assert!(outbox.try_recv().is_err(), "a delivered event must not be relayed again");
    }

    #[test]
    fn a_revocation_covers_its_token_or_all_but_the_kept_one() {
        let one =
            Revocation { user_id: 7, token_hash: Some("a".into()), except: None, reason: RevokeReason::LoggedOut };
        assert!(one.covers(7, "a") && !one.covers(7, "b") && !one.covers(8, "a"));
        let all_but = Revocation {
            user_id: 7,
            token_hash: None,
            except: Some("a".into()),
            reason: RevokeReason::PasswordChanged,
        };
        assert!(!all_but.covers(7, "a") && all_but.covers(7, "b") && !all_but.covers(8, "b"));
    }

    #[test]
    fn a_full_outbox_drops_and_counts_without_waiting() {
        let (bus, _outbox) = Bus::with_outbox();
        for _ in 0..OUTBOX_CAPACITY + 3 {
            bus.publish(Event::Resync);
        }
        assert_eq!(bus.outbox_dropped(), 3);
    }
}
