//! Trips and charging sessions derived from one car's samples (issue 7): the derived tables
//! monthly statistics read instead of raw samples. Pure: a slice of samples in, trips and
//! sessions out, so late data is handled by deriving a window again.
//!
//! A trip starts when the car moves (speed above [`DeriveParams::moving_kmh`], or, without a
//! speed, a jump of position) and ends at the first standing sample after the last movement
//! once the car has stood for [`DeriveParams::stop_after`], or at a gap in the data longer than
//! [`DeriveParams::max_gap`]. Distance is the odometer's when it is plausible, else the sum of
//! great-circle steps; energy is ∫V·A dt when the car reports voltage and current on most
//! samples, else the fall in state of charge × battery capacity.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::feasibility::{GeoPoint, haversine_m};
use crate::{Sample, Vin};

/// Asia/Shanghai is UTC+8 all year (no daylight saving): months and days of the reports.
pub fn china_offset() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The month (`YYYY-MM`) of `ts` in Asia/Shanghai: a trip counts in the month it starts.
pub fn month_of(ts: DateTime<Utc>) -> String {
    ts.with_timezone(&china_offset()).format("%Y-%m").to_string()
}

/// Why a trip looks like private use of an official car (公车私用), for the auditor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MisuseReason {
    /// The car moved without an order.
    NoOrder,
    /// The trip started outside working hours (or on a weekend).
    OffHours,
    /// The trip started or ended outside the service area.
    OutsideArea,
}

/// What counts as official use.
#[derive(Debug, Clone, PartialEq)]
pub struct MisuseRules {
    /// When official work is done.
    pub hours: crate::geofence::WorkingHours,
    /// The service area where no geofence of kind `service_area` applies to a car:
    /// `(min_lon, min_lat, max_lon, max_lat)`.
    pub area: (f64, f64, f64, f64),
    /// Trips shorter than this are ignored (moving a car in a car park).
    pub min_km: f64,
}

/// The default service area: the Zhoushan archipelago with the Ningbo side of the sea bridges.
pub const DEFAULT_SERVICE_AREA: (f64, f64, f64, f64) = (121.3, 29.3, 123.3, 31.0);

impl Default for MisuseRules {
    fn default() -> Self {
        Self { hours: crate::geofence::WorkingHours::default(), area: DEFAULT_SERVICE_AREA, min_km: 0.5 }
    }
}

/// What a trip was for, as far as the misuse rules can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripPurpose {
    /// It served an order (the drive to the pickup and the ride).
    Order,
    /// It ended where the car then charged ([`drives_to_charge`]): upkeep, not private use.
    Charging,
    /// Nothing on record.
    Unexplained,
}

/// A charging session that starts at most this long after a trip's end...
pub const CHARGE_AFTER_TRIP: Duration = Duration::from_secs(15 * 60);
/// ...and this close to where it ended makes the trip a drive to charge.
pub const CHARGE_NEAR_TRIP_END_M: f64 = 500.0;

/// Whether the car charged right where and after the trip ended. `sessions` in the order of
/// their start (the car's own, so that only the few after the trip's end are looked at; a
/// session of another car never counts).
pub fn drives_to_charge(trip: &Trip, sessions: &[ChargingSession]) -> bool {
    let latest = trip.end_ts + chrono::Duration::from_std(CHARGE_AFTER_TRIP).unwrap_or_default();
    let after = sessions.partition_point(|c| c.start_ts < trip.end_ts);
    sessions[after..]
        .iter()
        .take_while(|c| c.start_ts <= latest)
        .any(|c| c.vin == trip.vin && haversine_m(c.position, trip.end) <= CHARGE_NEAR_TRIP_END_M)
}

