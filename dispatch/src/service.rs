//! The dispatch service: every batch interval, the leader among the instances on one
//! database expires unanswered assignments, matches the due orders to free cars by the
//! engine's exact optimum, records each assignment through the order lifecycle (one
//! transaction each, refused by the database if it would double-book a car), records why
//! the others wait, and announces every change on the bus (the live feed tells drivers).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fleet_bus::{Bus, Event};
use fleet_domain::feasibility::{GeoPoint, TimeWindow};
use fleet_domain::{DispatchParams, Duty, OrderAction, OrderStatus, VehicleStatus, Vin};
use fleet_storage::{Act, Acted, Actor, Leadership, OrderRecord, StorageError, Store};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::batch::{BatchCar, BatchOrder, assign_optimal};

/// The advisory lock that elects the one batch leader.
pub const LEADER_LOCK: &str = "fleet.dispatch.leader";
/// Reason recorded when a driver lets an assignment time out.
pub const ACCEPT_TIMEOUT_REASON: &str = "accept_timeout";

/// The dispatch service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub params: DispatchParams,
    /// Due orders are matched this often (default 2 s).
    pub batch_interval: Duration,
    /// A driver's time to accept (default 30 s).
    pub accept_timeout: Duration,
    /// Orders are matched (and their cars reserved) this long before pickup.
    pub lead: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            params: DispatchParams::default(),
            batch_interval: Duration::from_secs(2),
            accept_timeout: Duration::from_secs(30),
            lead: Duration::from_secs(30 * 60),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub expired: usize,
    pub due: usize,
    pub assigned: usize,
    pub waiting: usize,
}

/// The dispatch service.
pub struct Dispatcher {
    cfg: Config,
    store: Store,
    bus: Bus,
}

impl Dispatcher {
    pub fn new(cfg: Config, store: Store, bus: Bus) -> Self {
        Self { cfg, store, bus }
    }

    /// Runs batches until `shutdown`; only the leader works, the others keep trying to lead.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.batch_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut leadership: Option<Leadership> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Some(l) = &mut leadership
                && !l.holds().await
            {
                tracing::warn!("dispatch lost its leadership");
                leadership = None;
            }
            if leadership.is_none() {
                match self.store.try_lead(LEADER_LOCK).await {
                    Ok(Some(l)) => {
                        tracing::info!("dispatch leads the batches");
                        leadership = Some(l);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "dispatch cannot reach the database to lead"),
                }
                metrics::gauge!("fleet_dispatch_leader").set(if leadership.is_some() { 1.0 } else { 0.0 });
            }
            if leadership.is_none() {
                continue;
            }
            let started = Instant::now();
            match self.batch(Utc::now()).await {
                Ok(r) => {
                    metrics::histogram!("fleet_dispatch_batch_seconds").record(started.elapsed().as_secs_f64());
                    metrics::counter!("fleet_dispatch_orders_assigned_total").increment(r.assigned as u64);
                    metrics::counter!("fleet_dispatch_orders_expired_total").increment(r.expired as u64);
                    metrics::gauge!("fleet_dispatch_orders_waiting").set(r.waiting as f64);
                    if r.assigned + r.expired > 0 {
                        tracing::info!(
                            dispatch.due = r.due,
                            dispatch.assigned = r.assigned,
                            dispatch.waiting = r.waiting,
                            dispatch.expired = r.expired,
                            latency_ms = started.elapsed().as_millis() as u64,
                            "dispatch batch"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "dispatch batch failed; the next one retries"),
            }
        }
    }

