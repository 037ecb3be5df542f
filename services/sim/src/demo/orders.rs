//! Demo orders for the demo history: the official trips a month of driving served, so the
//! statistics, budgets and the misuse list of a fresh demo look like a real fleet's. Each
//! working-hours trip of a car gets an order of the car's unit (or of a unit picked for a
//! pool car) that went create → assign → accept → pickup → complete around the trip; a few
//! trips are left without one (they show as misuse alarms, as some would).

use std::collections::HashMap;

use chrono::{Datelike, Duration, Timelike, Weekday};
use fleet_domain::trips::{DeriveParams, Trip, china_offset, derive};
use fleet_domain::{
    NewDriver, NewUnit, NewUser, NewVehicle, Order, OrderAction, OrderEvent, OrderStatus, Place, Role, Sample,
};
use fleet_storage::{HistoricOrder, OrderRecord};

use crate::places::PLACES;

/// Trips shorter than this get no order (moving in a car park).
const MIN_KM: f64 = 0.5;
/// One working-hours trip in this many is left without an order.
const WITHOUT_ORDER_EVERY: u64 = 25;

const PURPOSES: [&str; 8] = ["会议", "调研", "检查工作", "公务接待", "文件送达", "项目督查", "防汛检查", "走访企业"];

/// A car's unit, driver id and driver's username.
type Crew = (Option<String>, Option<String>, Option<String>);

/// Who the demo's orders name.
pub struct Cast {
    /// VIN → the car's crew.
    cars: HashMap<String, Crew>,
    /// Unit id → the unit user's username.
    unit_users: HashMap<String, String>,
    units: Vec<String>,
}

impl Cast {
    pub fn new(units: &[NewUnit], vehicles: &[NewVehicle], drivers: &[NewDriver], users: &[NewUser]) -> Self {
        let driver_user: HashMap<&str, &str> = users
            .iter()
            .filter(|u| u.role == Role::Driver)
            .filter_map(|u| Some((u.driver_id.as_deref()?, u.username.as_str())))
            .collect();
        let car_driver: HashMap<&str, &str> =
            drivers.iter().filter_map(|d| Some((d.vehicle_vin.as_deref()?, d.id.as_deref()?))).collect();
        let cars = vehicles
            .iter()
            .map(|v| {
                let driver = car_driver.get(v.vin.as_str()).map(|d| (*d).to_owned());
                let user = driver.as_deref().and_then(|d| driver_user.get(d)).map(|u| (*u).to_owned());
                (v.vin.clone(), (v.unit_id.clone(), driver, user))
            })
            .collect();
        let unit_users = users
            .iter()
            .filter(|u| u.role == Role::Unit)
            .filter_map(|u| Some((u.unit_id.clone()?, u.username.clone())))
            .collect();
        Self { cars, unit_users, units: units.iter().filter_map(|u| u.id.clone()).collect() }
    }
}

/// The nearest named place to a point (the names drivers and units would use).
fn place_at(lat: f64, lon: f64) -> Place {
    let nearest = PLACES.iter().min_by(|a, b| {
        let d = |p: &&crate::places::Place| (p.lat - lat).powi(2) + ((p.lon - lon) * 0.87).powi(2);
        d(a).total_cmp(&d(b))
    });
    Place { lat, lon, name: nearest.map_or("舟山", |p| p.name_zh).to_owned() }
}

fn working_hours(trip: &Trip) -> bool {
    let local = trip.start_ts.with_timezone(&china_offset());
    !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (7..20).contains(&local.hour())
}

/// The orders one car's history served; `samples` are that car's, in any order.
pub fn orders_for(cast: &Cast, samples: &[Sample], battery_kwh: f64, seq: &mut u64) -> Vec<HistoricOrder> {
    let Some(first) = samples.first() else { return Vec::new() };
    let Some((unit, Some(driver_id), Some(driver_user))) = cast.cars.get(first.vin.as_str()).cloned() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for trip in derive(samples, battery_kwh, &DeriveParams::default()).trips {
        *seq += 1;
        if trip.open || trip.distance_km < MIN_KM || !working_hours(&trip) || seq.is_multiple_of(WITHOUT_ORDER_EVERY) {
            continue;
        }
        let unit = unit.clone().unwrap_or_else(|| cast.units[(*seq as usize) % cast.units.len().max(1)].clone());
        let clerk = cast.unit_users.get(&unit).cloned().unwrap_or_else(|| "dispatcher".to_owned());
        let at = |mins: i64| trip.start_ts + Duration::minutes(mins);
        let order = Order {
            id: format!("o-demo-{seq:06}"),
            unit_id: unit,
            status: OrderStatus::Completed,
            passengers: 1 + (*seq % 3) as u32,
            pickup: place_at(trip.start.lat, trip.start.lon),
            dropoff: place_at(trip.end.lat, trip.end.lon),
            pickup_at: trip.start_ts,
            purpose: PURPOSES[(*seq as usize) % PURPOSES.len()].to_owned(),
            vin: Some(trip.vin.clone()),
            driver_id: Some(driver_id.clone()),
            unmatched_reason: None,
            assigned_at: Some(at(-20)),
        };
        let event = |ts, actor: &str, action, from, to| OrderEvent {
            ts,
            actor: actor.to_owned(),
            action,
            from,
            to,
            reason: None,
            vin: Some(trip.vin.clone()),
            on_behalf: false,
        };
        use OrderStatus as S;
        let events = vec![
            (
                OrderEvent {
                    vin: None,
                    reason: Some("auto_approve".into()),
                    ..event(at(-30), &clerk, OrderAction::Create, None, S::Approved)
                },
                None,
            ),
            (event(at(-20), "dispatch", OrderAction::Assign, Some(S::Approved), S::Assigned), None),
            (event(at(-19), &driver_user, OrderAction::Accept, Some(S::Assigned), S::Accepted), None),
            (event(trip.start_ts, &driver_user, OrderAction::Pickup, Some(S::Accepted), S::PickedUp), None),
            (event(trip.end_ts, &driver_user, OrderAction::Complete, Some(S::PickedUp), S::Completed), None),
        ];
        let record =
            OrderRecord { window_start: at(-20), window_end: trip.end_ts, created_at: at(-30), version: 4, order };
        out.push(HistoricOrder { record, events });
    }
    out
}