/// The reasons a trip looks like misuse (empty: it does not). A trip with a purpose on record
/// (an order, a charge) is misuse only where it went outside the service area; one without is
/// also reported for having no order, and for starting outside working hours. The service
/// area is the car's `service_areas` (geofences) when it has any, else the rules' default.
pub fn misuse_reasons(
    trip: &Trip,
    purpose: TripPurpose,
    rules: &MisuseRules,
    service_areas: &[&crate::geofence::Shape],
) -> Vec<MisuseReason> {
    if trip.distance_km < rules.min_km {
        return Vec::new();
    }
    let mut out = Vec::new();
    if purpose == TripPurpose::Unexplained {
        out.push(MisuseReason::NoOrder);
        if !rules.hours.is_working(trip.start_ts) {
            out.push(MisuseReason::OffHours);
        }
    }
    let (x0, y0, x1, y1) = rules.area;
    let inside = |p: &GeoPoint| {
        if service_areas.is_empty() {
            (x0..=x1).contains(&p.lon) && (y0..=y1).contains(&p.lat)
        } else {
            service_areas.iter().any(|a| a.contains(*p))
        }
    };
    if !inside(&trip.start) || !inside(&trip.end) {
        out.push(MisuseReason::OutsideArea);
    }
    out
}

/// How trips and sessions are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeriveParams {
    /// Faster than this, a car moves.
    pub moving_kmh: f64,
    /// A car that stands this long has ended its trip.
    pub stop_after: Duration,
    /// No data for this long ends a trip or a session.
    pub max_gap: Duration,
    /// Without a speed, a step longer than this between samples counts as movement.
    pub moved_m: f64,
}

impl Default for DeriveParams {
    fn default() -> Self {
        Self {
            moving_kmh: 3.0,
            stop_after: Duration::from_secs(180),
            max_gap: Duration::from_secs(600),
            moved_m: 100.0,
        }
    }
}

/// One trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    pub vin: Vin,
    pub start_ts: DateTime<Utc>,
    pub end_ts: DateTime<Utc>,
    pub start: GeoPoint,
    pub end: GeoPoint,
    pub start_odometer_km: Option<f64>,
    pub end_odometer_km: Option<f64>,
    pub distance_km: f64,
    pub energy_kwh: f64,
    pub start_soc_pct: Option<f64>,
    pub end_soc_pct: Option<f64>,
    /// The car was still on it at the last sample: a later derivation may extend it.
    pub open: bool,
}

/// One charging session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargingSession {
    pub vin: Vin,
    pub start_ts: DateTime<Utc>,
    pub end_ts: DateTime<Utc>,
    pub position: GeoPoint,
    pub start_soc_pct: Option<f64>,
    pub end_soc_pct: Option<f64>,
    pub energy_kwh: f64,
    /// Still charging at the last sample.
    pub open: bool,
    /// What the energy cost at the tariff ([`crate::tariff::charging_cost`]; 0 until costed).
    #[serde(default)]
    pub cost_yuan: f64,
}

/// What one derivation found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derived {
    pub trips: Vec<Trip>,
    pub charging: Vec<ChargingSession>,
}

/// Derives the trips and charging sessions of one car from its samples (any order; samples
/// with an invalid fix count for time, charge and odometer but not for position; samples
/// whose clock was ahead do not count at all: their time is wrong, and a trip spanning the
/// real samples and one from hours ahead would be a phantom).
pub fn derive(samples: &[Sample], battery_kwh: f64, p: &DeriveParams) -> Derived {
    let mut sorted: Vec<&Sample> = samples.iter().filter(|s| s.moves_state()).collect();
    sorted.sort_by_key(|s| s.ts);
    sorted.dedup_by_key(|s| s.ts);
    Derived { trips: trips(&sorted, battery_kwh, p), charging: sessions(&sorted, battery_kwh, p) }
}

fn gap(a: &Sample, b: &Sample, p: &DeriveParams) -> bool {
    (b.ts - a.ts).to_std().is_ok_and(|d| d > p.max_gap)
}

fn point(s: &Sample) -> GeoPoint {
    GeoPoint::new(s.lat, s.lon)
}

fn moving(prev: Option<&Sample>, s: &Sample, p: &DeriveParams) -> bool {
    if s.ignition == Some(false) {
        return false;
    }
    match s.speed_kmh {
        Some(v) => v > p.moving_kmh,
        None => {
            prev.is_some_and(|q| q.position_valid && s.position_valid && haversine_m(point(q), point(s)) > p.moved_m)
        }
    }
}

