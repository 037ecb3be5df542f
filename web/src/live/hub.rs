//! The hub: the one task that turns bus events into frames. It never waits for a client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fleet_bus::{Bus, Event};
use fleet_domain::{Order, Vin};
use fleet_storage::{StorageError, Store};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior};

use super::fleet::Fleet;
use super::{Changed, Frame, Live, OrderFrame, Positions, TICK};

/// Every this many ticks, every car's status is re-derived (a silent car turns offline).
const STATUS_SWEEP_TICKS: u32 = 4;
/// After a failed load from storage, the next try waits this long.
const RELOAD_RETRY: Duration = Duration::from_secs(2);

/// Runs the hub until `live.stop` is cancelled: loads every car from storage, then follows
/// the bus. Subscribes before loading, so nothing committed meanwhile is missed.
pub(crate) async fn run(live: Arc<Live>, store: Store, bus: Bus) {
    let mut events = bus.subscribe();
    let mut hub =
        Hub { live, store, dirty: HashMap::new(), unknown: Vec::new(), order_drivers: HashMap::new(), reload_at: None };
    while !hub.reload().await {
        tokio::select! {
            () = hub.live.stop.cancelled() => return,
            () = tokio::time::sleep(RELOAD_RETRY) => {}
        }
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        tokio::select! {
            () = hub.live.stop.cancelled() => break,
            event = events.recv() => match event {
                Ok(Event::SamplesCommitted(samples)) => hub.samples(&samples),
                Ok(Event::OrderChanged(order)) => hub.order(&order),
                Ok(Event::VehicleChanged(vehicle)) => {
                    let now = Utc::now();
                    let mut fleet = hub.live.fleet.write().unwrap_or_else(|e| e.into_inner());
                    let prev = fleet.cars.get(&vehicle.vin).and_then(|c| c.pos());
                    fleet.upsert_vehicle((*vehicle).clone(), None, now);
                    hub.dirty.entry(vehicle.vin.clone()).or_insert(prev);
                }
                Ok(Event::Resync) => {
                    tracing::warn!("events from another instance may be missing; reloading from storage");
                    hub.resync().await;
                }
                Ok(Event::TokensRevoked(revoked)) => {
                    let _ = hub.live.frames.send(Arc::new(Frame::Revoked(revoked)));
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(events.missed = missed, "live feed fell behind the bus; reloading from storage");
                    hub.resync().await;
                }
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                ticks = ticks.wrapping_add(1);
                if hub.reload_at.is_some_and(|at| at <= Instant::now()) {
                    hub.resync().await;
                }
                hub.resolve_unknown().await;
                if ticks.is_multiple_of(STATUS_SWEEP_TICKS) {
                    hub.sweep();
                }
                hub.flush();
            }
        }
    }
}

struct Hub {
    live: Arc<Live>,
    store: Store,
    /// Cars changed since the last tick, with their position at the previous tick.
    dirty: HashMap<Vin, Option<(f64, f64)>>,
    /// VINs seen in samples but not in the fleet, looked up at the next tick.
    unknown: Vec<Vin>,
    /// The driver each open order last had, to tell them when it is taken away.
    order_drivers: HashMap<String, String>,
    /// Set when a resync could not reload (the database was down): events were lost, so the
    /// reload is tried again from then on until it succeeds.
    reload_at: Option<Instant>,
}

