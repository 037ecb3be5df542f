//! The [`Deriver`]: follows committed telemetry on the bus and re-derives, pass by pass, the
//! trips and charging sessions of each car that received samples; catches up every car on
//! start and after missed events; gives way to ingest's bursts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_bus::{Bus, Event};
use fleet_domain::Vin;
use fleet_domain::alarm::{AlarmKind, NewAlarm};
use fleet_domain::geofence::crossings;
use fleet_domain::trips::{DeriveParams, derive};
use fleet_storage::{Leadership, Served, StorageError, Store, StoredTrip};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::retention::DEFAULT_RETENTION;

mod heard;

use heard::{Dirty, Heard};

/// How often cars with new samples are re-derived. Statistics and budgets need minutes, not
/// seconds; a longer pass folds a moving car's many samples into one derivation.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Cars re-derived in one pass at most; the rest keep their place in the queue (their
/// windows merge meanwhile), so a large fleet spreads the work instead of bursting.
pub const MAX_CARS_PER_PASS: usize = 500;
/// Most samples one re-derivation reads (about three weeks of 5-second reports).
pub const MAX_WINDOW_SAMPLES: i64 = 400_000;

/// Messages this instance's ingest may hold uncommitted before derivation gives way: about a
/// second of a 10,000-car fleet's reports. At a fleet's usual rate ingest holds one batch in
/// the making (tens of messages); thousands mean a burst, such as the backlog the broker
/// kept while fleetd was down. Derivation reads back many samples per car; on the same CPU
/// and database it would slow the burst's way to durable storage, and statistics can wait.
pub const YIELD_IN_HAND: u64 = 2_000;
/// The most one pass gives way in all by default; after that it derives under load too, so
/// sustained overload delays statistics by at most this much per pass, never indefinitely.
pub const DEFAULT_MAX_YIELD_PER_PASS: Duration = Duration::from_secs(60);
/// How often a deriver that gives way looks again (and reads the bus meanwhile).
const YIELD_POLL: Duration = Duration::from_millis(100);
/// How long ingest's backlog must have stayed below [`YIELD_IN_HAND`] before derivation goes
/// on: during a burst the count dips each time a batch commits, and a car derived in every dip
/// would make derivation compete with the burst after all.
const YIELD_QUIET: Duration = Duration::from_secs(1);

/// Giving way: what the pass may still wait, and when ingest was last seen busy.
struct GiveWay {
    left: Duration,
    busy_at: Option<tokio::time::Instant>,
}

/// The lock whose holder derives: with several instances on one PostgreSQL, one derives and
/// the others wait to take over (on SQLite there is one instance, which always holds it).
pub const LEADER_LOCK: &str = "fleet.stats.deriver";

/// The deriver's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub params: DeriveParams,
    pub interval: Duration,
    /// Raw samples older than this are removed; `None` keeps them all. Derivation never
    /// reaches back past it (it would find no samples there and lose the trips).
    pub retention: Option<Duration>,
    /// The most one pass (catch-up included) waits for ingest's backlog ([`YIELD_IN_HAND`]).
    pub max_yield_per_pass: Duration,
    /// How often the alarms no single sample raises are looked for ([`crate::sweep`]).
    pub sweep_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            params: DeriveParams::default(),
            interval: DEFAULT_INTERVAL,
            retention: Some(DEFAULT_RETENTION),
            max_yield_per_pass: DEFAULT_MAX_YIELD_PER_PASS,
            sweep_every: crate::sweep::DEFAULT_SWEEP_EVERY,
        }
    }
}

/// What a pass derives by, the same for every car: read once per pass, not per car.
struct PassRules {
    /// The tariff that prices the charging sessions.
    day: fleet_domain::tariff::PricedDay,
    hours: fleet_domain::geofence::WorkingHours,
    /// Every geofence with its shape (each car takes those that apply to it).
    fences: Vec<(fleet_domain::geofence::Geofence, fleet_domain::geofence::Shape)>,
}

/// The derivation service.
pub struct Deriver {
    cfg: Config,
    store: Store,
    bus: Bus,
    /// Ingest's messages in hand ([`Bus::ingest_in_hand`]).
    in_hand: Arc<AtomicU64>,
}

impl Deriver {
    pub fn new(cfg: Config, store: Store, bus: Bus) -> Self {
        let in_hand = bus.ingest_in_hand();
        Self { cfg, store, bus, in_hand }
    }