fn trips(samples: &[&Sample], battery_kwh: f64, p: &DeriveParams) -> Vec<Trip> {
    let mut out = Vec::new();
    // Indices into `samples`: where the open trip starts, its last moving sample, and the
    // first standing sample after that (the arrival, if the car stays).
    let mut start: Option<usize> = None;
    let mut last_moving = 0;
    let mut arrival: Option<usize> = None;
    for i in 0..samples.len() {
        let s = samples[i];
        let prev = i.checked_sub(1).map(|j| samples[j]);
        if let (Some(st), Some(q)) = (start, prev)
            && gap(q, s, p)
        {
            out.push(trip(&samples[st..=arrival.unwrap_or(last_moving).max(last_moving)], battery_kwh, false));
            start = None;
            arrival = None;
        }
        if moving(prev, s, p) {
            if start.is_none() {
                // The trip starts where the car stood just before, if that was recent.
                start = Some(match prev {
                    Some(q) if !gap(q, s, p) => i - 1,
                    _ => i,
                });
            }
            last_moving = i;
            arrival = None;
        } else if let Some(st) = start {
            let arrived = *arrival.get_or_insert(i);
            if (s.ts - samples[last_moving].ts).to_std().is_ok_and(|d| d >= p.stop_after) {
                out.push(trip(&samples[st..=arrived], battery_kwh, false));
                start = None;
                arrival = None;
            }
        }
    }
    if let Some(st) = start {
        let end = arrival.unwrap_or(samples.len() - 1).max(last_moving);
        out.push(trip(&samples[st..=end], battery_kwh, true));
    }
    out
}

fn trip(samples: &[&Sample], battery_kwh: f64, open: bool) -> Trip {
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let valid: Vec<&&Sample> = samples.iter().filter(|s| s.position_valid).collect();
    let path_m: f64 = valid.windows(2).map(|w| haversine_m(point(w[0]), point(w[1]))).sum();
    let start_odo = samples.iter().find_map(|s| s.odometer_km);
    let end_odo = samples.iter().rev().find_map(|s| s.odometer_km);
    // The odometer is trusted when it rose by something the path can explain (a terminal
    // that resets or jumps is not).
    let distance_km = match (start_odo, end_odo) {
        (Some(a), Some(b)) if b >= a && b - a <= path_m / 1000.0 * 3.0 + 1.0 => b - a,
        _ => path_m / 1000.0,
    };
    let start_soc = samples.iter().find_map(|s| s.soc_pct);
    let end_soc = samples.iter().rev().find_map(|s| s.soc_pct);
    let energy_kwh = electrical_kwh(samples, 1.0).unwrap_or_else(|| soc_kwh(start_soc, end_soc, battery_kwh, -1.0));
    Trip {
        vin: first.vin.clone(),
        start_ts: first.ts,
        end_ts: last.ts,
        start: valid.first().map_or(point(first), |s| point(s)),
        end: valid.last().map_or(point(last), |s| point(s)),
        start_odometer_km: start_odo,
        end_odometer_km: end_odo,
        distance_km,
        energy_kwh,
        start_soc_pct: start_soc,
        end_soc_pct: end_soc,
        open,
    }
}

/// kWh from a change of state of charge in the direction `sign` (−1: a fall, +1: a rise).
fn soc_kwh(start: Option<f64>, end: Option<f64>, battery_kwh: f64, sign: f64) -> f64 {
    match (start, end) {
        (Some(a), Some(b)) => ((b - a) * sign).max(0.0) / 100.0 * battery_kwh,
        _ => 0.0,
    }
}

/// ∫V·A dt in kWh (trapezoids), counting current in the direction `sign` (+1: discharge, the
/// GB/T 32960 sign; −1: charge), when at least 80 % of the samples report both.
fn electrical_kwh(samples: &[&Sample], sign: f64) -> Option<f64> {
    let with: Vec<(DateTime<Utc>, f64)> =
        samples.iter().filter_map(|s| Some((s.ts, s.battery_voltage_v? * s.battery_current_a? * sign))).collect();
    if with.len() < 2 || with.len() * 5 < samples.len() * 4 {
        return None;
    }
    let joules: f64 = with
        .windows(2)
        .map(|w| {
            let dt = (w[1].0 - w[0].0).num_milliseconds() as f64 / 1000.0;
            (w[0].1 + w[1].1) / 2.0 * dt
        })
        .sum();
    Some((joules / 3.6e6).max(0.0))
}