    /// One batch at `now`: expire, match, record.
    pub async fn batch(&self, now: DateTime<Utc>) -> Result<BatchReport, StorageError> {
        let mut report = BatchReport { expired: self.expire(now).await?, ..BatchReport::default() };
        let lead = chrono::Duration::from_std(self.cfg.lead).unwrap_or(chrono::Duration::minutes(30));
        let due = self.store.orders().due(now + lead).await?;
        report.due = due.len();
        if due.is_empty() {
            return Ok(report);
        }
        let exclusions = self.store.orders().exclusions_of_waiting().await?;
        let cars = self.cars(now).await?;
        let orders: Vec<BatchOrder<usize, Vin>> = due
            .iter()
            .enumerate()
            .map(|(i, r)| BatchOrder {
                id: i,
                pickup: GeoPoint::new(r.order.pickup.lat, r.order.pickup.lon),
                dropoff: GeoPoint::new(r.order.dropoff.lat, r.order.dropoff.lon),
                passengers: r.order.passengers,
                window: TimeWindow::new(r.window_start, r.window_end),
                excluded: exclusions.get(&r.order.id).cloned().unwrap_or_default(),
            })
            .collect();
        let batch_cars: Vec<BatchCar<Vin>> = cars.iter().map(|c| c.batch.clone()).collect();
        let outcome = assign_optimal(&self.cfg.params, &orders, &batch_cars)
            .map_err(|e| StorageError::Corrupt(format!("the batch is beyond the solver: {e:?}")))?;
        let drivers: HashMap<&Vin, &String> = cars.iter().map(|c| (&c.batch.key, &c.driver_id)).collect();
        let dispatch = Actor::dispatch();
        for m in &outcome.matches {
            let record = &due[m.order];
            let car = (m.car.clone(), drivers.get(&m.car).map(|d| (*d).clone()));
            let reason = format!("pickup {:.1} km", f64::from(m.pickup_m) / 1000.0);
            let act = Act {
                action: OrderAction::Assign,
                actor: &dispatch,
                reason: Some(&reason),
                car: Some(car),
                expected_version: Some(record.version),
            };
            match self.store.orders().act(&record.order.id, &act, now).await {
                Ok(Some(Acted::Changed(r))) => {
                    report.assigned += 1;
                    self.announce(&r);
                }
                Ok(_) => {}
                // Someone acted on the order or took the car meanwhile: the next batch sees it.
                Err(StorageError::Stale | StorageError::VehicleBusy | StorageError::InvalidTransition { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        report.waiting = outcome.waiting.len();
        for w in &outcome.waiting {
            let record = &due[w.order];
            if self.store.orders().set_unmatched_reason(&record.order.id, Some(w.reason.code())).await?
                && let Some(r) = self.store.orders().get(&record.order.id).await?
            {
                self.announce(&r);
            }
        }
        Ok(report)
    }

    /// Assignments a driver did not answer in time go back to the pool, that car excluded.
    async fn expire(&self, now: DateTime<Utc>) -> Result<usize, StorageError> {
        let timeout = chrono::Duration::from_std(self.cfg.accept_timeout).unwrap_or(chrono::Duration::seconds(30));
        let dispatch = Actor::dispatch();
        let mut n = 0;
        for record in self.store.orders().unanswered_since(now - timeout).await? {
            let act = Act {
                action: OrderAction::Expire,
                actor: &dispatch,
                reason: Some(ACCEPT_TIMEOUT_REASON),
                car: None,
                expected_version: Some(record.version),
            };
            match self.store.orders().act(&record.order.id, &act, now).await {
                Ok(Some(Acted::Changed(r))) => {
                    n += 1;
                    self.announce(&r);
                }
                Ok(_) | Err(StorageError::Stale | StorageError::InvalidTransition { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Every car with a driver, as the engine sees it now.
    async fn cars(&self, now: DateTime<Utc>) -> Result<Vec<Candidate>, StorageError> {
        let vehicles = self.store.vehicles().list(None).await?;
        let states: HashMap<Vin, fleet_domain::VehicleState> =
            self.store.telemetry().states().await?.into_iter().map(|s| (s.vin.clone(), s)).collect();
        // Retired drivers and cars are never dispatched; a car in the workshop shows as such.
        let drivers: HashMap<Vin, String> = self
            .store
            .drivers()
            .list()
            .await?
            .into_iter()
            .filter(|d| !d.retired)
            .filter_map(|d| d.vehicle_vin.map(|v| (v, d.id)))
            .collect();
        let occupying = self.store.orders().occupying().await?;
        let mut duty: HashMap<&Vin, Duty> = HashMap::new();
        let mut reservations: HashMap<&Vin, Vec<TimeWindow>> = HashMap::new();
        for o in &occupying {
            let Some(vin) = &o.order.vin else { continue };
            reservations.entry(vin).or_default().push(TimeWindow::new(o.window_start, o.window_end));
            let d = duty.entry(vin).or_default();
            if o.order.status == OrderStatus::PickedUp {
                d.on_trip = true;
            } else if o.window_start <= now {
                d.assigned = true;
            }
        }
        Ok(vehicles
            .into_iter()
            .filter(|v| !v.retired)
            .filter_map(|v| {
                let driver_id = drivers.get(&v.vin)?.clone();
                let state = states.get(&v.vin)?;
                let (Some(lat), Some(lon)) = (state.lat, state.lon) else { return None };
                let car_duty = duty.get(&v.vin).copied().unwrap_or_default();
                let status = state.status(now, Duty { in_maintenance: v.file.in_maintenance, ..car_duty });
                let online = status != VehicleStatus::Offline;
                Some(Candidate {
                    batch: BatchCar {
                        position: GeoPoint::new(lat, lon),
                        seats: u32::try_from(v.seats).unwrap_or(0),
                        soc_pct: state.soc_pct,
                        battery_kwh: v.battery_kwh,
                        consumption_kwh_per_100km: v.consumption_kwh_per_100km,
                        online,
                        idle: status == VehicleStatus::Idle,
                        reservations: reservations.get(&v.vin).cloned().unwrap_or_default(),
                        key: v.vin,
                    },
                    driver_id,
                })
            })
            .collect())
    }

    fn announce(&self, record: &OrderRecord) {
        self.bus.publish(Event::OrderChanged(Arc::new(record.order.clone())));
    }
}

/// A car the batch may use, with its driver.
struct Candidate {
    batch: BatchCar<Vin>,
    driver_id: String,
}