    /// Catches up, then follows the bus until `shutdown`.
    ///
    /// The bus keeps [`fleet_bus::BUS_CAPACITY`] events; a pass of hundreds of derivations
    /// takes seconds, while committed batches arrive by the hundred a second. So the pass
    /// reads what the bus brought between two cars: a receiver left unread for a whole pass
    /// lagged, and each lag meant a catch-up of every car, which took longer still (seen in
    /// the soak: a catch-up every pass and fleetd's CPU rising minute by minute).
    pub async fn run(self, shutdown: CancellationToken) {
        // Subscribed before the catch-up: nothing committed meanwhile is missed.
        let mut events = self.bus.subscribe();
        let mut heard = Heard { dirty: Dirty::default(), need_catch_up: true };
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leadership: Option<Leadership> = None;
        // Kept from pass to pass: a pass that starts in a dip of a burst still waits.
        let mut way = GiveWay { left: Duration::ZERO, busy_at: None };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                event = events.recv() => if !heard.apply(event) { break },
                _ = tick.tick() => {
                    if !self.lead(&mut leadership).await {
                        // The leader derives what this instance commits too (the relay
                        // brings it the samples); taking over later starts with a catch-up.
                        heard = Heard { dirty: Dirty::default(), need_catch_up: true };
                        continue;
                    }
                    way.left = self.cfg.max_yield_per_pass;
                    if heard.need_catch_up {
                        heard.need_catch_up = false;
                        match self.catch_up(&mut events, &mut heard, &mut way, &shutdown).await {
                            Ok(n) => tracing::info!(stats.cars = n, "trips derived for every car"),
                            Err(e) => {
                                heard.need_catch_up = true;
                                tracing::warn!(error = %e, "trip catch-up failed; retrying");
                            }
                        }
                    }
                    let rules = match self.pass_rules().await {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read the tariff, working hours or geofences; deriving next pass");
                            continue;
                        }
                    };
                    let mut pass = heard.dirty.take(MAX_CARS_PER_PASS).into_iter();
                    while let Some((vin, (a, b))) = pass.next() {
                        self.give_way(&mut way, &mut events, &mut heard, &shutdown).await;
                        if shutdown.is_cancelled() {
                            // Stopping: the rest of the pass is left (a restart catches up).
                            break;
                        }
                        if let Err(e) = self.derive_window(&rules, &vin, a, b).await {
                            tracing::warn!(vehicle.vin = %vin, error = %e, "trip derivation failed; retrying");
                            if e.is_transient() {
                                // The database is unreachable: every other car would wait out
                                // the pool's acquire timeout (minutes for a pass, the bus unread,
                                // shutdown unheard). This car and the untried ones wait in front.
                                heard.dirty.put_back(std::iter::once((vin, (a, b))).chain(pass));
                                break;
                            }
                            heard.dirty.mark(&vin, a, b);
                        }
                        heard.drain(&mut events);
                    }
                    metrics::gauge!("fleet_stats_cars_waiting").set(heard.dirty.queue.len() as f64);
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

    /// Derives every car from its newest stored trip (or its first sample) to now, reading
    /// the bus between two cars.
    async fn catch_up(
        &self,
        events: &mut broadcast::Receiver<Event>,
        heard: &mut Heard,
        way: &mut GiveWay,
        shutdown: &CancellationToken,
    ) -> Result<usize, StorageError> {
        let vehicles = self.store.vehicles().list(None).await?;
        let rules = self.pass_rules().await?;
        let now = Utc::now();
        for v in &vehicles {
            self.give_way(way, events, heard, shutdown).await;
            if shutdown.is_cancelled() {
                break;
            }
            let from = self.store.derived().latest_start(&v.vin).await?.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            self.derive_window(&rules, &v.vin, from, now).await?;
            heard.drain(events);
        }
        Ok(vehicles.len())
    }

    /// Waits while this instance's ingest holds a backlog ([`YIELD_IN_HAND`] messages or
    /// more) or held one within [`YIELD_QUIET`], out of the pass's allowance, reading the bus
    /// meanwhile (a burst's commits would otherwise overrun it, and a lag costs a catch-up
    /// of every car).
    async fn give_way(
        &self,
        way: &mut GiveWay,
        events: &mut broadcast::Receiver<Event>,
        heard: &mut Heard,
        shutdown: &CancellationToken,
    ) {
        loop {
            let now = tokio::time::Instant::now();
            if self.in_hand.load(Ordering::Relaxed) >= YIELD_IN_HAND {
                way.busy_at = Some(now);
            }
            let busy = way.busy_at.is_some_and(|t| now - t < YIELD_QUIET);
            if !busy || way.left.is_zero() || shutdown.is_cancelled() {
                return;
            }
            let step = YIELD_POLL.min(way.left);
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(step) => {}
            }
            way.left = way.left.saturating_sub(step);
            metrics::counter!("fleet_stats_yielded_milliseconds_total")
                .increment(u64::try_from(step.as_millis()).unwrap_or(u64::MAX));
            heard.drain(events);
        }
    }

