//! One bench car's month, as telemetry and orders: [`TRIPS`] trips of driving then standing,
//! each a few kilometres out of or back to the car's home in Zhoushan, with the charge
//! falling, then one evening's charging session. At density `d` the same month is sampled
//! `d` times as often (one sample every `60 / d` s while the terminal reports), so the trips,
//! the sessions and the report are the same whatever `d`: only the raw samples grow.
//!
//! Every trip but the last served an order of the car's unit, driven by the car's driver: the
//! order was booked two hours ahead, assigned, accepted, picked up at the trip's start and
//! completed at its end, so the deriver ties the trip to it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fleet_domain::trips::china_offset;
use fleet_domain::{NewOrder, Place, Sample, SampleSource, Vin};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Trips per car per month.
pub(crate) const TRIPS: usize = 10;
/// Of those, the first this many served an order.
pub(crate) const ORDER_TRIPS: usize = 9;
/// Samples of one trip at 1×: moving, then standing until the trip is over (the deriver ends
/// a trip once the car has stood 3 minutes).
const MOVING: usize = 22;
const STANDING: usize = 5;
/// Samples of the charging session at 1× (the last one unplugged).
const CHARGING: usize = 30;
/// Samples per car per month at 1×.
pub(crate) const SAMPLES_1X: usize = TRIPS * (MOVING + STANDING) + CHARGING;
/// Seconds between two samples at 1×.
const STEP_1X_S: f64 = 60.0;
/// Speed while moving, km/h.
const SPEED_KMH: f64 = 30.0;
/// Bench cars' battery and consumption (as `db::register_vehicles` registers them).
const BATTERY_KWH: f64 = 60.0;
const KWH_PER_100KM: f64 = 14.0;
/// Charge at the start of the month and after the session, percent.
const FULL_SOC: f64 = 90.0;

/// One planned trip.
#[derive(Debug, Clone)]
pub(crate) struct Trip {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub from: (f64, f64),
    pub to: (f64, f64),
}

/// A car's month: where it lives, which way it drives.
pub(crate) struct CarMonth {
    vin: Vin,
    car: usize,
    month_start: DateTime<Utc>,
    home: (f64, f64),
    heading: f64,
}

/// Degrees of latitude and longitude `km` away from `(lat, lon)` towards `heading` (radians
/// from north).
fn moved((lat, lon): (f64, f64), heading: f64, km: f64) -> (f64, f64) {
    (lat + km * heading.cos() / 111.2, lon + km * heading.sin() / (111.2 * lat.to_radians().cos()))
}

fn secs(s: f64) -> Duration {
    Duration::milliseconds((s * 1000.0).round() as i64)
}

impl CarMonth {
    /// Car `car`'s month starting at `month_start` (midnight Asia/Shanghai).
    pub(crate) fn new(vin: Vin, car: usize, month_start: DateTime<Utc>) -> Self {
        let mut rng = StdRng::seed_from_u64(car as u64);
        // Around Lincheng and Dinghai, on the main island.
        let home = (rng.random_range(29.96..30.03), rng.random_range(122.05..122.25));
        Self { vin, car, month_start, home, heading: rng.random_range(0.0..std::f64::consts::TAU) }
    }

    fn trip_km() -> f64 {
        MOVING as f64 * STEP_1X_S / 3600.0 * SPEED_KMH
    }

    fn soc_drop_per_trip() -> f64 {
        Self::trip_km() * KWH_PER_100KM / 100.0 / BATTERY_KWH * 100.0
    }

    /// Trip `k`: on day `1 + 2k` in working hours, out from home on odd `k`, back on even.
    pub(crate) fn trip(&self, k: usize) -> Trip {
        let local = self.month_start.with_timezone(&china_offset());
        let day = local + Duration::days(2 * k as i64);
        let hour = 8 + (self.car + 3 * k) % 10;
        let minute = (self.car * 7 + k * 13) % 60;
        let start = china_offset()
            .with_ymd_and_hms(
                chrono::Datelike::year(&day),
                chrono::Datelike::month(&day),
                chrono::Datelike::day(&day),
                hour as u32,
                minute as u32,
                0,
            )
            .single()
            .expect("a valid local time")
            .with_timezone(&Utc);
        let away = moved(self.home, self.heading, Self::trip_km());
        let (from, to) = if k.is_multiple_of(2) { (self.home, away) } else { (away, self.home) };
        Trip { start, end: start + secs(MOVING as f64 * STEP_1X_S), from, to }
    }

    fn sample(&self, ts: DateTime<Utc>, at: (f64, f64), speed: f64, soc: f64, odo: f64) -> Sample {
        let mut s = Sample::at(self.vin.clone(), ts, at.0, at.1, SampleSource::Json);
        s.speed_kmh = Some(speed);
        s.soc_pct = Some((soc * 10.0).round() / 10.0);
        s.odometer_km = Some((odo * 10.0).round() / 10.0);
        s.ignition = Some(speed > 0.0);
        s.charging = Some(false);
        s
    }

