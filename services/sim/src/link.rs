//! One MQTT connection shared by up to [`CARS_PER_LINK`] simulated cars (or one car's own,
//! when each car logs in as itself): a rumqttc client the
//! tick loop publishes through, and exactly one task polling its event loop, which only
//! records what happens (connected, acknowledged, failed) and reconnects with a capped
//! backoff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SimConfig;
use super::uplink::{Offer, Outbox};

/// Cars sharing one connection.
pub const CARS_PER_LINK: usize = 250;
/// Requests (publishes) a connection queues before `offer` answers [`Offer::Full`]; the car
/// then keeps its samples for a later tick.
const REQUEST_QUEUE: usize = 4 * CARS_PER_LINK;
/// Unacknowledged QoS 1 publishes in flight per connection.
const INFLIGHT: u16 = 200;
/// Largest MQTT packet either way: room for a 200 KiB JSON batch.
const MAX_PACKET_BYTES: usize = 256 * 1024;
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// First and largest wait before reconnecting after a broker error.
const RECONNECT_MIN: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// What the polling task tells the tick loop and the final count.
#[derive(Debug, Default)]
pub struct LinkStatus {
    /// Connected and acknowledged by the broker.
    up: AtomicBool,
    /// Counts connections (ConnAcks): a car's GB/T session belongs to one.
    epoch: AtomicU64,
    /// Publishes handed to the client.
    queued: AtomicU64,
    /// Publishes the broker acknowledged (PUBACK).
    acked: AtomicU64,
    /// Failed polls: refused or lost connections.
    errors: AtomicU64,
    /// The polling task has ended: nothing more will be sent.
    closed: AtomicBool,
}

impl LinkStatus {
    /// The current connection's epoch while it is up.
    pub fn epoch(&self) -> Option<u64> {
        self.up.load(Ordering::Acquire).then(|| self.epoch.load(Ordering::Acquire))
    }

    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Publishes queued while up but not acknowledged yet.
    pub fn unacked(&self) -> u64 {
        self.queued.load(Ordering::Relaxed).saturating_sub(self.acked())
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }
}

/// A connection to the broker and its polling task.
pub struct Link {
    client: AsyncClient,
    status: Arc<LinkStatus>,
}

impl Link {
    /// Creates the client for connection number `index` and spawns its polling task on
    /// `tracker`; the task stops at `stop` or once the client has disconnected.
    /// `login` is the connection's user and password, if any.
    pub fn open(
        cfg: &SimConfig,
        index: usize,
        login: Option<(String, String)>,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let prefix = if cfg.client_id_prefix.is_empty() { "fleet-sim" } else { &cfg.client_id_prefix };
        let client_id = format!("{prefix}-{index}");
        let mut options = MqttOptions::new(client_id.clone(), cfg.broker_host.clone(), cfg.broker_port);
        options
            .set_keep_alive(KEEP_ALIVE)
            // A persistent session: QoS 1 publishes in flight when the connection drops are
            // sent again after reconnecting (when the broker kept the session).
            .set_clean_session(false)
            .set_inflight(INFLIGHT)
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        if let Some(tls) = &cfg.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::clone(tls))));
        }
        let (client, eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
        let status = Arc::new(LinkStatus::default());
        tracker.spawn(poll(eventloop, Arc::clone(&status), stop, client_id));
        Self { client, status }
    }

    pub fn status(&self) -> &LinkStatus {
        &self.status
    }

    /// The outbox cars on this connection publish through.
    pub fn outbox(&self) -> LinkOutbox<'_> {
        LinkOutbox { link: self }
    }

    /// Asks the client to disconnect once everything queued before is sent.
    pub fn disconnect(&self) {
        // Fails only when the queue is full or the task is gone; either way the stop token
        // ends the task after the grace period.
        let _ = self.client.try_disconnect();
    }
}

/// Publishes into a [`Link`]'s request queue without waiting.
pub struct LinkOutbox<'a> {
    link: &'a Link,
}

impl Outbox for LinkOutbox<'_> {
    fn offer(&mut self, topic: &str, payload: Vec<u8>) -> Offer {
        let status = &self.link.status;
        if status.closed.load(Ordering::Acquire) {
            return Offer::Closed;
        }
        match self.link.client.try_publish(topic, QoS::AtLeastOnce, false, payload) {
            Ok(()) => {
                status.queued.fetch_add(1, Ordering::Relaxed);
                Offer::Taken
            }
            Err(_) => Offer::Full,
        }
    }
}

/// The connection's only event-loop poller.
async fn poll(mut eventloop: EventLoop, status: Arc<LinkStatus>, stop: CancellationToken, client_id: String) {
    let mut backoff = RECONNECT_MIN;
    let mut failing = false;
    loop {
        let polled = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            polled = eventloop.poll() => polled,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                status.epoch.fetch_add(1, Ordering::AcqRel);
                status.up.store(true, Ordering::Release);
                if failing {
                    tracing::info!(mqtt.client_id = %client_id, "simulator reconnected to the broker");
                }
                failing = false;
                backoff = RECONNECT_MIN;
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                status.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                status.up.store(false, Ordering::Release);
                status.errors.fetch_add(1, Ordering::Relaxed);
                if failing {
                    tracing::debug!(mqtt.client_id = %client_id, error = %e, retry_ms = backoff.as_millis() as u64, "simulator still cannot reach the broker");
                } else {
                    tracing::warn!(mqtt.client_id = %client_id, error = %e, "simulator lost its broker connection; reconnecting");
                }
                failing = true;
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(RECONNECT_MAX);
            }
        }
    }
    status.up.store(false, Ordering::Release);
    status.closed.store(true, Ordering::Release);
}
