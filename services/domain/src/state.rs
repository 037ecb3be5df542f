//! A vehicle's current state and the one place its status is derived.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Vin;

/// A car with no sample for this long is offline.
pub const OFFLINE_AFTER_SECS: i64 = 120;

/// What a car is doing, as shown to dispatchers and used by dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleStatus {
    Offline,
    Idle,
    Assigned,
    OnTrip,
    Charging,
    Maintenance,
}

/// The latest known state of a car: the newest sample's time and values, and the newest
/// valid position. Never moved backwards in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleState {
    pub vin: Vin,
    /// Time of the newest sample.
    pub ts: DateTime<Utc>,
    /// The newest valid position; absent until the car has sent one.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub speed_kmh: Option<f64>,
    pub heading_deg: Option<f64>,
    pub soc_pct: Option<f64>,
    pub odometer_km: Option<f64>,
    pub charging: Option<bool>,
    pub ignition: Option<bool>,
    pub range_km: Option<f64>,
}

/// What status derivation needs beyond the telemetry (filled by later services).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duty {
    pub in_maintenance: bool,
    /// Holds an order that is assigned or accepted but not yet picked up.
    pub assigned: bool,
    /// Carries passengers of an order.
    pub on_trip: bool,
}

impl VehicleState {
    /// The status at `now`: maintenance first, then offline (stale data), then the order
    /// duty, then charging, else idle.
    pub fn status(&self, now: DateTime<Utc>, duty: Duty) -> VehicleStatus {
        if duty.in_maintenance {
            VehicleStatus::Maintenance
        } else if (now - self.ts).num_seconds() > OFFLINE_AFTER_SECS {
            VehicleStatus::Offline
        } else if duty.on_trip {
            VehicleStatus::OnTrip
        } else if duty.assigned {
            VehicleStatus::Assigned
        } else if self.charging == Some(true) {
            VehicleStatus::Charging
        } else {
            VehicleStatus::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ts: DateTime<Utc>) -> VehicleState {
        VehicleState {
            vin: Vin::parse("LSJA24U66NS000001").unwrap(),
            ts,
            lat: Some(30.0),
            lon: Some(122.1),
            speed_kmh: None,
            heading_deg: None,
            soc_pct: Some(80.0),
            odometer_km: None,
            charging: None,
            ignition: None,
            range_km: None,
        }
    }

    #[test]
    fn a_car_silent_for_over_two_minutes_is_offline() {
        let now = Utc::now();
        assert_eq!(state(now - chrono::Duration::seconds(121)).status(now, Duty::default()), VehicleStatus::Offline);
        assert_eq!(state(now - chrono::Duration::seconds(119)).status(now, Duty::default()), VehicleStatus::Idle);
    }

    #[test]
    fn charging_and_duty_shape_the_status() {
        let now = Utc::now();
        let mut s = state(now);
        s.charging = Some(true);
        assert_eq!(s.status(now, Duty::default()), VehicleStatus::Charging);
        assert_eq!(s.status(now, Duty { assigned: true, ..Duty::default() }), VehicleStatus::Assigned);
        assert_eq!(s.status(now, Duty { in_maintenance: true, ..Duty::default() }), VehicleStatus::Maintenance);
    }
}
