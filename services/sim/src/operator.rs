//! The people around the simulated cars, over fleetd's real HTTP API: units apply for trips
//! (a few a minute by day, fewer at night; now and then one booked for later, now and then a
//! conference's burst), approvers approve, and each car's driver answers an assignment like
//! a person (most accept within seconds, a few decline with a reason, one in a while lets the
//! time run out), drives to the pickup, waits for the passengers, drives to the drop-off and
//! completes. The cars move through a [`Control`]: the operator tells a car where to go and
//! watches it arrive. Now and then it also takes an idle car for a private trip, so that the
//! misuse list has something true to show.
//!
//! `fleetd run --demo` runs it with the demo's own accounts (each unit's user, each car's
//! driver); `fleetd simulate --orders-per-min N` with one dispatcher or admin account acting
//! for everyone, against any fleetd.

mod api;
mod people;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use fleet_domain::{Order, OrderStatus, Vin};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::api::Api;
pub use self::api::ApiError;
use self::people::Answer;
use crate::car::{CarActivity, Errand};
use crate::control::Control;
use crate::geo::LatLon;
use crate::places::graph;

/// How often the operator looks at the orders and the cars.
const TICK: Duration = Duration::from_secs(1);
/// How often it lists the open orders.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// How often it reloads the units.
const UNITS_EVERY: Duration = Duration::from_secs(600);
/// How often it logs what it did.
const REPORT_EVERY: Duration = Duration::from_secs(300);
/// Orders placed in one tick at most (a load generator's rate is spread over ticks).
const MAX_PER_TICK: usize = 200;
/// Over this long after the start (with `by_hour`: the demo), the orders of the next
/// [`WARM_UP_AHEAD_MIN`] minutes at the day rate come on top of the rate, for at most
/// [`WARM_UP_SHARE`] of the cars: a fresh demo has its cars on the road within minutes
/// instead of filling up over half an hour.
const WARM_UP: Duration = Duration::from_secs(45);
const WARM_UP_AHEAD_MIN: f64 = 10.0;
const WARM_UP_SHARE: f64 = 0.4;
/// Private trips come at least this far apart (so never more than three an hour).
const PRIVATE_MIN_GAP: Duration = Duration::from_secs(20 * 60);
/// A car sent for private use has at least this much charge.
const PRIVATE_MIN_SOC: f64 = 50.0;
/// The share of private trips that leave the service area (one car at a time)...
const AWAY_SHARE: f64 = 0.25;
/// ...with at least this much charge for about 220 km there and back...
const AWAY_MIN_SOC: f64 = 80.0;
/// ...staying this long before the next private trip's turn brings the car back.
const AWAY_STAY: Duration = Duration::from_secs(30 * 60);

/// Who does what.
#[derive(Debug, Clone)]
pub enum Cast {
    /// One account (a dispatcher or an admin) places every unit's orders, approves them and
    /// acts for every driver (recorded as on their behalf).
    One { username: String, password: String },
    /// Everyone as themselves, all with one password: `overseer` (a dispatcher) lists the
    /// orders, each unit's user (unit id → username) applies and approves, each car's driver
    /// (VIN → username) answers and drives; a car without a driver is acted for by the overseer.
    Each { password: String, overseer: String, units: HashMap<String, String>, drivers: HashMap<Vin, String> },
}

impl Cast {
    fn passwords(&self) -> HashMap<String, String> {
        match self {
            Self::One { username, password } => HashMap::from([(username.clone(), password.clone())]),
            Self::Each { password, overseer, units, drivers } => std::iter::once(overseer)
                .chain(units.values())
                .chain(drivers.values())
                .map(|u| (u.clone(), password.clone()))
                .collect(),
        }
    }

    fn overseer(&self) -> &str {
        match self {
            Self::One { username, .. } => username,
            Self::Each { overseer, .. } => overseer,
        }
    }

