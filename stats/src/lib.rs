//! fleet-stats: the derived tables monthly statistics read. The [`Deriver`] follows committed
//! telemetry on the bus and, every few seconds, re-derives the trips and charging sessions of
//! each car that received samples, over the window those samples can touch (late data —
//! re-issued reports, offline batches — re-derives the trips it touches). On start it catches
//! up every car from its newest stored trip, so history loaded without the bus (the demo's
//! month) is derived too. Each derived trip is tied to the order whose passengers the car
//! carried meanwhile, which gives the unit's energy use against its budget.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_bus::{Bus, Event};
use fleet_domain::Vin;
use fleet_domain::trips::{DeriveParams, derive};
use fleet_storage::{Served, Store, StorageError, StoredTrip};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// How often cars with new samples are re-derived. Statistics and budgets need minutes, not
/// seconds; a longer pass folds a moving car's many samples into one derivation.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Cars re-derived in one pass at most; the rest keep their place in the queue (their
/// windows merge meanwhile), so a large fleet spreads the work instead of bursting.
pub const MAX_CARS_PER_PASS: usize = 500;
/// Most samples one re-derivation reads (about three weeks of 5-second reports).
pub const MAX_WINDOW_SAMPLES: i64 = 400_000;

/// Raw samples are kept this long by default (derived trips and sessions stay for good).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(400 * 86_400);
/// How often aged samples are removed.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// The deriver's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub params: DeriveParams,
    pub interval: Duration,
    /// Raw samples older than this are removed; `None` keeps them all. Derivation never
    /// reaches back past it (it would find no samples there and lose the trips).
    pub retention: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self { params: DeriveParams::default(), interval: DEFAULT_INTERVAL, retention: Some(DEFAULT_RETENTION) }
    }
}

/// The derivation service.
pub struct Deriver {
    cfg: Config,
    store: Store,
    bus: Bus,
}

impl Deriver {
    pub fn new(cfg: Config, store: Store, bus: Bus) -> Self {
        Self { cfg, store, bus }
    }

    /// Catches up, then follows the bus until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        // Subscribed before the catch-up: nothing committed meanwhile is missed.
        let mut events = self.bus.subscribe();
        let mut need_catch_up = true;
        let mut dirty = Dirty::default();
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.recv() => match event {
                    Ok(Event::SamplesCommitted(samples)) => {
                        for s in samples.iter() {
                            dirty.mark(&s.vin, s.ts, s.ts);
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(events.missed = missed, "trip derivation fell behind the bus; catching up from storage");
                        need_catch_up = true;
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    if need_catch_up {
                        match self.catch_up(&shutdown).await {
                            Ok(n) => {
                                need_catch_up = false;
                                tracing::info!(stats.cars = n, "trips derived for every car");
                            }
                            Err(e) => tracing::warn!(error = %e, "trip catch-up failed; retrying"),
                        }
                    }
                    for (vin, (a, b)) in dirty.take(MAX_CARS_PER_PASS) {
                        if let Err(e) = self.derive_window(&vin, a, b).await {
                            tracing::warn!(vehicle.vin = %vin, error = %e, "trip derivation failed; retrying");
                            dirty.mark(&vin, a, b);
                        }
                    }
                    metrics::gauge!("fleet_stats_cars_waiting").set(dirty.queue.len() as f64);
                }
            }
        }
    }

    /// Derives every car from its newest stored trip (or its first sample) to now.
    pub async fn catch_up(&self, shutdown: &CancellationToken) -> Result<usize, StorageError> {
        let vehicles = self.store.vehicles().list(None).await?;
        let now = Utc::now();
        for v in &vehicles {
            if shutdown.is_cancelled() {
                break;
            }
            let from = self.store.derived().latest_start(&v.vin).await?.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            self.derive_window(&v.vin, from, now).await?;
        }
        Ok(vehicles.len())
    }

    /// Re-derives what samples of `vin` in `[t0, t1]` can touch: the window widened by the
    /// stop and gap thresholds, and by the stored trips and sessions reaching into it.
    pub async fn derive_window(&self, vin: &Vin, t0: DateTime<Utc>, t1: DateTime<Utc>) -> Result<(), StorageError> {
        let p = &self.cfg.params;
        let margin = chrono::Duration::from_std(p.max_gap + p.stop_after).unwrap_or(chrono::Duration::minutes(15));
        let (mut from, mut to) = (t0 - margin, t1 + margin);
        if let Some((a, b)) = self.store.derived().span_touching(vin, from, to).await? {
            from = from.min(a);
            to = to.max(b);
        }
        let to = to + chrono::Duration::milliseconds(1);
        if let Some(cutoff) = self.retention_cutoff() {
            // Samples before the cutoff are gone (or about to be): their trips stay as derived.
            from = from.max(cutoff);
            if from >= to {
                return Ok(());
            }
        }
        let Some(vehicle) = self.store.vehicles().get(vin.as_str()).await? else { return Ok(()) };
        let samples = self.store.telemetry().track(vin.as_str(), from, to, MAX_WINDOW_SAMPLES).await?;
        if i64::try_from(samples.len()).unwrap_or(i64::MAX) >= MAX_WINDOW_SAMPLES {
            tracing::warn!(vehicle.vin = %vin, "a derivation window holds more samples than one pass reads; its end waits for the next pass");
        }
        let derived = derive(&samples, vehicle.battery_kwh, p);
        let in_window = |ts: DateTime<Utc>| ts >= from && ts < to;
        let served = self.store.orders().served_by(vin, from, to).await?;
        let trips: Vec<StoredTrip> = derived.trips.into_iter().filter(|t| in_window(t.start_ts)).map(|t| attribute(t, &served)).collect();
        let sessions: Vec<_> = derived.charging.into_iter().filter(|c| in_window(c.start_ts)).collect();
        metrics::counter!("fleet_stats_derivations_total").increment(1);
        self.store.derived().replace(vin, from, to, &trips, &sessions).await
    }
}

