//! Steering simulated cars from outside the simulator: the demo's drivers ([`crate::operator`])
//! send a car to an order's pickup and on to its drop-off, and watch where it is.
//!
//! A [`Control`] is shared between whoever steers and the simulator runs that step the cars;
//! each run attaches the cars it drives and, every time it steps one, hands it the latest
//! destination it was given and leaves a [`CarView`] of it behind. A car no run has attached
//! yet is unknown: [`Control::go_to`] says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use fleet_domain::Vin;

use crate::car::{Car, CarActivity, Errand};
use crate::geo::LatLon;

/// What a steered car looked like when it was last stepped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CarView {
    pub position: LatLon,
    pub activity: CarActivity,
    pub soc_pct: f64,
    pub errand: Option<Errand>,
}

#[derive(Debug, Default)]
struct Slot {
    /// A destination not yet handed to the car.
    go_to: Option<LatLon>,
    view: Option<CarView>,
}

/// The steerable cars; clone freely.
#[derive(Debug, Clone, Default)]
pub struct Control(Arc<Mutex<HashMap<Vin, Arc<Mutex<Slot>>>>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Control {
    /// Sends the car to `to` when it is next stepped (a later call before then wins). False
    /// if no simulator run drives it.
    pub fn go_to(&self, vin: &Vin, to: LatLon) -> bool {
        let Some(slot) = lock(&self.0).get(vin).cloned() else { return false };
        lock(&slot).go_to = Some(to);
        true
    }

    /// The car as it was last stepped (a destination not handed to it yet: [`Self::pending`]).
    pub fn view(&self, vin: &Vin) -> Option<CarView> {
        let slot = lock(&self.0).get(vin).cloned()?;
        let slot = lock(&slot);
        slot.view
    }

    /// Whether a destination given to the car has not reached it yet.
    pub fn pending(&self, vin: &Vin) -> bool {
        lock(&self.0).get(vin).is_some_and(|slot| lock(slot).go_to.is_some())
    }

    /// The cars attached so far.
    pub fn vins(&self) -> Vec<Vin> {
        lock(&self.0).keys().cloned().collect()
    }

    /// Lets this control steer `car` (a simulator run calls it for each of its cars).
    pub(crate) fn attach(&self, car: &Car) -> Attached {
        let slot = Arc::new(Mutex::new(Slot { go_to: None, view: Some(view_of(car)) }));
        lock(&self.0).insert(car.vin().clone(), slot.clone());
        Attached(slot)
    }
}

/// One car's end of a [`Control`], held by the run that steps it.
#[derive(Debug)]
pub(crate) struct Attached(Arc<Mutex<Slot>>);

impl Attached {
    /// Before a step: hands the car its new destination, if one came.
    pub(crate) fn steer(&self, car: &mut Car) {
        if let Some(to) = lock(&self.0).go_to.take() {
            car.go_to(to);
        }
    }

    /// After a step: leaves a view of the car for the steering side.
    pub(crate) fn report(&self, car: &Car) {
        lock(&self.0).view = Some(view_of(car));
    }
}

fn view_of(car: &Car) -> CarView {
    CarView { position: car.position(), activity: car.activity(), soc_pct: car.soc_pct(), errand: car.errand() }
}

/// A car as a simulator run holds it: steered through a [`Control`] when the run has one.
#[derive(Debug)]
pub(crate) struct Driven {
    car: Car,
    attached: Option<Attached>,
}

impl Driven {
    pub(crate) fn new(car: Car, control: Option<&Control>) -> Self {
        let attached = control.map(|c| c.attach(&car));
        Self { car, attached }
    }

    /// Takes any new destination, advances the car by `dt` and reports its sample.
    pub(crate) fn step(&mut self, dt: std::time::Duration) -> fleet_domain::Sample {
        if let Some(a) = &self.attached {
            a.steer(&mut self.car);
        }
        let sample = self.car.step(dt);
        if let Some(a) = &self.attached {
            a.report(&self.car);
        }
        sample
    }
}

impl std::ops::Deref for Driven {
    type Target = Car;
    fn deref(&self) -> &Car {
        &self.car
    }
}
