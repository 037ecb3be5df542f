//! Writes the vehicles' current state behind the samples.
//!
//! The writer commits a batch's samples and hands their state to a shared [`StateBacklog`]
//! (one row per vehicle); this task merges the backlog into the database every
//! [`STATE_WRITE_INTERVAL`], or less often when writes are slow ([`STATE_WRITE_SPACING`]). At
//! a high message rate that is one upsert per vehicle per interval instead of one per vehicle
//! per batch: in `fleetd bench ingest` on PostgreSQL the upserts were about a third of the
//! database's CPU. The state in the database trails the samples by up to the interval plus a
//! write; the live feed follows the committed samples
//! themselves and does not wait for it. What a crash takes of the backlog is restored at the
//! next start from the stored samples (`Telemetry::catch_up_states`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fleet_storage::{StateBacklog, Store};
use tokio_util::sync::CancellationToken;

/// How often the backlog is written when writes are quick: the most the stored state trails
/// the samples, plus a write.
pub(crate) const STATE_WRITE_INTERVAL: Duration = Duration::from_millis(250);
/// A write that takes longer spaces the next one out: the pause after a write is at least
/// this many times the write's own duration, so writing states takes at most an eighth of
/// the time. Each vehicle's row is written once per write however often the vehicle reported
/// meanwhile, so at a large fleet's rate (10,000 cars reporting several times a second in
/// `fleetd bench gateway`, where a write of every car took ~150 ms on PostgreSQL) this turns
/// four upserts of each car a second, contending with the samples' own commits, into fewer;
/// the stored state then trails by up to eight writes' time.
const STATE_WRITE_SPACING: u32 = 7;
/// The longest pause the spacing makes: a write that took long because the database was
/// away (it waited for a connection) must not hold the next one back for minutes after it
/// comes back.
const STATE_WRITE_MAX_PAUSE: Duration = Duration::from_secs(2);
/// After failed writes the wait doubles up to this.
const RETRY_CAP: Duration = Duration::from_secs(5);

/// The backlog and what is being written of it, shared by the batch writer and this task.
#[derive(Default)]
pub(crate) struct States {
    backlog: StateBacklog,
    /// Vehicles in a write under way.
    writing: usize,
    /// This pipeline's share of the process-wide gauge, as last added to it.
    reported: usize,
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

    /// Brings this pipeline's share of `fleet_ingest_states_unwritten` up to date. A process
    /// runs several pipelines (the broker's sessions, the gateways' intake): each adds its
    /// change, so the gauge is their sum (set by each, it showed whichever wrote last).
    fn report(&mut self) {
        self.report_as(self.unwritten());
    }

    fn report_as(&mut self, now: usize) {
        let gauge = metrics::gauge!("fleet_ingest_states_unwritten");
        if now >= self.reported {
            gauge.increment((now - self.reported) as f64);
        } else {
            gauge.decrement((self.reported - now) as f64);
        }
        self.reported = now;
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
                    wait = (started.elapsed() * STATE_WRITE_SPACING).clamp(STATE_WRITE_INTERVAL, STATE_WRITE_MAX_PAUSE);
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
            // What is left is restored from the samples at the next start; this pipeline
            // leaves the gauge.
            lock(&states).report_as(0);
            return;
        }
    }
}
