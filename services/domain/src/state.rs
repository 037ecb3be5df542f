//! A vehicle's current state and the one place its status is derived.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Sample, Vin};

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
    /// The state a car's first sample gives it.
    pub fn first(sample: &Sample) -> (Self, Option<DateTime<Utc>>) {
        let valid = sample.position_valid;
        let state = Self {
            vin: sample.vin.clone(),
            ts: sample.ts,
            lat: valid.then_some(sample.lat),
            lon: valid.then_some(sample.lon),
            speed_kmh: sample.speed_kmh,
            heading_deg: sample.heading_deg,
            soc_pct: sample.soc_pct,
            odometer_km: sample.odometer_km,
            charging: sample.charging,
            ignition: sample.ignition,
            range_km: sample.range_km,
        };
        (state, valid.then_some(sample.ts))
    }

    /// Merges one more sample of this car, by the rule storage keeps too: a newer sample
    /// moves the time and every value it carries (absent values keep the old ones); a valid
    /// position newer than the current position's time (`pos_ts`) moves the position; an
    /// older sample changes nothing else; a sample whose clock was ahead changes nothing at
    /// all. Returns whether anything changed.
    pub fn absorb(&mut self, pos_ts: &mut Option<DateTime<Utc>>, sample: &Sample) -> bool {
        if !sample.moves_state() {
            return false;
        }
        let mut changed = false;
        if sample.ts > self.ts {
            self.ts = sample.ts;
            self.speed_kmh = sample.speed_kmh.or(self.speed_kmh);
            self.heading_deg = sample.heading_deg.or(self.heading_deg);
            self.soc_pct = sample.soc_pct.or(self.soc_pct);
            self.odometer_km = sample.odometer_km.or(self.odometer_km);
            self.charging = sample.charging.or(self.charging);
            self.ignition = sample.ignition.or(self.ignition);
            self.range_km = sample.range_km.or(self.range_km);
            changed = true;
        }
        if sample.position_valid && pos_ts.is_none_or(|p| sample.ts > p) {
            *pos_ts = Some(sample.ts);
            self.lat = Some(sample.lat);
            self.lon = Some(sample.lon);
            changed = true;
        }
        changed
    }

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

    fn sample(secs: i64, lat: f64, valid: bool, soc: Option<f64>) -> Sample {
        let ts = DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap();
        let mut s = Sample::at(Vin::parse("LSJA24U66NS000001").unwrap(), ts, lat, 122.1, crate::SampleSource::Json);
        s.position_valid = valid;
        s.soc_pct = soc;
        s
    }

    #[test]
    fn an_older_sample_never_moves_the_state_backwards() {
        let (mut st, mut pos_ts) = VehicleState::first(&sample(10, 30.0, true, Some(80.0)));
        assert!(!st.absorb(&mut pos_ts, &sample(5, 29.0, true, Some(90.0))));
        assert_eq!((st.lat, st.soc_pct, st.ts.timestamp()), (Some(30.0), Some(80.0), 1_790_000_010));
        assert!(st.absorb(&mut pos_ts, &sample(20, 30.5, true, None)));
        assert_eq!((st.lat, st.soc_pct), (Some(30.5), Some(80.0)), "an absent value keeps the old one");
    }

    #[test]
    fn an_invalid_position_moves_the_time_but_not_the_position() {
        let (mut st, mut pos_ts) = VehicleState::first(&sample(10, 30.0, true, Some(80.0)));
        assert!(st.absorb(&mut pos_ts, &sample(20, 31.0, false, Some(79.0))));
        assert_eq!((st.lat, st.soc_pct, st.ts.timestamp()), (Some(30.0), Some(79.0), 1_790_000_020));
        // A valid fix older than the newest sample but newer than the position still moves it.
        assert!(st.absorb(&mut pos_ts, &sample(15, 30.2, true, Some(10.0))));
        assert_eq!((st.lat, st.soc_pct), (Some(30.2), Some(79.0)));
        let (first, pos) = VehicleState::first(&sample(1, 30.0, false, None));
        assert_eq!((first.lat, pos), (None, None));
    }

    #[test]
    fn a_sample_from_the_future_never_moves_the_state() {
        let (mut st, mut pos_ts) = VehicleState::first(&sample(10, 30.0, true, Some(80.0)));
        let mut ahead = sample(23 * 3600, 31.0, true, Some(10.0));
        ahead.clock_ahead = true;
        assert!(!st.absorb(&mut pos_ts, &ahead));
        assert!(st.absorb(&mut pos_ts, &sample(20, 30.1, true, Some(79.0))), "a real sample after it still counts");
        assert_eq!((st.lat, st.soc_pct, st.ts.timestamp()), (Some(30.1), Some(79.0), 1_790_000_020));
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
