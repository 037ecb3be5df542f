//! Commits batches, then acknowledges their messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_bus::{Bus, Event};
use fleet_storage::{Backend, BatchOutcome, Store};
use futures_util::StreamExt;
use futures_util::stream::{FuturesOrdered, FuturesUnordered};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::batcher::Batch;
use crate::delivery::Receipt;
use crate::in_hand::InHand;
use crate::mqtt::MqttReceipt;
use crate::state_writer::{self, SharedStates};

/// Batches decoded ahead of the writer, so decoding overlaps the commits. While it is full
/// (the writer is busy), the batcher goes on filling the batch in the making, up to the
/// batch size; then it waits and messages queue up in front of it. One: a free place means
/// the writer has taken every batch handed over.
pub(crate) const BATCH_QUEUE: usize = 1;
/// Retry delays after a failed commit grow from the first to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(5);

/// Batches committed at once. PostgreSQL runs them side by side on separate connections;
/// SQLite has a single writer, where a second commit would only wait for the lock.
fn parallel_commits(store: &Store) -> usize {
    match store.backend() {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    }
}

/// In what order committed batches are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckOrder {
    /// In the order the batches were received: MQTT wants PUBACKs in PUBLISH order, and
    /// rumqttd insists.
    Received,
    /// Each as soon as its commit is in: a gateway connection orders its own answers, and a
    /// batch that commits quickly need not wait for a slower one beside it (on PostgreSQL
    /// two commits run at once, and one that meets a checkpoint can take ten times the other).
    Committed,
}

/// The commits in flight, finished in the [`AckOrder`] asked for.
enum InFlight<F: Future> {
    Received(FuturesOrdered<F>),
    Committed(FuturesUnordered<F>),
}

impl<F: Future> InFlight<F> {
    fn new(order: AckOrder) -> Self {
        match order {
            AckOrder::Received => Self::Received(FuturesOrdered::new()),
            AckOrder::Committed => Self::Committed(FuturesUnordered::new()),
        }
    }

    fn push(&mut self, commit: F) {
        match self {
            Self::Received(f) => f.push_back(commit),
            Self::Committed(f) => f.push(commit),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Received(f) => f.len(),
            Self::Committed(f) => f.len(),
        }
    }

    async fn next(&mut self) -> Option<F::Output> {
        match self {
            Self::Received(f) => f.next().await,
            Self::Committed(f) => f.next().await,
        }
    }
}

/// Commits batches (several at once where the database allows) and acknowledges them in
/// `order`. Reordered commits are harmless: duplicates are skipped and the state never moves
/// back.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    mut rx: mpsc::Receiver<Batch>,
    store: Store,
    bus: Bus,
    acks: mpsc::UnboundedSender<Vec<MqttReceipt>>,
    in_hand: InHand,
    states: SharedStates,
    order: AckOrder,
    shutdown: CancellationToken,
) {
    let parallel = parallel_commits(&store);
    let mut in_flight = InFlight::new(order);
    let mut open = true;
    loop {
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if in_flight.len() > 0 => {
                // None: shutting down while a commit was failing. Later batches may have
                // committed, but acking them before this one would break the order: none is
                // acked, and the broker redelivers them all (stored once).
                let Some((batch, outcome)) = done else { return };
                finish(batch, outcome, &bus, &acks, &in_hand, &states);
            }
            next = rx.recv(), if open && in_flight.len() < parallel => match next {
                Some(batch) => in_flight.push(commit(store.clone(), batch, shutdown.clone())),
                None => open = false,
            },
            else => break,
        }
    }
}

/// Commits one batch, retrying with capped backoff; None if shutdown comes first.
async fn commit(store: Store, batch: Batch, shutdown: CancellationToken) -> Option<(Batch, BatchOutcome)> {
    let started = Instant::now();
    let mut retry = RETRY_FIRST;
    let mut first = true;
    loop {
        // A failed attempt may have committed after all (its reply lost): the next one must
        // not store the batch's dead letters twice.
        let attempt = if first {
            store.telemetry().commit_samples(&batch.samples, &batch.dead).await
        } else {
            store.telemetry().recommit_samples(&batch.samples, &batch.dead).await
        };
        first = false;
        match attempt {
            Ok(outcome) => {
                metrics::histogram!("fleet_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
                return Some((batch, outcome));
            }
            Err(e) => {
                metrics::counter!("fleet_ingest_commit_errors_total").increment(1);
                tracing::error!(error = %e, batch.messages = batch.acks.len(), retry_in_ms = retry.as_millis() as u64, "commit failed; messages stay unacked");
                tokio::select! {
                    // Not acked: the broker redelivers after the restart.
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(RETRY_CAP);
            }
        }
    }
}

/// After the commit: hand the samples' state to the state writer, count, acknowledge every
/// message of the batch (one write for the broker's, a completion for each gateway's),
/// announce the samples.
fn finish(
    batch: Batch,
    outcome: BatchOutcome,
    bus: &Bus,
    acks: &mpsc::UnboundedSender<Vec<MqttReceipt>>,
    in_hand: &InHand,
    states: &SharedStates,
) {
    // Before the messages leave the hand: once none is in hand, every committed sample's
    // state is in the backlog or written.
    state_writer::absorb(states, &batch.samples);
    metrics::counter!("fleet_ingest_samples_stored_total").increment(outcome.inserted);
    metrics::counter!("fleet_ingest_samples_duplicate_total").increment(outcome.duplicates);
    for d in &batch.dead {
        metrics::counter!("fleet_ingest_dead_letters_total", "reason" => d.reason.as_str()).increment(1);
    }
    // Out of hand before the acks are handed over: the connection, woken by them, must see
    // the room they made (it stops reading while too many are in hand).
    let n = batch.acks.len() as u64;
    let left = in_hand.committed(n);
    metrics::gauge!("fleet_ingest_messages_in_hand").set(left as f64);
    metrics::counter!("fleet_ingest_messages_committed_total").increment(n);
    // MQTT acks go to the broker connection, in one write; a gateway's completions are
    // fired here, each waking its connection to answer.
    let mut mqtt = Vec::with_capacity(batch.acks.len());
    for receipt in batch.acks {
        match receipt {
            Receipt::Mqtt(r) => mqtt.push(r),
            Receipt::Completion(c) => c.fire(),
        }
    }
    if !mqtt.is_empty() && acks.send(mqtt).is_err() {
        tracing::warn!("the broker connection is gone; the broker will deliver these messages again");
    }
    if !batch.samples.is_empty() {
        bus.publish(Event::SamplesCommitted(Arc::from(batch.samples)));
    }
}
