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
use fleet_storage::{Leadership, Served, Store, StorageError, StoredTrip};
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

/// The lock whose holder derives: with several instances on one PostgreSQL, one derives and
/// the others wait to take over (on SQLite there is one instance, which always holds it).
pub const LEADER_LOCK: &str = "fleet.stats.deriver";
/// The lock held while aged samples are removed, so two instances never purge at once.
pub const RETENTION_LOCK: &str = "fleet.stats.retention";

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
        let mut leadership: Option<Leadership> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.recv() => match event {
                    Ok(Event::SamplesCommitted(samples)) => {
                        for s in samples.iter() {
                            dirty.mark(&s.vin, s.ts, s.ts);
                        }
                    }
                    Ok(Event::Resync) => {
                        tracing::warn!("events from another instance may be missing; catching up from storage");
                        need_catch_up = true;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(events.missed = missed, "trip derivation fell behind the bus; catching up from storage");
                        need_catch_up = true;
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    if !self.lead(&mut leadership).await {
                        // The leader derives what this instance commits too (the relay
                        // brings it the samples); taking over later starts with a catch-up.
                        dirty = Dirty::default();
                        need_catch_up = true;
                        continue;
                    }
                    if need_catch_up {
                        match self.catch_up(&shutdown).await {
                            Ok(n) => {
                                need_catch_up = false;
                                tracing::info!(stats.cars = n, "trips derived for every car");
                            }
                            Err(e) => tracing::warn!(error = %e, "trip catch-up failed; retrying"),
                        }
                    }
                    let mut pass = dirty.take(MAX_CARS_PER_PASS).into_iter();
                    while let Some((vin, (a, b))) = pass.next() {
                        if let Err(e) = self.derive_window(&vin, a, b).await {
                            tracing::warn!(vehicle.vin = %vin, error = %e, "trip derivation failed; retrying");
                            if e.is_transient() {
                                // The database is out of reach: each further car would wait out
                                // the pool's acquire timeout (minutes for a pass, the bus unread,
                                // shutdown unheard). This car and the untried ones wait in front.
                                dirty.put_back(std::iter::once((vin, (a, b))).chain(pass));
                                break;
                            }
                            dirty.mark(&vin, a, b);
                        }
                    }
                    metrics::gauge!("fleet_stats_cars_waiting").set(dirty.queue.len() as f64);
                }
            }
        }
    }

    /// Whether this instance leads the derivation, checking a held leadership and trying to
    /// take one otherwise.
    async fn lead(&self, leadership: &mut Option<Leadership>) -> bool {
        if let Some(l) = leadership
            && !l.holds().await
        {
            tracing::warn!("trip derivation lost its leadership");
            *leadership = None;
        }
        if leadership.is_none() {
            match self.store.try_lead(LEADER_LOCK).await {
                Ok(Some(l)) => {
                    tracing::info!("this instance derives trips");
                    *leadership = Some(l);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "trip derivation cannot reach the database to lead"),
            }
            metrics::gauge!("fleet_stats_leader").set(if leadership.is_some() { 1.0 } else { 0.0 });
        }
        leadership.is_some()
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
            match store.try_lead(RETENTION_LOCK).await {
                Ok(Some(_held)) => match store.telemetry().purge_before(Utc::now() - keep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "aged raw samples removed"),
                    Err(e) => tracing::warn!(error = %e, "removing aged raw samples failed; retrying later"),
                },
                Ok(None) => tracing::debug!("another instance is removing aged samples"),
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

    /// Returns cars taken for a pass that was cut short to the front of the queue, in their
    /// order; a car marked again meanwhile keeps its place and gets the union of both spans.
    fn put_back(&mut self, cars: impl Iterator<Item = (Vin, Span)>) {
        let cars: Vec<_> = cars.collect();
        for (vin, (from, to)) in cars.into_iter().rev() {
            match self.spans.get_mut(&vin) {
                Some((a, b)) => {
                    *a = (*a).min(from);
                    *b = (*b).max(to);
                }
                None => {
                    self.spans.insert(vin.clone(), (from, to));
                    self.queue.push_front(vin);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn vin(i: u8) -> Vin {
        Vin::parse(&format!("LSJA24U66NS00000{i}")).expect("a valid VIN")
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).expect("a valid time")
    }

    #[test]
    fn a_pass_cut_short_puts_its_untried_cars_back_in_front_in_order() {
        let mut dirty = Dirty::default();
        for i in 1..=4 {
            dirty.mark(&vin(i), t(i.into()), t(i.into()));
        }
        let taken = dirty.take(3);
        // Car 1 was derived; the database went away at car 2.
        dirty.put_back(taken.into_iter().skip(1));
        let next = dirty.take(10);
        assert_eq!(next, [(vin(2), (t(2), t(2))), (vin(3), (t(3), t(3))), (vin(4), (t(4), t(4)))]);
    }

    #[test]
    fn a_car_marked_again_meanwhile_keeps_one_place_with_both_spans() {
        let mut dirty = Dirty::default();
        dirty.mark(&vin(1), t(10), t(20));
        dirty.mark(&vin(2), t(10), t(20));
        let taken = dirty.take(2);
        dirty.mark(&vin(2), t(50), t(60));
        dirty.put_back(taken.into_iter());
        assert_eq!(dirty.take(10), [(vin(1), (t(10), t(20))), (vin(2), (t(10), t(60)))]);
    }
}
