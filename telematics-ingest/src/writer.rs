//! Commits batches, then acknowledges their messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleet_bus::{Bus, Event};
use fleet_storage::Store;
use rumqttc::AsyncClient;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::batcher::Batch;

/// Batches decoded ahead of the writer: one being committed, the next one or two ready, so
/// decoding overlaps the commit. When full, the batcher waits.
pub(crate) const BATCH_QUEUE: usize = 2;
/// Retry delays after a failed commit grow from the first to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_CAP: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    mut rx: mpsc::Receiver<Batch>,
    store: Store,
    bus: Bus,
    client: AsyncClient,
    in_hand: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    while let Some(batch) = rx.recv().await {
        let started = Instant::now();
        let mut retry = RETRY_FIRST;
        let outcome = loop {
            match store.telemetry().commit(&batch.samples, &batch.dead).await {
                Ok(outcome) => break outcome,
                Err(e) => {
                    metrics::counter!("fleet_ingest_commit_errors_total").increment(1);
                    tracing::error!(error = %e, batch.messages = batch.acks.len(), retry_in_ms = retry.as_millis() as u64, "commit failed; messages stay unacked");
                    if shutdown.is_cancelled() {
                        // Not acked: the broker redelivers after the restart.
                        return;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(RETRY_CAP);
                }
            }
        };
        metrics::histogram!("fleet_ingest_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("fleet_ingest_samples_stored_total").increment(outcome.inserted);
        metrics::counter!("fleet_ingest_samples_duplicate_total").increment(outcome.duplicates);
        for d in &batch.dead {
            metrics::counter!("fleet_ingest_dead_letters_total", "reason" => d.reason.as_str()).increment(1);
        }
        for p in &batch.acks {
            if let Err(e) = client.ack(p).await {
                tracing::warn!(error = %e, "cannot queue an ack; the broker will redeliver");
            }
        }
        let left = in_hand.fetch_sub(batch.acks.len() as u64, Ordering::Relaxed) - batch.acks.len() as u64;
        metrics::gauge!("fleet_ingest_messages_in_hand").set(left as f64);
        metrics::counter!("fleet_ingest_messages_committed_total").increment(batch.acks.len() as u64);
        if !batch.samples.is_empty() {
            bus.publish(Event::SamplesCommitted(Arc::from(batch.samples)));
        }
    }
}