    /// The unit's own user, if it has one here.
    fn unit_user<'a>(&'a self, unit_id: &str) -> &'a str {
        match self {
            Self::One { username, .. } => username,
            Self::Each { overseer, units, .. } => units.get(unit_id).unwrap_or(overseer),
        }
    }

    fn driver_user<'a>(&'a self, vin: &Vin) -> &'a str {
        match self {
            Self::One { username, .. } => username,
            Self::Each { overseer, drivers, .. } => drivers.get(vin).unwrap_or(overseer),
        }
    }

    /// The units that apply for trips.
    fn applicants(&self, units: &[api::UnitEntry]) -> Vec<String> {
        match self {
            Self::One { .. } => units.iter().map(|u| u.id.clone()).collect(),
            Self::Each { units: own, .. } => {
                units.iter().filter(|u| own.contains_key(&u.id)).map(|u| u.id.clone()).collect()
            }
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// fleetd's HTTP address, `http://host:port`.
    pub api_base: String,
    pub cast: Cast,
    /// Orders a minute (in working hours when `by_hour`).
    pub orders_per_min: f64,
    /// The rate follows the day (full in working hours, lower in the evening and at night);
    /// otherwise it is constant.
    pub by_hour: bool,
    /// Conferences a day: each a burst of 8–16 orders to one venue.
    pub bursts_per_day: f64,
    /// Private trips an hour taken with idle cars (0: none).
    pub private_trips_per_hour: f64,
    pub seed: u64,
}

/// What the operator did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatorStats {
    pub created: u64,
    /// Refused for a spent energy budget.
    pub over_budget: u64,
    pub approved: u64,
    pub accepted: u64,
    pub declined: u64,
    pub let_expire: u64,
    pub picked_up: u64,
    pub completed: u64,
    pub private_trips: u64,
    /// Calls that failed otherwise.
    pub errors: u64,
}

/// Where a car serving an order is with it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    ToPickup,
    Boarding { until: Instant },
    ToDropoff,
}

#[derive(Debug, Clone)]
struct Ride {
    vin: Vin,
    pickup: LatLon,
    dropoff: LatLon,
    stage: Stage,
}

struct Operator {
    cfg: OperatorConfig,
    api: Api,
    control: Control,
    rng: StdRng,
    stats: OperatorStats,
    units: Vec<String>,
    /// Orders owed by the rate and not placed yet (a fraction carries over).
    owed: f64,
    /// Pending orders and when their approver approves.
    approvals: HashMap<String, Instant>,
    /// Assignments (order, car) and the driver's answer with its time.
    answers: HashMap<(String, Vin), (Answer, Instant)>,
    rides: HashMap<String, Ride>,
    /// Cars out on a private trip.
    private: HashMap<Vin, Private>,
    next_private: Instant,
    next_burst: Instant,
    started: Instant,
}

/// Runs until `shutdown`.
pub async fn run(
    cfg: OperatorConfig,
    control: Control,
    shutdown: CancellationToken,
) -> Result<OperatorStats, ApiError> {
    let mut op = Operator::new(cfg, control)?;
    tracing::info!(api = %op.cfg.api_base, orders_per_min = op.cfg.orders_per_min, "order simulator started");
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut last_poll, mut last_units, mut last_report) = (None::<Instant>, None::<Instant>, Instant::now());
    let mut last_tick = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let now = Instant::now();
        let dt = now - last_tick;
        last_tick = now;
        if last_units.is_none_or(|t| now - t >= UNITS_EVERY) || op.units.is_empty() {
            match op.api.units(op.cfg.cast.overseer()).await {
                Ok(units) => {
                    op.units = op.cfg.cast.applicants(&units);
                    last_units = Some(now);
                }
                Err(e) => op.failed("listing the units", &e),
            }
        }
        op.place_orders(dt).await;
        if last_poll.is_none_or(|t| now - t >= POLL_EVERY) {
            last_poll = Some(now);
            match op.api.orders(op.cfg.cast.overseer(), "pending_approval,assigned,accepted,picked_up").await {
                Ok(orders) => op.handle_orders(&orders).await,
                Err(e) => op.failed("listing the orders", &e),
            }
        }
        op.drive().await;
        op.take_private_trip(now);
        if now - last_report >= REPORT_EVERY {
            last_report = now;
            let s = op.stats;
            tracing::info!(
                orders.created = s.created,
                orders.accepted = s.accepted,
                orders.declined = s.declined,
                orders.completed = s.completed,
                private_trips = s.private_trips,
                errors = s.errors,
                "order simulator"
            );
        }
    }
    tracing::info!(stats = ?op.stats, "order simulator stopped");
    Ok(op.stats)
}

