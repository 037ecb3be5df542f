//! Trips that look like private use of an official car (公车私用): movement without an order,
//! outside working hours, or outside the service area (the car's service-area geofences, else
//! the default area). Read from the derived trips and charging sessions; the auditor's list
//! and the alarms both come from here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleet_domain::Vehicle;
use fleet_domain::geofence::{FenceKind, Shape};
use fleet_domain::trips::{ChargingSession, MisuseReason, MisuseRules, TripPurpose, drives_to_charge, misuse_reasons};
use fleet_storage::{StorageError, Store, StoredTrip};

/// Trips read for one window at most.
pub const MAX_TRIPS: i64 = 200_000;
/// Charging sessions read for one window at most.
pub const MAX_SESSIONS: i64 = 200_000;

/// A trip that looks like misuse, with its car and why.
#[derive(Debug, Clone)]
pub struct MisuseTrip {
    pub trip: StoredTrip,
    pub vehicle: Vehicle,
    pub reasons: Vec<MisuseReason>,
}

/// The trips starting in `[start, end)` that look like misuse, of one unit's cars or all.
pub async fn misuse_trips(
    store: &Store,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    unit: Option<&str>,
) -> Result<Vec<MisuseTrip>, StorageError> {
    let cars: HashMap<String, Vehicle> =
        store.vehicles().list(unit).await?.into_iter().map(|v| (v.vin.to_string(), v)).collect();
    let rules = MisuseRules { hours: store.settings().working_hours().await?, ..MisuseRules::default() };
    let areas: Vec<(fleet_domain::geofence::Geofence, Shape)> = store
        .geofences()
        .list()
        .await?
        .into_iter()
        .filter(|f| f.kind == FenceKind::ServiceArea)
        .filter_map(|f| {
            let s = f.shape().ok()?;
            Some((f, s))
        })
        .collect();
    // A drive to charge may end just before the window does and charge just after it.
    let sessions_to = end + fleet_domain::trips::CHARGE_AFTER_TRIP;
    let mut sessions: HashMap<fleet_domain::Vin, Vec<ChargingSession>> = HashMap::new();
    for s in store.derived().all_sessions(start, sessions_to, MAX_SESSIONS).await? {
        sessions.entry(s.vin.clone()).or_default().push(s);
    }
    Ok(store
        .derived()
        .trips(None, start, end, MAX_TRIPS)
        .await?
        .into_iter()
        .filter_map(|t| {
            let car = cars.get(t.trip.vin.as_str())?;
            let purpose = if t.order_id.is_some() {
                TripPurpose::Order
            } else if sessions.get(&t.trip.vin).is_some_and(|own| drives_to_charge(&t.trip, own)) {
                TripPurpose::Charging
            } else {
                TripPurpose::Unexplained
            };
            let own_areas: Vec<&Shape> = areas.iter().filter(|(f, _)| f.applies_to(car)).map(|(_, s)| s).collect();
            let reasons = misuse_reasons(&t.trip, purpose, &rules, &own_areas);
            (!reasons.is_empty()).then(|| MisuseTrip { trip: t, vehicle: car.clone(), reasons })
        })
        .collect())
}
