//! Writes the vehicles' current state behind the samples.
//!
//! The writer commits a batch's samples and hands their state to a shared [`StateBacklog`]
//! (one row per vehicle); this task merges the backlog into the database every
//! [`STATE_WRITE_INTERVAL`]. At a high message rate that is one upsert per vehicle per
//! interval instead of one per vehicle per batch: in `fleetd bench ingest` on PostgreSQL
//! the upserts were about a third of the database's CPU. The state in the database trails the
//! samples by up to the interval plus a write; the live feed follows the committed samples
//! themselves and does not wait for it. What a crash takes of the backlog is restored at the
//! next start from the stored samples (`Telemetry::catch_up_states`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fleet_storage::{StateBacklog, Store};
use tokio_util::sync::CancellationToken;

/// How often the backlog is written: the most the stored state trails the samples, plus a
/// write.
pub(crate) const STATE_WRITE_INTERVAL: Duration = Duration::from_millis(250);
/// After failed writes the wait doubles up to this.
const RETRY_CAP: Duration = Duration::from_secs(5);

/// The backlog and what is being written of it, shared by the batch writer and this task.
#[derive(Default)]
pub(crate) struct States {
    backlog: StateBacklog,
    /// Vehicles in a write under way.
    writing: usize,
}

pub(crate) type SharedStates = Arc<Mutex<States>>;

fn lock(states: &SharedStates) -> MutexGuard<'_, States> {
    states.lock().unwrap_or_else(|e| e.into_inner())
}

impl States {
    /// Vehicles whose newest committed state is not in the database yet (for `/metrics`:
    /// zero once every committed sample's state is written).
    fn unwritten(&self) -> usize {
        self.backlog.len() + self.writing
    }

    fn report(&self) {
        metrics::gauge!("fleet_ingest_states_unwritten").set(self.unwritten() as f64);
    }
}

/// Adds a committed batch's samples to the backlog.
pub(crate) fn absorb(states: &SharedStates, samples: &[fleet_domain::Sample]) {
    if samples.is_empty() {
        return;
    }
    let mut s = lock(states);
    s.backlog.absorb(samples);
    s.report();
}

/// Writes the backlog every interval until `done` (the batch writer has finished), then
/// once more. A failed write goes back into the backlog for the next (after a growing wait,
/// as the database is likely down); a last write that fails is restored at the next start.
pub(crate) async fn run(states: SharedStates, store: Store, done: CancellationToken) {
    let mut wait = STATE_WRITE_INTERVAL;
    loop {
        let last = tokio::select! {
            () = done.cancelled() => true,
            () = tokio::time::sleep(wait) => false,
        };
        let taken = {
            let mut s = lock(&states);
            let taken = std::mem::take(&mut s.backlog);
            s.writing = taken.len();
            taken
        };
        if !taken.is_empty() {
            let started = Instant::now();
            let result = store.telemetry().write_states(&taken).await;
            let mut s = lock(&states);
            s.writing = 0;
            match result {
                Ok(()) => {
                    wait = STATE_WRITE_INTERVAL;
                    metrics::histogram!("fleet_ingest_state_write_seconds").record(started.elapsed().as_secs_f64());
                    metrics::counter!("fleet_ingest_state_samples_written_total").increment(taken.samples());
                }
                Err(e) => {
                    metrics::counter!("fleet_ingest_state_write_errors_total").increment(1);
                    if last {
                        tracing::error!(error = %e, vehicles = taken.len(), "writing the vehicles' state failed at shutdown; the next start restores it from the samples");
                    } else {
                        // The backlog only merges meanwhile (a row per vehicle at most).
                        wait = (wait * 2).min(RETRY_CAP);
                        tracing::warn!(error = %e, vehicles = taken.len(), retry_in_ms = wait.as_millis() as u64, "writing the vehicles' state failed; retrying");
                        s.backlog.merge(taken);
                    }
                }
            }
            s.report();
        }
        if last {
            return;
        }
    }
}
