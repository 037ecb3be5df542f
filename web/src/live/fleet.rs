//! Every car's current state as the live feed knows it: the registry record, the state
//! merged from committed samples, the order duty, the derived status, and the car's
//! `VehicleState` JSON, re-serialized only when one of these changes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleet_domain::{Duty, Order, Sample, Vehicle, VehicleState, VehicleStatus, Vin};

use crate::api::vehicles::VehicleStateView;

/// One car.
#[derive(Debug)]
pub(crate) struct Car {
    pub vehicle: Vehicle,
    pub state: Option<VehicleState>,
    /// Time of the current position (see [`VehicleState::absorb`]).
    pos_ts: Option<DateTime<Utc>>,
    pub duty: Duty,
    /// The order the car holds, if any.
    order_id: Option<String>,
    pub status: VehicleStatus,
    pub json: Arc<str>,
}

impl Car {
    pub(crate) fn new(vehicle: Vehicle, state: Option<VehicleState>, now: DateTime<Utc>) -> Self {
        // Storage does not say when the position was taken; the state's time is its upper bound.
        let pos_ts = state.as_ref().filter(|s| s.lat.is_some()).map(|s| s.ts);
        let mut car = Self {
            vehicle,
            state,
            pos_ts,
            duty: Duty::default(),
            order_id: None,
            status: VehicleStatus::Offline,
            json: Arc::from(""),
        };
        car.refresh(now);
        car
    }

    pub(crate) fn pos(&self) -> Option<(f64, f64)> {
        let s = self.state.as_ref()?;
        Some((s.lat?, s.lon?))
    }

    /// Merges a committed sample; true when the state changed. A sample whose clock was ahead
    /// changes nothing (it is in the track, never on the map).
    fn absorb(&mut self, sample: &Sample) -> bool {
        if !sample.moves_state() {
            return false;
        }
        match &mut self.state {
            Some(state) => state.absorb(&mut self.pos_ts, sample),
            None => {
                let (state, pos_ts) = VehicleState::first(sample);
                self.state = Some(state);
                self.pos_ts = pos_ts;
                true
            }
        }
    }

    /// The order duty with the workshop's: a car the registry has in maintenance is in it.
    pub(crate) fn duty(&self) -> Duty {
        Duty { in_maintenance: self.duty.in_maintenance || self.vehicle.file.in_maintenance, ..self.duty }
    }

    /// Re-derives the status and, when anything shown may have changed, the JSON.
    pub(crate) fn refresh(&mut self, now: DateTime<Utc>) {
        let duty = self.duty();
        self.status = match &self.state {
            Some(s) => s.status(now, duty),
            None if duty.in_maintenance => VehicleStatus::Maintenance,
            None => VehicleStatus::Offline,
        };
        let view = VehicleStateView::with_status(&self.vehicle, self.state.as_ref(), self.status);
        self.json = Arc::from(serde_json::to_string(&view).unwrap_or_default());
    }

    /// Re-derives the status only; true when it changed (then the JSON is renewed too).
    pub(crate) fn restatus(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.status;
        let status = match &self.state {
            Some(s) => s.status(now, self.duty()),
            None => before,
        };
        if status == before {
            return false;
        }
        self.refresh(now);
        true
    }
}

/// Every car, by VIN.
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    pub cars: HashMap<Vin, Car>,
    /// Which car holds which order, so a reassignment frees the previous car.
    holders: HashMap<String, Vin>,
}

/// What merging a batch of samples found.
#[derive(Debug, Default)]
pub(crate) struct Absorbed {
    /// Cars whose state changed, each with its position before the change.
    pub changed: Vec<(Vin, Option<(f64, f64)>)>,
    /// VINs the feed does not know yet (registered after it loaded).
    pub unknown: Vec<Vin>,
}

impl Fleet {
    /// Replaces everything with a fresh load from storage.
    pub(crate) fn load(vehicles: Vec<Vehicle>, states: Vec<VehicleState>, now: DateTime<Utc>) -> Self {
        let mut states: HashMap<Vin, VehicleState> = states.into_iter().map(|s| (s.vin.clone(), s)).collect();
        let cars = vehicles
            .into_iter()
            .map(|v| {
                let state = states.remove(&v.vin);
                (v.vin.clone(), Car::new(v, state, now))
            })
            .collect();
        Self { cars, holders: HashMap::new() }
    }

    /// Merges committed samples (JSON is not renewed here: [`Fleet::refresh`] does it once per
    /// car per tick).
    pub(crate) fn absorb(&mut self, samples: &[Sample]) -> Absorbed {
        let mut out = Absorbed::default();
        for s in samples {
            match self.cars.get_mut(&s.vin) {
                Some(car) => {
                    let before = car.pos();
                    if car.absorb(s) {
                        out.changed.push((s.vin.clone(), before));
                    }
                }
                None => out.unknown.push(s.vin.clone()),
            }
        }
        out
    }

    /// Adds or replaces a car's registry record (its state is kept).
    pub(crate) fn upsert_vehicle(&mut self, vehicle: Vehicle, state: Option<VehicleState>, now: DateTime<Utc>) {
        match self.cars.get_mut(&vehicle.vin) {
            Some(car) => {
                car.vehicle = vehicle;
                car.refresh(now);
            }
            None => {
                self.cars.insert(vehicle.vin.clone(), Car::new(vehicle, state, now));
            }
        }
    }

    /// Applies an order change to its car's duty; returns the cars whose duty changed.
    pub(crate) fn apply_order(&mut self, order: &Order, now: DateTime<Utc>) -> Vec<Vin> {
        let mut touched = Vec::new();
        let holds = order.status.holds_car() || order.status.carries_passengers();
        // The car that held the order before, if it is no longer this order's car.
        if let Some(prev) = self.holders.get(&order.id).cloned()
            && (!holds || order.vin.as_ref() != Some(&prev))
        {
            self.holders.remove(&order.id);
            if let Some(car) = self.cars.get_mut(&prev)
                && car.order_id.as_deref() == Some(order.id.as_str())
            {
                car.order_id = None;
                car.duty.assigned = false;
                car.duty.on_trip = false;
                car.refresh(now);
                touched.push(prev);
            }
        }
        if holds
            && let Some(vin) = &order.vin
            && let Some(car) = self.cars.get_mut(vin)
        {
            self.holders.insert(order.id.clone(), vin.clone());
            car.order_id = Some(order.id.clone());
            car.duty.assigned = order.status.holds_car();
            car.duty.on_trip = order.status.carries_passengers();
            car.refresh(now);
            touched.push(vin.clone());
        }
        touched
    }
}
