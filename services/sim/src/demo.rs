//! The Zhoushan demo data set for `fleetd run --demo`: municipal units, about sixty EVs with
//! 浙L green plates, their drivers, the demo users (all with the password `demo`), charging
//! sites, a month of driving history from the same car model the live simulator uses, and
//! the orders that history served.
//! Pure: building it touches no database; the caller stores it.

mod history;
mod orders;
mod registry;

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_domain::{NewDriver, NewUnit, NewUser, NewVehicle, Sample};

pub use self::history::PARKED_REPORT_EVERY;
pub use self::orders::{Cast, orders_for};
pub use self::registry::{costs, tariff, vehicle_file};
use crate::places::{CHARGERS, PLACES, place_index};

/// Share of the demo's cars that speak GB/T 32960 instead of JSON (the soak bench's default
/// too, so that it measures the demo's mix).
pub const DEMO_GBT32960_SHARE: f64 = 0.3;

/// One in this many demo cars is a GB/T 32960 terminal on fleetd's TCP gateway, and as many
/// a JT/T 808 (Beidou) terminal on the other gateway, when the gateways run.
pub const DEMO_TCP_EVERY: usize = 6;

/// The demo's cars by the way they report.
#[derive(Debug, Clone, Default)]
pub struct DemoWays {
    /// Publishing to the broker (JSON, or GB/T 32960 frames for [`DEMO_GBT32960_SHARE`]).
    pub mqtt: Vec<crate::SimVehicle>,
    /// GB/T 32960 terminals on the TCP gateway.
    pub gbt32960: Vec<crate::SimVehicle>,
    /// JT/T 808 terminals on the TCP gateway (each with its terminal phone).
    pub jt808: Vec<crate::SimVehicle>,
}

/// Splits the cars between the ways in: one in [`DEMO_TCP_EVERY`] to each gateway that runs
/// (the JT/T 808 one only with a terminal phone), the rest to the broker.
pub fn ways_in(vehicles: Vec<crate::SimVehicle>, gbt32960: bool, jt808: bool) -> DemoWays {
    let mut ways = DemoWays::default();
    for (i, v) in vehicles.into_iter().enumerate() {
        match i % DEMO_TCP_EVERY {
            0 if gbt32960 => ways.gbt32960.push(v),
            1 if jt808 && v.terminal_phone.is_some() => ways.jt808.push(v),
            _ => ways.mqtt.push(v),
        }
    }
    ways
}

/// The demo's order rate in working hours (orders a minute; lower in the evening and at
/// night): enough to keep well over a sixth of its sixty cars on the road at any hour, each
/// order holding a car for ten to twenty minutes.
pub const DEMO_ORDERS_PER_MIN: f64 = 2.5;
/// Conferences a day, each booking a burst of trips to one venue.
pub const DEMO_BURSTS_PER_DAY: f64 = 3.0;
/// Private trips an hour the demo takes with idle cars, for the misuse list (never more than
/// three an hour: they come at least twenty minutes apart).
pub const DEMO_PRIVATE_TRIPS_PER_HOUR: f64 = 1.0;

/// The demo's people as the order simulator acts for them: the dispatcher watches, each
/// unit's user applies and approves, each car's driver drives it.
pub fn operator_cast() -> crate::operator::Cast {
    let data = demo_data();
    let driver_car: std::collections::HashMap<&str, &str> =
        data.drivers.iter().filter_map(|d| Some((d.id.as_deref()?, d.vehicle_vin.as_deref()?))).collect();
    let mut units = std::collections::HashMap::new();
    let mut drivers = std::collections::HashMap::new();
    for u in &data.users {
        match u.role {
            fleet_domain::Role::Unit => {
                if let Some(unit) = &u.unit_id {
                    units.insert(unit.clone(), u.username.clone());
                }
            }
            fleet_domain::Role::Driver => {
                let car = u.driver_id.as_deref().and_then(|d| driver_car.get(d));
                if let Some(vin) = car.and_then(|v| fleet_domain::Vin::parse(v).ok()) {
                    drivers.insert(vin, u.username.clone());
                }
            }
            _ => {}
        }
    }
    crate::operator::Cast::Each {
        password: DEMO_PASSWORD.to_owned(),
        overseer: "dispatcher".to_owned(),
        units,
        drivers,
    }
}

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "demo";

/// Everything the demo registers.
#[derive(Debug, Clone)]
pub struct DemoData {
    pub units: Vec<NewUnit>,
    pub vehicles: Vec<NewVehicle>,
    pub drivers: Vec<NewDriver>,
    /// `admin`, `dispatcher`, `auditor`, `unit01`… and `driver01`…, password [`DEMO_PASSWORD`].
    pub users: Vec<NewUser>,
    pub charging_stations: Vec<ChargingStation>,
}

/// A public charging site (the stored type itself: the demo data is loaded as is).
pub use fleet_storage::ChargingStation;

/// The demo data set. Deterministic: the same on every call.
pub fn demo_data() -> DemoData {
    let units = registry::units();
    let vehicles = registry::vehicles(&units);
    let drivers = registry::drivers(&vehicles);
    let users = registry::users(&units, &drivers);
    let charging_stations = CHARGERS
        .iter()
        .map(|c| {
            let place = &PLACES[place_index(c.place)];
            ChargingStation {
                id: c.id.to_owned(),
                name: c.name_zh.to_owned(),
                lat: place.lat,
                lon: place.lon,
                power_kw: c.power_kw,
            }
        })
        .collect();
    DemoData { units, vehicles, drivers, users, charging_stations }
}

/// A month of realistic history for the demo vehicles ending at `end`: working-day trips
/// between places with samples every `step`, charging sessions, overnight parking.
/// Deterministic.
///
/// Cars come one after another, each in time order. A parked car reports once when it
/// arrives and then every [`PARKED_REPORT_EVERY`], so the history stays a few hundred
/// thousand samples for sixty cars over thirty days at a 30 s step; it is generated lazily,
/// one car at a time. Vehicles whose VIN is invalid are skipped.
pub fn history(
    vehicles: &[NewVehicle],
    end: DateTime<Utc>,
    days: u32,
    step: Duration,
    seed: u64,
) -> impl Iterator<Item = Sample> + use<> {
    history::history(vehicles, end, days, step, seed)
}

#[cfg(test)]
mod tests;