impl Hub {
    /// Loads every car and state from storage; false (logged) when storage fails.
    async fn reload(&mut self) -> bool {
        match load(&self.store).await {
            Ok((vehicles, states, occupying)) => {
                let now = Utc::now();
                let mut fleet = Fleet::load(vehicles, states, now);
                for order in &occupying {
                    fleet.apply_order(order, now);
                    if let Some(driver) = &order.driver_id {
                        self.order_drivers.insert(order.id.clone(), driver.clone());
                    }
                }
                tracing::info!(live.cars = fleet.cars.len(), "live feed loaded the fleet");
                *self.live.fleet.write().unwrap_or_else(|e| e.into_inner()) = fleet;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "live feed could not load the fleet");
                false
            }
        }
    }

    fn samples(&mut self, samples: &[fleet_domain::Sample]) {
        let absorbed = self.live.fleet.write().unwrap_or_else(|e| e.into_inner()).absorb(samples);
        for (vin, prev) in absorbed.changed {
            self.dirty.entry(vin).or_insert(prev);
        }
        self.unknown.extend(absorbed.unknown);
    }

    /// Reloads every car from storage and sends every client a fresh snapshot.
    async fn resync(&mut self) {
        metrics::counter!("fleet_live_resyncs_total").increment(1);
        if self.reload().await {
            self.reload_at = None;
            self.dirty.clear();
            let _ = self.live.frames.send(Arc::new(Frame::Resync));
        } else {
            self.reload_at = Some(Instant::now() + RELOAD_RETRY);
        }
    }

    /// An order changed: its car's duty (hence status) follows, and the change goes out at once.
    fn order(&mut self, order: &Order) {
        {
            let mut fleet = self.live.fleet.write().unwrap_or_else(|e| e.into_inner());
            for vin in fleet.apply_order(order, Utc::now()) {
                let pos = fleet.cars.get(&vin).and_then(|c| c.pos());
                self.dirty.entry(vin).or_insert(pos);
            }
        }
        let msg = serde_json::json!({"type": "order", "order": order}).to_string();
        let previous_driver_id = match (&order.driver_id, order.status.is_final()) {
            (Some(d), false) => self.order_drivers.insert(order.id.clone(), d.clone()),
            _ => self.order_drivers.remove(&order.id),
        }
        .filter(|prev| order.driver_id.as_ref() != Some(prev));
        // The driver it left learns that it left them, not who has it now.
        let for_previous = previous_driver_id
            .as_ref()
            .map(|_| serde_json::json!({"type": "order", "order": order.seen_by_former_driver()}).to_string().into());
        let frame = OrderFrame {
            unit_id: order.unit_id.clone(),
            driver_id: order.driver_id.clone(),
            previous_driver_id,
            msg: msg.into(),
            for_previous,
        };
        let _ = self.live.frames.send(Arc::new(Frame::Order(frame)));
    }

    /// Cars registered after the load: fetched once, then followed like the rest.
    async fn resolve_unknown(&mut self) {
        if self.unknown.is_empty() {
            return;
        }
        let mut vins = std::mem::take(&mut self.unknown);
        vins.sort();
        vins.dedup();
        for vin in vins {
            if self.live.fleet.read().unwrap_or_else(|e| e.into_inner()).cars.contains_key(&vin) {
                continue;
            }
            let found = async {
                let vehicle = self.store.vehicles().get(vin.as_str()).await?;
                let state = self.store.telemetry().state(vin.as_str()).await?;
                Ok::<_, StorageError>(vehicle.map(|v| (v, state)))
            }
            .await;
            match found {
                Ok(Some((vehicle, state))) => {
                    self.live.fleet.write().unwrap_or_else(|e| e.into_inner()).upsert_vehicle(
                        vehicle,
                        state,
                        Utc::now(),
                    );
                    self.dirty.insert(vin, None);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(vehicle.vin = %vin, error = %e, "live feed could not look up a vehicle"),
            }
        }
    }

    /// Re-derives every car's status; a change makes the car dirty.
    fn sweep(&mut self) {
        let now = Utc::now();
        let mut fleet = self.live.fleet.write().unwrap_or_else(|e| e.into_inner());
        for (vin, car) in &mut fleet.cars {
            if car.restatus(now) {
                self.dirty.entry(vin.clone()).or_insert(car.pos());
            }
        }
    }

    /// Serializes every dirty car once and broadcasts one `positions` frame.
    fn flush(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let now = Utc::now();
        let mut cars = Vec::with_capacity(self.dirty.len());
        {
            let mut fleet = self.live.fleet.write().unwrap_or_else(|e| e.into_inner());
            for (vin, prev) in self.dirty.drain() {
                let Some(car) = fleet.cars.get_mut(&vin) else { continue };
                car.refresh(now);
                cars.push(Changed {
                    unit_id: car.vehicle.unit_id.clone(),
                    pos: car.pos(),
                    prev,
                    json: car.json.clone(),
                    vin,
                });
            }
        }
        if cars.is_empty() {
            return;
        }
        let all = positions_message(cars.iter().map(|c| &*c.json)).into();
        metrics::counter!("fleet_live_cars_sent_total").increment(cars.len() as u64);
        let _ = self.live.frames.send(Arc::new(Frame::Positions(Positions { cars, all })));
    }
}

/// Every car, every state, and the orders that occupy cars (their duties).
async fn load(
    store: &Store,
) -> Result<(Vec<fleet_domain::Vehicle>, Vec<fleet_domain::VehicleState>, Vec<Order>), StorageError> {
    let occupying = store.orders().occupying().await?.into_iter().map(|r| r.order).collect();
    Ok((store.vehicles().list(None).await?, store.telemetry().states().await?, occupying))
}

/// `{"type":"positions","vehicles":[…]}` from cars' JSON.
pub(crate) fn positions_message<'a>(cars: impl Iterator<Item = &'a str>) -> String {
    vehicles_message("positions", cars)
}

/// A message of `kind` carrying cars' JSON as `vehicles`.
pub(crate) fn vehicles_message<'a>(kind: &str, cars: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push_str("\",\"vehicles\":[");
    for (i, car) in cars.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(car);
    }
    out.push_str("]}");
    out
}