    /// The month's samples at `density` (1 = [`SAMPLES_1X`] samples), in time order.
    pub(crate) fn samples(&self, density: usize) -> Vec<Sample> {
        let step = STEP_1X_S / density as f64;
        let step_km = step / 3600.0 * SPEED_KMH;
        let mut out = Vec::with_capacity(SAMPLES_1X * density);
        let mut soc = FULL_SOC;
        let mut odo = 20_000.0 + self.car as f64;
        for k in 0..TRIPS {
            let trip = self.trip(k);
            let heading = if k.is_multiple_of(2) { self.heading } else { self.heading + std::f64::consts::PI };
            let soc_step = Self::soc_drop_per_trip() / (MOVING * density) as f64;
            for j in 0..(MOVING + STANDING) * density {
                let ts = trip.start + secs(j as f64 * step);
                let moving = j < MOVING * density;
                let km = step_km * j.min(MOVING * density) as f64;
                let s = self.sample(
                    ts,
                    moved(trip.from, heading, km),
                    if moving { SPEED_KMH } else { 0.0 },
                    soc - soc_step * j.min(MOVING * density) as f64,
                    odo + km,
                );
                out.push(s);
            }
            soc -= Self::soc_drop_per_trip();
            odo += Self::trip_km();
        }
        // Plugged in on the evening of day 26, until the charge is back up.
        let local = self.month_start.with_timezone(&china_offset());
        let start = (local + Duration::days(25) + Duration::hours(19)).with_timezone(&Utc);
        let n = CHARGING * density;
        let home = self.trip(TRIPS - 1).to;
        for j in 0..n {
            let plugged = j + 1 < n;
            let mut s = self.sample(
                start + secs(j as f64 * step),
                home,
                0.0,
                soc + (FULL_SOC - soc) * j as f64 / (n - 1) as f64,
                odo,
            );
            s.charging = Some(plugged);
            out.push(s);
        }
        out
    }

    /// The order trip `k` served (`k < ORDER_TRIPS`).
    pub(crate) fn order(&self, k: usize, unit_id: &str) -> NewOrder {
        let trip = self.trip(k);
        let place = |(lat, lon): (f64, f64), name: String| Place { lat, lon, name };
        NewOrder {
            unit_id: unit_id.to_owned(),
            passengers: 1 + ((self.car + k) % 3) as u32,
            pickup: place(trip.from, format!("Office {}", self.car % 17)),
            dropoff: place(trip.to, format!("Site {}", (self.car + k) % 23)),
            pickup_at: Some(trip.start),
            purpose: "bench: official visit".into(),
            override_budget: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_domain::trips::{DeriveParams, derive};

    use super::*;

    fn month() -> CarMonth {
        let start = china_offset().with_ymd_and_hms(2026, 10, 1, 0, 0, 0).single().unwrap().with_timezone(&Utc);
        CarMonth::new(Vin::parse("LFBENCH0000000007").unwrap(), 7, start)
    }

    #[test]
    fn a_denser_month_derives_the_same_trips_and_session() {
        let m = month();
        let one = derive(&m.samples(1), BATTERY_KWH, &DeriveParams::default());
        let ten = derive(&m.samples(10), BATTERY_KWH, &DeriveParams::default());
        assert_eq!(m.samples(1).len(), SAMPLES_1X);
        assert_eq!(m.samples(10).len(), SAMPLES_1X * 10);
        assert_eq!(one.trips.len(), TRIPS);
        assert_eq!(ten.trips.len(), TRIPS);
        assert_eq!((one.charging.len(), ten.charging.len()), (1, 1));
        for (a, b) in one.trips.iter().zip(&ten.trips) {
            assert_eq!((a.start_ts, a.end_ts), (b.start_ts, b.end_ts));
            assert!((a.distance_km - b.distance_km).abs() < 0.01, "{} vs {} km", a.distance_km, b.distance_km);
            assert!((a.energy_kwh - b.energy_kwh).abs() < 0.1, "{} vs {} kWh", a.energy_kwh, b.energy_kwh);
            assert!(!a.open);
        }
        assert!((one.trips[0].distance_km - CarMonth::trip_km()).abs() < 0.01);
    }

    #[test]
    fn trips_fall_inside_the_month_and_match_their_plan() {
        let m = month();
        let end = m.month_start + Duration::days(31);
        let derived = derive(&m.samples(1), BATTERY_KWH, &DeriveParams::default());
        for (k, t) in derived.trips.iter().enumerate() {
            let plan = m.trip(k);
            assert!(plan.start >= m.month_start && plan.end < end);
            assert_eq!(t.start_ts, plan.start);
            assert_eq!(t.end_ts, plan.end);
        }
        let session = &derived.charging[0];
        assert!(session.start_ts < end && !session.open);
    }
}