impl Deriver {
    fn retention_cutoff(&self) -> Option<DateTime<Utc>> {
        let keep = chrono::Duration::from_std(self.cfg.retention?).ok()?;
        Some(Utc::now() - keep)
    }

    /// Removes aged raw samples every [`RETENTION_EVERY`] until `shutdown`.
    pub async fn retain(store: Store, retention: Duration, shutdown: CancellationToken) {
        let Ok(keep) = chrono::Duration::from_std(retention) else { return };
        loop {
            match store.telemetry().purge_before(Utc::now() - keep).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "aged raw samples removed"),
                Err(e) => tracing::warn!(error = %e, "removing aged raw samples failed; retrying later"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETENTION_EVERY) => {}
            }
        }
    }
}

/// Cars waiting for a derivation, first come first served, each with the time span its new
/// samples cover.
#[derive(Default)]
struct Dirty {
    queue: std::collections::VecDeque<Vin>,
    spans: HashMap<Vin, Span>,
}

/// The time span new samples of a car cover.
type Span = (DateTime<Utc>, DateTime<Utc>);

impl Dirty {
    fn mark(&mut self, vin: &Vin, from: DateTime<Utc>, to: DateTime<Utc>) {
        match self.spans.get_mut(vin) {
            Some((a, b)) => {
                *a = (*a).min(from);
                *b = (*b).max(to);
            }
            None => {
                self.spans.insert(vin.clone(), (from, to));
                self.queue.push_back(vin.clone());
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<(Vin, Span)> {
        let n = n.min(self.queue.len());
        self.queue.drain(..n).filter_map(|vin| self.spans.remove(&vin).map(|span| (vin, span))).collect()
    }
}

/// Ties a trip to the order whose passengers it carried longest.
fn attribute(trip: fleet_domain::trips::Trip, served: &[Served]) -> StoredTrip {
    let overlap = |s: &Served| {
        let start = trip.start_ts.max(s.picked_up_at);
        let end = s.done_at.map_or(trip.end_ts, |d| d.min(trip.end_ts));
        (end - start).num_milliseconds()
    };
    let best = served.iter().map(|s| (overlap(s), s)).filter(|(o, _)| *o > 0).max_by_key(|(o, _)| *o).map(|(_, s)| s);
    StoredTrip {
        order_id: best.map(|s| s.order_id.clone()),
        unit_id: best.map(|s| s.unit_id.clone()),
        driver_id: best.and_then(|s| s.driver_id.clone()),
        trip,
    }
}
