//! The in-process intake: how a TCP gateway hands frames to ingest without the broker.
//!
//! It is an ingest pipeline of its own — batcher, writer and state writer, the same code as
//! behind a broker session — fed by [`Submitter`]s instead of a broker connection. A frame
//! goes in as the message a vehicle would have published on its GB/T 32960 topic, so it is
//! decoded, deduplicated, dead-lettered and merged into the state exactly as one that came
//! over MQTT. Its receipt is a completion the writer fires once the batch is committed; only
//! then does the gateway answer the terminal. It runs whether or not the broker connection
//! is up, and in a cluster whatever sessions this instance holds.
//!
//! Back-pressure: at most a window of deliveries (four batches, as for a broker connection)
//! is in hand at once; a submitter waits for a place, and its connection stops reading
//! meanwhile. Deliveries count in the process's messages in hand like the broker's.

use std::sync::Arc;

use fleet_bus::Bus;
use fleet_domain::{DeadLetter, Sample};
use fleet_storage::Store;
use rumqttc::{Publish, QoS};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::delivery::Settled;
use crate::delivery::{Completion, Content, Delivery, Receipt};
use crate::in_hand::InHand;
use crate::{Config, IngestError, batcher, clock, registry, state_writer, writer};

/// The intake is shutting down or gone: nothing more is taken (what was not answered is sent
/// again by the terminal).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the ingest intake is closed")]
pub struct IntakeClosed;

/// The intake's pipeline, to run as a service.
pub struct Intake {
    cfg: Config,
    store: Store,
    bus: Bus,
    rx: mpsc::UnboundedReceiver<Delivery>,
    in_hand: InHand,
}

/// Hands deliveries to the intake; cloned by every gateway connection.
#[derive(Clone)]
pub struct Submitter {
    tx: mpsc::UnboundedSender<Delivery>,
    places: Arc<Semaphore>,
    in_hand: InHand,
}

impl Intake {
    /// An intake batching as `cfg` says (its broker settings are not used), and the submitter
    /// that feeds it.
    pub fn new(cfg: Config, store: Store, bus: Bus) -> (Self, Submitter) {
        // Unbounded: what it holds is bounded by the window's places, taken before sending.
        let (tx, rx) = mpsc::unbounded_channel();
        let in_hand = InHand::new(bus.ingest_in_hand());
        let window = 4 * cfg.max_batch.max(1);
        let submitter = Submitter { tx, places: Arc::new(Semaphore::new(window)), in_hand: in_hand.clone() };
        (Self { cfg, store, bus, rx, in_hand }, submitter)
    }

    /// Runs until `shutdown`: then what was submitted before is committed and completed,
    /// and later submissions fail.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), IngestError> {
        let registry = registry::Registry::load(self.store.clone()).await?;
        let (batch_tx, batch_rx) = mpsc::channel(writer::BATCH_QUEUE);
        // No broker connection: every receipt here is a completion, and this stays empty.
        let (ack_tx, _acks) = mpsc::unbounded_channel();
        let tasks = TaskTracker::new();
        tasks.spawn(batcher::run(
            self.rx,
            batch_tx,
            registry,
            self.cfg.max_batch,
            self.cfg.max_batch_delay,
            clock::ClockCheck::new(self.cfg.max_clock_ahead),
            shutdown.clone(),
        ));
        let states = state_writer::SharedStates::default();
        let writer_done = CancellationToken::new();
        let state_writer = tokio::spawn(state_writer::run(states.clone(), self.store.clone(), writer_done.clone()));
        let (store, bus, in_hand) = (self.store.clone(), self.bus.clone(), self.in_hand.clone());
        writer::run(batch_rx, store, bus, ack_tx, in_hand, states, writer::AckOrder::Committed, shutdown).await;
        writer_done.cancel();
        let _ = state_writer.await;
        tasks.close();
        tasks.wait().await;
        self.in_hand.release();
        Ok(())
    }
}

impl Submitter {
    /// Hands over a GB/T 32960 frame of the vehicle `vin`, decoded as if the vehicle had
    /// published it on its topic. Waits for a place in the window; the receiver answers once
    /// the frame is durable (as samples or as a dead letter), or fails if it never will be.
    pub async fn gbt32960_frame(&self, vin: &str, frame: Vec<u8>) -> Result<oneshot::Receiver<Settled>, IntakeClosed> {
        let topic = format!("fleet/v1/vehicles/{vin}/gbt32960");
        self.submit(Content::Publish(Publish::new(topic, QoS::AtLeastOnce, frame))).await
    }

    /// Hands over samples a gateway decoded itself for a registered vehicle, and the dead
    /// letter of what it refused of the same message (both durable when the receiver answers).
    pub async fn samples(
        &self,
        samples: Vec<Sample>,
        dead: Option<DeadLetter>,
    ) -> Result<oneshot::Receiver<Settled>, IntakeClosed> {
        self.submit(Content::Decoded { samples, dead }).await
    }

    /// Stores input rejected before it could become a message.
    pub async fn dead_letter(&self, dead: DeadLetter) -> Result<oneshot::Receiver<Settled>, IntakeClosed> {
        self.submit(Content::Rejected(dead)).await
    }

    async fn submit(&self, content: Content) -> Result<oneshot::Receiver<Settled>, IntakeClosed> {
        let place = self.places.clone().acquire_owned().await.map_err(|_| IntakeClosed)?;
        let (done, settled) = oneshot::channel();
        let n = self.in_hand.received();
        metrics::gauge!("fleet_ingest_messages_in_hand").set(n as f64);
        let delivery = Delivery { content, receipt: Receipt::Completion(Completion::new(done, place)) };
        if self.tx.send(delivery).is_err() {
            self.in_hand.committed(1);
            return Err(IntakeClosed);
        }
        Ok(settled)
    }
}
