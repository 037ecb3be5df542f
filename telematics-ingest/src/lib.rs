//! Telemetry ingest: subscribes to the vehicles' MQTT topics, decodes JSON and GB/T 32960.3
//! frames into samples, writes them durably in batches and acknowledges each message only
//! after its samples are committed (at-least-once end to end; storage dedupes on VIN and
//! time). Rejected input goes to the dead letters with its reason and never stops ingestion.
//!
//! Four tasks:
//! - the MQTT task owns the broker connection (fleetd's persistent session): it forwards
//!   publishes and writes the acks the writer hands it, a committed batch's in one write;
//! - the batcher decodes messages and gathers them into batches (by count or age);
//! - the writer commits a batch in one transaction, then acks its messages and announces the
//!   samples on the bus. A failed commit is retried; nothing is acked before it succeeds;
//! - the state writer merges the committed samples' state into the vehicles' current state
//!   a few times a second (`state_writer`).
//!
//! Batches go from the batcher to the writer over a bounded channel (`writer::BATCH_QUEUE`).
//! Messages (MQTT task to batcher) and acks (writer to MQTT task) go over unbounded channels
//! on purpose: the MQTT task must never wait on a full queue, or it would stop polling the
//! connection and so stop writing the acks that free the queue. What they hold is bounded all
//! the same, by the messages in hand (`in_hand`): at `mqtt::max_in_hand` the connection stops
//! reading from the broker, so neither queue grows past that window.
//!
//! Sites that run EMQX's GB/T 32960 and JT/T 808 gateways may have fleetd read what those
//! publish too (`emqx`, [`Config::emqx_gateways`]): more topics on the same connection,
//! decoded by topic in the batcher.
//!
//! Terminals that do not speak MQTT connect to the TCP gateways (`gbt32960_gateway`,
//! `jt808_gateway`, sharing `gateway`), which hand what they read to an [`intake::Intake`]:
//! the same batcher and writer, fed in process, each message settled by a completion instead
//! of an MQTT ack.

mod batcher;
mod clock;
pub mod decode;
mod delivery;
mod emqx;
pub mod gateway;
mod gbt32960_gateway;
mod in_hand;
pub mod intake;
mod jt808_gateway;
mod mqtt;
mod registry;
mod state_writer;
mod topic;
mod writer;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use fleet_bus::Bus;
use fleet_storage::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use emqx::{
    EMQX_GBT32960_INFO_FILTER, EMQX_GBT32960_REINFO_FILTER, EMQX_JT808_FILTER, EmqxGateways, EmqxGatewaysError,
    EmqxTopic,
};
pub use topic::{GBT32960_TOPIC_FILTER, JSON_TOPIC_FILTER, TopicKind, parse_topic};

/// Largest message accepted; larger ones go to the dead letters as `too_large`.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<fleet_domain::Secret>,
    /// The persistent session's client id: stable across restarts so that the broker keeps
    /// what vehicles publish while we are down.
    pub client_id: String,
    /// Prefix for the subscriptions, e.g. `$share/fleetd/` to split the stream between
    /// instances; empty for a plain subscription.
    pub subscription_prefix: String,
    /// Most messages in one committed batch.
    pub max_batch: usize,
    /// Longest a message waits for its batch to fill before the batch is committed anyway.
    pub max_batch_delay: Duration,
    /// A sample stamped further than this ahead of the receiving clock is stored flagged
    /// (`clock_ahead`) and never moves the vehicle's state.
    pub max_clock_ahead: Duration,
    /// TLS to the broker (`mqtts://`; the server name checked is `host`); `None`: plain MQTT.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The EMQX gateways whose topics are read besides fleetd's own; none by default.
    pub emqx_gateways: EmqxGateways,
}

impl Config {
    /// Most messages in a batch on PostgreSQL.
    pub const DEFAULT_MAX_BATCH: usize = 4000;
    /// Most messages in a batch on SQLite. A SQLite commit writes every page it changed to
    /// the write-ahead log in full, and a batch touches about one leaf of the (VIN, time) key
    /// per car in it, however few samples the car has in the batch: larger batches share
    /// those pages between more samples. `fleetd bench ingest` (1,000 cars, GB/T 32960):
    /// 0.36-0.43x the broker's rate with 4,000, 0.47x with 10,000, 0.49-0.52x with 16,000;
    /// fleetd's peak RSS in the burst 68-74 -> 121-131 MiB (four batches in hand).
    pub const DEFAULT_MAX_BATCH_SQLITE: usize = 16_000;
    pub const DEFAULT_MAX_BATCH_DELAY: Duration = Duration::from_millis(25);