/// A random gap of a Poisson process at `rate` per second (none at rate 0: a year).
fn exp_gap(rng: &mut impl Rng, rate_per_s: f64) -> Duration {
    if rate_per_s <= 0.0 {
        return Duration::from_secs(365 * 86_400);
    }
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    Duration::from_secs_f64((-u.ln() / rate_per_s).min(365.0 * 86_400.0))
}

impl Operator {
    fn new(cfg: OperatorConfig, control: Control) -> Result<Self, ApiError> {
        let api = Api::new(&cfg.api_base, cfg.cast.passwords())?;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let now = Instant::now();
        let next_private = now + exp_gap(&mut rng, cfg.private_trips_per_hour / 3600.0);
        let next_burst = now + exp_gap(&mut rng, cfg.bursts_per_day / 86_400.0);
        Ok(Self {
            cfg,
            api,
            control,
            rng,
            stats: OperatorStats::default(),
            units: Vec::new(),
            owed: 0.0,
            approvals: HashMap::new(),
            answers: HashMap::new(),
            rides: HashMap::new(),
            private: HashMap::new(),
            next_private,
            next_burst,
            started: now,
        })
    }

    fn failed(&mut self, what: &str, e: &ApiError) {
        self.stats.errors += 1;
        tracing::warn!(error = %e, "order simulator: {what} failed");
    }

    /// The units' new orders for the time `dt` that passed, and a conference's when one is due.
    async fn place_orders(&mut self, dt: Duration) {
        if self.units.is_empty() {
            return;
        }
        let now = Utc::now();
        let share = if self.cfg.by_hour { people::rate_share(now) } else { 1.0 };
        // Jittered around the mean, so arrivals do not come like clockwork.
        self.owed += self.cfg.orders_per_min * share * dt.as_secs_f64() / 60.0 * self.rng.random_range(0.5..1.5);
        if self.cfg.by_hour && self.cfg.orders_per_min > 0.0 && self.started.elapsed() < WARM_UP {
            let extra =
                (self.cfg.orders_per_min * WARM_UP_AHEAD_MIN).min(self.control.vins().len() as f64 * WARM_UP_SHARE);
            self.owed += extra * dt.as_secs_f64() / WARM_UP.as_secs_f64();
        }
        let mut orders = Vec::new();
        while self.owed >= 1.0 && orders.len() < MAX_PER_TICK {
            self.owed -= 1.0;
            let unit = self.units[self.rng.random_range(0..self.units.len())].clone();
            orders.push(people::order(&mut self.rng, &unit, now));
        }
        if Instant::now() >= self.next_burst {
            self.next_burst = Instant::now() + exp_gap(&mut self.rng, self.cfg.bursts_per_day / 86_400.0);
            let n = self.rng.random_range(8..=16);
            tracing::info!(orders = n, "order simulator: a conference books its guests' trips");
            orders.extend(people::burst(&mut self.rng, &self.units, n, now));
        }
        for order in orders {
            let user = self.cfg.cast.unit_user(&order.unit_id).to_owned();
            match self.api.create_order(&user, &order).await {
                Ok(_) => self.stats.created += 1,
                Err(e) if e.code() == Some("budget_exhausted") => self.stats.over_budget += 1,
                Err(e) => self.failed("placing an order", &e),
            }
        }
    }

    /// Approvals, drivers' answers, and rides to take over (after a restart).
    async fn handle_orders(&mut self, orders: &[Order]) {
        let now = Instant::now();
        let open: HashSet<&str> = orders.iter().map(|o| o.id.as_str()).collect();
        self.approvals.retain(|id, _| open.contains(id.as_str()));
        self.answers.retain(|(id, _), _| open.contains(id.as_str()));
        self.rides.retain(|id, _| open.contains(id.as_str()));
        let ours: HashSet<Vin> = self.control.vins().into_iter().collect();
        for order in orders {
            match (order.status, order.vin.as_ref()) {
                (OrderStatus::PendingApproval, _) => self.approve(order, now).await,
                (OrderStatus::Assigned, Some(vin)) if ours.contains(vin) => self.answer(order, vin, now).await,
                (OrderStatus::Accepted | OrderStatus::PickedUp, Some(vin))
                    if ours.contains(vin) && !self.rides.contains_key(&order.id) =>
                {
                    // Taken over: a ride that was under way when this operator started.
                    let stage = if order.status == OrderStatus::Accepted { Stage::ToPickup } else { Stage::ToDropoff };
                    self.start_ride(order, vin, stage);
                }
                _ => {}
            }
        }
    }