fn sessions(samples: &[&Sample], battery_kwh: f64, p: &DeriveParams) -> Vec<ChargingSession> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let close = |from: usize, to: usize, open: bool, out: &mut Vec<ChargingSession>| {
        let part = &samples[from..=to];
        let start_soc = part.iter().find_map(|s| s.soc_pct);
        let end_soc = part.iter().rev().find_map(|s| s.soc_pct);
        let energy_kwh = electrical_kwh(part, -1.0).unwrap_or_else(|| soc_kwh(start_soc, end_soc, battery_kwh, 1.0));
        let at = part.iter().find(|s| s.position_valid).unwrap_or(&part[0]);
        out.push(ChargingSession {
            vin: part[0].vin.clone(),
            start_ts: part[0].ts,
            end_ts: part[part.len() - 1].ts,
            position: point(at),
            start_soc_pct: start_soc,
            end_soc_pct: end_soc,
            energy_kwh,
            open,
            cost_yuan: 0.0,
        });
    };
    for i in 0..samples.len() {
        let s = samples[i];
        if let (Some(st), true) = (start, i > 0 && gap(samples[i - 1], s, p)) {
            close(st, i - 1, false, &mut out);
            start = None;
        }
        match (s.charging == Some(true), start) {
            (true, None) => start = Some(i),
            (false, Some(st)) => {
                close(st, i - 1, false, &mut out);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(st) = start {
        close(st, samples.len() - 1, true, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleSource;

    fn vin() -> Vin {
        Vin::parse("LSJA24U66NS000001").unwrap()
    }

    /// A sample `secs` after 08:00 UTC on 2026-11-20.
    fn at(secs: i64, lat: f64, speed: f64, soc: f64, odo: Option<f64>) -> Sample {
        let ts = DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").unwrap().with_timezone(&Utc)
            + chrono::Duration::seconds(secs);
        let mut s = Sample::at(vin(), ts, lat, 122.1, SampleSource::Json);
        s.speed_kmh = Some(speed);
        s.soc_pct = Some(soc);
        s.odometer_km = odo;
        s
    }

    /// A drive north at ~36 km/h: 0.001° of latitude (111 m) every 11 s.
    fn drive(from_secs: i64, n: i64, lat0: f64, soc0: f64, odo0: f64) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                at(
                    from_secs + i * 11,
                    lat0 + i as f64 * 0.001,
                    36.0,
                    soc0 - i as f64 * 0.05,
                    Some(odo0 + i as f64 * 0.111),
                )
            })
            .collect()
    }

    fn stand(from_secs: i64, n: i64, every: i64, lat: f64, soc: f64, odo: f64) -> Vec<Sample> {
        (0..n).map(|i| at(from_secs + i * every, lat, 0.0, soc, Some(odo))).collect()
    }

    #[test]
    fn a_drive_between_two_stops_is_one_trip_with_odometer_distance_and_soc_energy() {
        let mut s = stand(0, 3, 30, 30.0, 80.0, 1000.0);
        s.extend(drive(90, 50, 30.0, 80.0, 1000.0)); // 49 steps: 5.439 km, SoC 80 → 77.55
        s.extend(stand(90 + 50 * 11, 10, 30, 30.049, 77.55, 1005.439));
        let d = derive(&s, 60.0, &DeriveParams::default());
        assert_eq!(d.trips.len(), 1, "{:?}", d.trips);
        let t = &d.trips[0];
        assert!((t.distance_km - 5.439).abs() < 1e-6, "{}", t.distance_km);
        assert!((t.energy_kwh - 2.45 / 100.0 * 60.0).abs() < 1e-6, "{}", t.energy_kwh);
        assert_eq!(t.start_ts, s[2].ts, "starts where the car stood just before");
        assert_eq!(t.end_ts, s[53].ts, "ends at the first standing sample");
        assert!(!t.open);
        assert!(d.charging.is_empty());
    }

    #[test]
    fn a_short_stop_continues_the_trip_and_a_long_one_or_a_gap_ends_it() {
        let mut s = drive(0, 10, 30.0, 80.0, 0.0);
        s.extend(stand(110, 4, 30, 30.009, 79.5, 0.999)); // 90 s at a light: same trip
        s.extend(drive(230, 10, 30.009, 79.5, 0.999));
        s.extend(stand(340, 8, 30, 30.018, 79.0, 1.998)); // 210 s: the trip ends
        s.extend(drive(600, 10, 30.018, 79.0, 1.998));
        s.extend(drive(600 + 110 + 900, 10, 30.1, 78.0, 12.0)); // 15 min without data
        let d = derive(&s, 60.0, &DeriveParams::default());
        let spans: Vec<(i64, i64, bool)> = d
            .trips
            .iter()
            .map(|t| ((t.start_ts - s[0].ts).num_seconds(), (t.end_ts - s[0].ts).num_seconds(), t.open))
            .collect();
        assert_eq!(spans, vec![(0, 340, false), (550, 699, false), (1610, 1709, true)], "{spans:?}");
    }

    #[test]
    fn voltage_and_current_give_the_energy_when_reported() {
        let mut s = stand(0, 2, 30, 30.0, 80.0, 0.0);
        s.extend(drive(60, 11, 30.0, 80.0, 0.0));
        s.extend(stand(60 + 11 * 11, 8, 30, 30.01, 79.0, 1.11));
        for x in &mut s {
            x.battery_voltage_v = Some(400.0);
            x.battery_current_a = Some(if x.speed_kmh == Some(0.0) { 0.0 } else { 50.0 });
        }
        let d = derive(&s, 60.0, &DeriveParams::default());
        // 20 kW for the 110 s between the first and last moving sample, plus the ramps to the
        // standing samples on each side (half of 20 kW over 30 s and 11 s).
        let expected = (20_000.0 * 110.0 + 10_000.0 * 30.0 + 10_000.0 * 11.0) / 3.6e6;
        assert!((d.trips[0].energy_kwh - expected).abs() < 1e-9, "{} vs {expected}", d.trips[0].energy_kwh);
    }

    #[test]
    fn charging_samples_make_a_session_with_the_energy_of_the_rise() {
        let mut s = stand(0, 3, 60, 30.0, 40.0, 0.0);
        let mut charge: Vec<Sample> =
            (0..20).map(|i| at(180 + i * 60, 30.0, 0.0, 40.0 + i as f64 * 2.0, Some(0.0))).collect();
        for c in &mut charge {
            c.charging = Some(true);
        }
        s.extend(charge);
        s.extend(stand(180 + 20 * 60, 3, 60, 30.0, 78.0, 0.0));
        let d = derive(&s, 50.0, &DeriveParams::default());
        assert!(d.trips.is_empty());
        assert_eq!(d.charging.len(), 1);
        let c = &d.charging[0];
        assert_eq!((c.start_soc_pct, c.end_soc_pct, c.open), (Some(40.0), Some(78.0), false));
        assert!((c.energy_kwh - 19.0).abs() < 1e-9, "{}", c.energy_kwh);
    }

    #[test]
    fn months_turn_at_midnight_in_shanghai() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(month_of(t("2026-11-30T15:59:59Z")), "2026-11");
        assert_eq!(month_of(t("2026-11-30T16:00:00Z")), "2026-12", "midnight of 1 December in Shanghai");
    }

    #[test]
    fn misuse_is_no_order_off_hours_or_outside_the_area() {
        let mut s = drive(0, 10, 30.0, 80.0, 0.0); // Friday 16:00 in Shanghai
        s.extend(stand(110, 8, 30, 30.009, 79.5, 0.999));
        let t = derive(&s, 60.0, &DeriveParams::default()).trips.remove(0);
        let rules = MisuseRules::default();
        use TripPurpose::{Charging, Order, Unexplained};
        assert!(misuse_reasons(&t, Order, &rules, &[]).is_empty());
        assert_eq!(misuse_reasons(&t, Unexplained, &rules, &[]), vec![MisuseReason::NoOrder]);
        let mut late = t.clone();
        late.start_ts += chrono::Duration::hours(5); // 21:00
        assert_eq!(
            misuse_reasons(&late, Unexplained, &rules, &[]),
            vec![MisuseReason::NoOrder, MisuseReason::OffHours]
        );
        assert!(misuse_reasons(&late, Order, &rules, &[]).is_empty(), "an order at night is official use");
        assert!(misuse_reasons(&late, Charging, &rules, &[]).is_empty(), "so is a drive to charge");
        late.end.lon = 121.0;
        assert_eq!(misuse_reasons(&late, Order, &rules, &[]), vec![MisuseReason::OutsideArea]);
        assert_eq!(
            misuse_reasons(&late, Unexplained, &rules, &[]),
            vec![MisuseReason::NoOrder, MisuseReason::OffHours, MisuseReason::OutsideArea]
        );
        let mut saturday = t.clone();
        saturday.start_ts += chrono::Duration::days(1);
        assert_eq!(
            misuse_reasons(&saturday, Unexplained, &rules, &[]),
            vec![MisuseReason::NoOrder, MisuseReason::OffHours]
        );
        let mut short = t.clone();
        short.distance_km = 0.2;
        assert!(
            misuse_reasons(&short, Unexplained, &rules, &[]).is_empty(),
            "moving in a car park is no trip to report"
        );
        // A car with a service-area geofence is judged by it, not by the default area.
        let island = crate::geofence::shape(
            &serde_json::json!({"type": "Point", "coordinates": [t.start.lon, t.start.lat]}),
            Some(500.0),
        )
        .unwrap();
        assert_eq!(misuse_reasons(&t, Order, &rules, &[&island]), vec![MisuseReason::OutsideArea], "it ends 1 km away");
        let wide = crate::geofence::shape(
            &serde_json::json!({"type": "Point", "coordinates": [t.start.lon, t.start.lat]}),
            Some(5_000.0),
        )
        .unwrap();
        assert!(misuse_reasons(&t, Order, &rules, &[&island, &wide]).is_empty(), "inside one of them is inside");
        // Working hours as configured: the Friday afternoon declared a holiday is off hours.
        let mut holiday = rules.clone();
        holiday.hours.holidays.push(t.start_ts.with_timezone(&china_offset()).date_naive());
        assert_eq!(misuse_reasons(&t, Unexplained, &holiday, &[]), vec![MisuseReason::NoOrder, MisuseReason::OffHours]);
    }

    #[test]
    fn a_trip_followed_by_a_charge_where_it_ended_is_a_drive_to_charge() {
        let mut s = drive(0, 10, 30.0, 80.0, 0.0);
        s.extend(stand(110, 8, 30, 30.009, 79.5, 0.999));
        let t = derive(&s, 60.0, &DeriveParams::default()).trips.remove(0);
        let session = |after_min: i64, lat: f64, vin: &Vin| ChargingSession {
            vin: vin.clone(),
            start_ts: t.end_ts + chrono::Duration::minutes(after_min),
            end_ts: t.end_ts + chrono::Duration::minutes(after_min + 40),
            position: GeoPoint::new(lat, t.end.lon),
            start_soc_pct: Some(30.0),
            end_soc_pct: Some(90.0),
            energy_kwh: 30.0,
            open: false,
            cost_yuan: 0.0,
        };
        let other = Vin::parse("LSVAU2180N2183294").unwrap();
        assert!(drives_to_charge(&t, &[session(3, t.end.lat, &t.vin)]));
        assert!(!drives_to_charge(&t, &[session(20, t.end.lat, &t.vin)]), "charged much later");
        assert!(!drives_to_charge(&t, &[session(3, t.end.lat + 0.01, &t.vin)]), "charged a kilometre away");
        assert!(!drives_to_charge(&t, &[session(3, t.end.lat, &other)]), "another car charged");
        assert!(!drives_to_charge(&t, &[session(-30, t.end.lat, &t.vin)]), "charged before");
        let day = [session(-30, t.end.lat, &t.vin), session(3, t.end.lat, &other), session(5, t.end.lat, &t.vin)];
        assert!(drives_to_charge(&t, &day), "among the car's sessions of the day");
        assert!(!drives_to_charge(&t, &day[..2]), "only another car's after the trip");
    }

    #[test]
    fn a_reset_odometer_falls_back_to_the_path() {
        let mut s = drive(0, 10, 30.0, 80.0, 500.0);
        s[9].odometer_km = Some(3.0);
        s.extend(stand(110, 8, 30, 30.009, 79.5, 3.0));
        let d = derive(&s, 60.0, &DeriveParams::default());
        assert!((d.trips[0].distance_km - 1.0007).abs() < 0.01, "{}", d.trips[0].distance_km);
    }
}
