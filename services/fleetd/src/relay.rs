//! Events between instances: what this instance publishes on its bus goes out as PostgreSQL
//! notifications, and what other instances publish comes in and is delivered to local
//! listeners (the live feed, trip derivation). So the live feed is complete on every
//! instance whichever instance ingested a sample or changed an order.
//!
//! Notifications are transient: when the listening connection drops, or this instance could
//! not send for a while, listeners are told to reload from storage (`Event::Resync`).

use std::time::Duration;

use fleet_bus::{Bus, Event, wire};
use fleet_storage::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::supervise::Services;

/// Most events folded into one round trip to the database.
const MAX_EVENTS_PER_SEND: usize = 256;
/// Longest wait between two attempts to reach the database.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A name for this process among the instances (it tells a listener its own notifications).
pub fn instance_id(client_id: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{client_id}-{}-{nanos:08x}", std::process::id())
}

/// Starts both directions as services; they stop with the app.
pub fn spawn(services: &Services, store: Store, bus: Bus, outbox: mpsc::Receiver<Event>, origin: String) {
    let shutdown = services.shutdown().child_token();
    services.spawn("relay (sending)", send(store.clone(), bus.clone(), outbox, origin.clone(), shutdown.clone()));
    services.spawn("relay (receiving)", receive(store, bus, origin, shutdown));
}

async fn send(store: Store, bus: Bus, mut outbox: mpsc::Receiver<Event>, origin: String, shutdown: CancellationToken) {
    let mut dropped_seen = 0;
    let mut events = Vec::with_capacity(MAX_EVENTS_PER_SEND);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            n = outbox.recv_many(&mut events, MAX_EVENTS_PER_SEND) => if n == 0 { return },
        }
        let mut payloads: Vec<String> =
            events.drain(..).flat_map(|e| wire::encode(&origin, &e, fleet_storage::MAX_EVENT_PAYLOAD)).collect();
        let dropped = bus.outbox_dropped();
        if dropped != dropped_seen {
            tracing::warn!(
                events.dropped = dropped - dropped_seen,
                "events were not relayed to the other instances; they reload from storage"
            );
            dropped_seen = dropped;
            payloads.push(wire::resync(&origin));
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match store.notify(&payloads).await {
                Ok(()) => {
                    metrics::counter!("fleet_relay_sent_total").increment(payloads.len() as u64);
                    break;
                }
                Err(e) => {
                    // Kept and retried: meanwhile the outbox fills, and what overflows it is
                    // covered by the resync sent once the database answers again.
                    tracing::warn!(error = %e, "cannot relay events to the other instances; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

async fn receive(store: Store, bus: Bus, origin: String, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = tokio::select! {
            () = shutdown.cancelled() => return,
            l = store.listen() => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for the other instances' events; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        backoff = Duration::from_millis(100);
        // Whatever was sent before this connection listened is not coming: reload.
        bus.deliver(Event::Resync);
        loop {
            let got = tokio::select! {
                () = shutdown.cancelled() => return,
                got = listener.recv() => got,
            };
            match got {
                Ok(Some(payload)) => match wire::decode(&payload) {
                    Ok((from, _)) if from == origin => {}
                    Ok((_, event)) => {
                        metrics::counter!("fleet_relay_received_total").increment(1);
                        bus.deliver(event);
                    }
                    Err(e) => {
                        metrics::counter!("fleet_relay_rejected_total").increment(1);
                        tracing::warn!(error = %e, "ignoring a notification that is not a bus event");
                    }
                },
                Ok(None) => {
                    tracing::warn!("lost the connection that listens for the other instances' events; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for the other instances' events failed; reconnecting");
                    break;
                }
            }
        }
    }
}