    async fn approve(&mut self, order: &Order, now: Instant) {
        let due =
            *self.approvals.entry(order.id.clone()).or_insert_with(|| now + people::approval_delay(&mut self.rng));
        if now < due {
            return;
        }
        let user = self.cfg.cast.unit_user(&order.unit_id).to_owned();
        match self.api.act(&user, &order.id, "approve", None).await {
            Ok(_) => self.stats.approved += 1,
            Err(e) if e.code() == Some("invalid_transition") => {}
            Err(e) => self.failed("approving an order", &e),
        }
        self.approvals.remove(&order.id);
    }

    async fn answer(&mut self, order: &Order, vin: &Vin, now: Instant) {
        let key = (order.id.clone(), vin.clone());
        let (answer, due) = match self.answers.get(&key) {
            Some(a) => a.clone(),
            None => {
                let (answer, after) = people::answer(&mut self.rng);
                if answer == Answer::Silence {
                    self.stats.let_expire += 1;
                }
                self.answers.insert(key.clone(), (answer.clone(), now + after));
                (answer, now + after)
            }
        };
        if now < due || answer == Answer::Silence {
            return;
        }
        let driver = self.cfg.cast.driver_user(vin).to_owned();
        let result = match answer {
            Answer::Decline(reason) => self.api.act(&driver, &order.id, "decline", Some(reason)).await,
            _ => self.api.act(&driver, &order.id, "accept", None).await,
        };
        // Answered once, whatever came of it: a late answer the server refused is the
        // driver's loss, as it would be a person's.
        self.answers.insert(key, (Answer::Silence, due));
        match (answer, result) {
            (Answer::Decline(_), Ok(_)) => self.stats.declined += 1,
            (_, Ok(accepted)) => {
                self.stats.accepted += 1;
                self.start_ride(&accepted, vin, Stage::ToPickup);
            }
            (_, Err(e)) if e.code() == Some("invalid_transition") => {}
            (_, Err(e)) => self.failed("answering an assignment", &e),
        }
    }

    fn start_ride(&mut self, order: &Order, vin: &Vin, stage: Stage) {
        let pickup = LatLon::new(order.pickup.lat, order.pickup.lon);
        let dropoff = LatLon::new(order.dropoff.lat, order.dropoff.lon);
        self.private.remove(vin);
        self.control.go_to(vin, if stage == Stage::ToDropoff { dropoff } else { pickup });
        self.rides.insert(order.id.clone(), Ride { vin: vin.clone(), pickup, dropoff, stage });
    }

    /// Moves each ride on: arrived at the pickup → boarding; boarded → picked up and off to
    /// the drop-off; arrived there → completed.
    async fn drive(&mut self) {
        let now = Instant::now();
        let ids: Vec<String> = self.rides.keys().cloned().collect();
        for id in ids {
            let Some(ride) = self.rides.get(&id).cloned() else { continue };
            let arrived_at = |to: LatLon| {
                !self.control.pending(&ride.vin)
                    && self
                        .control
                        .view(&ride.vin)
                        .is_some_and(|v| v.errand == Some(Errand::Arrived { at: graph().nearest_stop(to) }))
            };
            let driver = self.cfg.cast.driver_user(&ride.vin).to_owned();
            match ride.stage {
                Stage::ToPickup if arrived_at(ride.pickup) => {
                    let until = now + people::boarding(&mut self.rng);
                    self.set_stage(&id, Stage::Boarding { until });
                }
                Stage::Boarding { until } if now >= until => match self.api.act(&driver, &id, "pickup", None).await {
                    Ok(_) => {
                        self.stats.picked_up += 1;
                        self.control.go_to(&ride.vin, ride.dropoff);
                        self.set_stage(&id, Stage::ToDropoff);
                    }
                    Err(e) => self.ride_failed(&id, "picking up", &e),
                },
                Stage::ToDropoff if arrived_at(ride.dropoff) => {
                    match self.api.act(&driver, &id, "complete", None).await {
                        Ok(_) => {
                            self.stats.completed += 1;
                            self.rides.remove(&id);
                        }
                        Err(e) => self.ride_failed(&id, "completing", &e),
                    }
                }
                Stage::ToPickup | Stage::ToDropoff => {
                    // Sent back on its way if something else took the car (it went to charge).
                    let lost = self.control.view(&ride.vin).is_some_and(|v| v.errand.is_none())
                        && !self.control.pending(&ride.vin);
                    if lost {
                        let to = if ride.stage == Stage::ToPickup { ride.pickup } else { ride.dropoff };
                        self.control.go_to(&ride.vin, to);
                    }
                }
                Stage::Boarding { .. } => {}
            }
        }
    }