    async fn pass_rules(&self) -> Result<PassRules, StorageError> {
        let fences = self
            .store
            .geofences()
            .list()
            .await?
            .into_iter()
            .filter_map(|f| {
                let shape = f.shape().ok()?;
                Some((f, shape))
            })
            .collect();
        Ok(PassRules {
            day: self.store.settings().priced_day().await?,
            hours: self.store.settings().working_hours().await?,
            fences,
        })
    }

    /// Re-derives what samples of `vin` in `[t0, t1]` can touch: the window widened by the
    /// stop and gap thresholds, and by the stored trips and sessions reaching into it.
    async fn derive_window(
        &self,
        rules: &PassRules,
        vin: &Vin,
        t0: DateTime<Utc>,
        t1: DateTime<Utc>,
    ) -> Result<(), StorageError> {
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
        // Without the GB/T 32960 frames: derivation needs none of their other blocks.
        let samples = self.store.telemetry().track_without_frames(vin.as_str(), from, to, MAX_WINDOW_SAMPLES).await?;
        if i64::try_from(samples.len()).unwrap_or(i64::MAX) >= MAX_WINDOW_SAMPLES {
            tracing::warn!(vehicle.vin = %vin, "a derivation window holds more samples than one pass reads; its end waits for the next pass");
        }
        let derived = derive(&samples, vehicle.battery_kwh, p);
        let in_window = |ts: DateTime<Utc>| ts >= from && ts < to;
        let served = self.store.orders().served_by(vin, from, to).await?;
        let trips: Vec<StoredTrip> =
            derived.trips.into_iter().filter(|t| in_window(t.start_ts)).map(|t| attribute(t, &served)).collect();
        // Each session costed at the tariff in force now (a later tariff applies to what is
        // derived after it is set).
        let day = &rules.day;
        let sessions: Vec<_> = derived
            .charging
            .into_iter()
            .filter(|c| in_window(c.start_ts))
            .map(|mut c| {
                c.cost_yuan = fleet_domain::tariff::charging_cost(&samples, &c, vehicle.battery_kwh, day);
                c
            })
            .collect();
        metrics::counter!("fleet_stats_derivations_total").increment(1);
        self.store.derived().replace(vin, from, to, &trips, &sessions).await?;
        self.fence_alarms(rules, &vehicle, &samples, to).await
    }

    /// Evaluates the window's samples against the geofences that apply to the car, and makes
    /// its fence alarms after the window's first sample (which only sets where the car was)
    /// exactly the crossings found: late data raises what it should have, and what it undid
    /// goes.
    async fn fence_alarms(
        &self,
        rules: &PassRules,
        vehicle: &fleet_domain::Vehicle,
        samples: &[fleet_domain::Sample],
        to: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let Some(first) = samples.iter().find(|s| s.position_valid && s.moves_state()) else { return Ok(()) };
        let fences: Vec<_> = rules.fences.iter().filter(|(f, _)| f.applies_to(vehicle)).cloned().collect();
        let alarms: Vec<NewAlarm> = crossings(samples, &fences, &rules.hours)
            .into_iter()
            .map(|c| NewAlarm {
                kind: c.alarm,
                vin: Some(vehicle.vin.clone()),
                unit_id: vehicle.unit_id.clone(),
                ts: c.ts,
                key: format!("{}:{}:{}:{}", c.alarm.as_str(), vehicle.vin, c.fence_id, c.ts.timestamp_millis()),
                detail: serde_json::json!({
                    "geofence_id": c.fence_id,
                    "geofence": c.fence_name,
                    "lat": c.position.lat,
                    "lon": c.position.lon,
                }),
            })
            .collect();
        let added = self.store.alarms().replace_window(&vehicle.vin, &AlarmKind::FENCE, first.ts, to, &alarms).await?;
        if !added.is_empty() {
            metrics::counter!("fleet_alarms_raised_total").increment(added.len() as u64);
            tracing::info!(vehicle.vin = %vehicle.vin, alarms = added.len(), "geofence alarms raised");
        }
        Ok(())
    }

    fn retention_cutoff(&self) -> Option<DateTime<Utc>> {
        let keep = chrono::Duration::from_std(self.cfg.retention?).ok()?;
        Some(Utc::now() - keep)
    }
}

/// Ties a trip to the order it served longest (from acceptance to completion: the drive to the
/// pickup and the ride).
fn attribute(trip: fleet_domain::trips::Trip, served: &[Served]) -> StoredTrip {
    let overlap = |s: &Served| {
        let start = trip.start_ts.max(s.accepted_at);
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