    /// The default most messages in a batch for the database at hand.
    pub fn default_max_batch(sqlite: bool) -> usize {
        if sqlite { Self::DEFAULT_MAX_BATCH_SQLITE } else { Self::DEFAULT_MAX_BATCH }
    }

    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            username: None,
            password: None,
            client_id: client_id.into(),
            subscription_prefix: String::new(),
            max_batch: Self::DEFAULT_MAX_BATCH,
            max_batch_delay: Self::DEFAULT_MAX_BATCH_DELAY,
            max_clock_ahead: fleet_domain::MAX_CLOCK_AHEAD,
            tls: None,
            emqx_gateways: EmqxGateways::default(),
        }
    }
}

/// What can stop ingest for good (everything else is retried).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("storage: {0}")]
    Storage(#[from] fleet_storage::StorageError),
}

/// The ingest service.
pub struct Ingest {
    cfg: Config,
    store: Store,
    bus: Bus,
    connected: Arc<AtomicBool>,
}

impl Ingest {
    pub fn new(cfg: Config, store: Store, bus: Bus) -> Self {
        Self { cfg, store, bus, connected: Arc::new(AtomicBool::new(false)) }
    }

    /// Reports the connection on `flag` instead of a flag of its own (one health flag over
    /// successive runs of the same session).
    pub fn with_connected_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.connected = flag;
        self
    }

    /// True while the broker connection is up (for `/healthz`).
    pub fn connected(&self) -> Arc<AtomicBool> {
        self.connected.clone()
    }

    /// Runs until `shutdown` is cancelled. On shutdown it stops taking messages, commits and
    /// acks what is in hand, and returns; anything not committed stays unacknowledged and is
    /// redelivered by the broker after a restart.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), IngestError> {
        let registry = registry::Registry::load(self.store.clone()).await?;
        // The state a crash kept from being written, before anything new comes in.
        let caught_up = self.store.telemetry().catch_up_states().await?;
        if caught_up > 0 {
            tracing::info!(samples = caught_up, "vehicle states brought up to their stored samples");
        }
        // Unbounded on purpose: see `mqtt::run`. What it holds is bounded by the messages in
        // hand, at which the connection stops reading (four batches).
        let (msg_tx, msg_rx) = tokio::sync::mpsc::unbounded_channel();
        // Acks of committed batches, in commit order. Unbounded like the message queue, and
        // bounded by the same window: it holds acks only of messages in hand.
        let (ack_tx, ack_rx) = tokio::sync::mpsc::unbounded_channel();
        let in_hand = in_hand::InHand::new(self.bus.ingest_in_hand());
        let (batch_tx, batch_rx) = tokio::sync::mpsc::channel(writer::BATCH_QUEUE);

        let tasks = TaskTracker::new();
        // The connection stops forwarding first (no new messages); the batcher drains and
        // closes the batch channel; the writer commits what remains and hands its acks to
        // the connection, which writes them, disconnects and ends once the writer is gone.
        let stop_polling = CancellationToken::new();
        tasks.spawn(mqtt::run(mqtt::Link {
            cfg: self.cfg.clone(),
            deliveries: msg_tx,
            acks: ack_rx,
            in_hand: in_hand.clone(),
            connected: self.connected.clone(),
            stops: mqtt::Stops { intake: shutdown.clone(), polling: stop_polling.clone() },
        }));
        let clock = clock::ClockCheck::new(self.cfg.max_clock_ahead);
        tasks.spawn(batcher::run(
            msg_rx,
            batch_tx,
            registry,
            self.cfg.max_batch,
            self.cfg.max_batch_delay,
            clock,
            shutdown.clone(),
        ));
        let states = state_writer::SharedStates::default();
        let writer_done = CancellationToken::new();
        let state_writer = tokio::spawn(state_writer::run(states.clone(), self.store.clone(), writer_done.clone()));
        let writer = tokio::spawn(writer::run(
            batch_rx,
            self.store.clone(),
            self.bus.clone(),
            ack_tx,
            in_hand.clone(),
            states,
            writer::AckOrder::Received,
            shutdown.clone(),
        ));
        let _ = writer.await;
        // Every commit is in: the state writer writes the rest of the backlog and ends.
        writer_done.cancel();
        let _ = state_writer.await;
        // The writer's sender is dropped: the connection writes the last acks and ends. Only
        // if it is stuck (a broker that stopped reading) does this cut it short.
        tasks.close();
        if tokio::time::timeout(Duration::from_secs(2), tasks.wait()).await.is_err() {
            stop_polling.cancel();
            tasks.wait().await;
        }
        in_hand.release();
        Ok(())
    }
}