    fn set_stage(&mut self, id: &str, stage: Stage) {
        if let Some(r) = self.rides.get_mut(id) {
            r.stage = stage;
        }
    }

    /// A ride whose order moved on without the driver (canceled, taken over) is dropped.
    fn ride_failed(&mut self, id: &str, what: &str, e: &ApiError) {
        if e.code() == Some("invalid_transition") || e.code() == Some("not_found") {
            self.rides.remove(id);
        } else {
            self.failed(what, e);
        }
    }

    /// Now and then a driver takes an idle car somewhere without an order: mostly across the
    /// islands, now and then (one car at a time) over the bridges to Yuyao, outside the service
    /// area, where it stays a while before it is driven back. Bringing it back takes the turn of
    /// a new private trip, so trips without an order start at most three an hour.
    fn take_private_trip(&mut self, now: Instant) {
        let control = &self.control;
        self.private.retain(|v, trip| match trip {
            Private::Local => {
                control.pending(v) || control.view(v).is_some_and(|c| matches!(c.errand, Some(Errand::EnRoute { .. })))
            }
            Private::Away { arrived, .. } => {
                if arrived.is_none()
                    && !control.pending(v)
                    && control.view(v).is_some_and(|c| matches!(c.errand, Some(Errand::Arrived { .. })))
                {
                    *arrived = Some(now);
                }
                true
            }
        });
        if now < self.next_private {
            return;
        }
        let gap = exp_gap(&mut self.rng, self.cfg.private_trips_per_hour / 3600.0);
        self.next_private = now + gap.max(PRIVATE_MIN_GAP);
        let stayed = self.private.iter().find_map(|(v, trip)| match trip {
            Private::Away { home, arrived: Some(at) } if now.duration_since(*at) >= AWAY_STAY => {
                Some((v.clone(), *home))
            }
            _ => None,
        });
        if let Some((vin, home)) = stayed {
            tracing::info!(vehicle.vin = %vin, "order simulator: a car taken out of the service area is driven back");
            self.control.go_to(&vin, home);
            self.private.insert(vin, Private::Local);
            self.stats.private_trips += 1;
            return;
        }
        let someone_away = self.private.values().any(|t| matches!(t, Private::Away { .. }));
        let away = !someone_away && self.rng.random_bool(AWAY_SHARE);
        self.start_private_trip(away);
    }

    /// Takes an idle car (with charge for the way there and back when `away`) for a private
    /// trip; none when no car is free.
    fn start_private_trip(&mut self, away: bool) {
        let busy: HashSet<&Vin> =
            self.rides.values().map(|r| &r.vin).chain(self.answers.keys().map(|k| &k.1)).collect();
        let min_soc = if away { AWAY_MIN_SOC } else { PRIVATE_MIN_SOC };
        let idle: Vec<(Vin, LatLon)> = self
            .control
            .vins()
            .into_iter()
            .filter(|v| !busy.contains(v) && !self.private.contains_key(v))
            .filter_map(|v| {
                let view = self.control.view(&v)?;
                (view.activity == CarActivity::Parked && view.soc_pct >= min_soc).then_some((v, view.position))
            })
            .collect();
        if idle.is_empty() {
            return;
        }
        let (vin, from) = idle[self.rng.random_range(0..idle.len())].clone();
        let (to, trip) = if away {
            (people::away_destination(), Private::Away { home: from, arrived: None })
        } else {
            (people::private_destination(&mut self.rng, from), Private::Local)
        };
        tracing::info!(vehicle.vin = %vin, to = %to.name, "order simulator: a driver takes a car for a private trip");
        self.control.go_to(&vin, LatLon::new(to.lat, to.lon));
        self.private.insert(vin, trip);
        self.stats.private_trips += 1;
    }
}

/// A car out on a private trip.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Private {
    /// Somewhere on the islands (it stays where it went).
    Local,
    /// Out of the service area, to be driven back `home` once it has stayed [`AWAY_STAY`].
    Away { home: LatLon, arrived: Option<Instant> },
}

#[cfg(test)]
mod tests;
