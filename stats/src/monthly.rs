//! A month's use of the fleet per unit, car and driver, with the month before for
//! comparison. Read from the derived trips and sessions and the orders table, never from
//! raw samples. Months are Asia/Shanghai months.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use fleet_domain::OrderStatus;
use fleet_domain::trips::china_offset;
use fleet_storage::{ChargeTotals, Store, TripGroup, TripTotals};
use serde::Serialize;

use crate::StatsError;
use crate::budget::{BUDGET_WARNING_SHARE, budget_of};
use crate::co2::Co2Factors;

/// Figures of the month before, for comparison.
#[derive(Serialize, Debug, Clone, Copy, Default, PartialEq)]
pub struct Previous {
    pub trips: i64,
    pub km: f64,
    pub hours: f64,
    pub kwh: f64,
}

/// One unit's month.
#[derive(Serialize, Debug, Clone)]
pub struct UnitStats {
    pub unit_id: String,
    pub name: String,
    /// Orders picked up (or to be) in the month, by status.
    pub orders: BTreeMap<String, i64>,
    /// Passengers of the month's completed orders.
    pub passengers: i64,
    pub trips: i64,
    pub km: f64,
    pub hours: f64,
    pub kwh: f64,
    pub co2_avoided_kg: f64,
    pub budget_kwh: f64,
    pub budget_share: f64,
    pub budget_warning: bool,
    /// What the unit's cars' charging cost at the tariff, yuan.
    pub charging_cost_yuan: f64,
    /// The unit's cars' other costs (entered, imported, service records), yuan.
    pub other_costs_yuan: f64,
    pub previous: Previous,
    /// km change against the month before, percent (null when it had none).
    pub km_change_pct: Option<f64>,
}

/// One car's month.
#[derive(Serialize, Debug, Clone)]
pub struct VehicleStats {
    pub vin: String,
    pub plate: String,
    pub unit_id: Option<String>,
    pub trips: i64,
    pub km: f64,
    pub hours: f64,
    /// Hours under way ÷ hours of the month so far.
    pub utilization: f64,
    pub kwh: f64,
    pub charging_sessions: i64,
    pub charging_kwh: f64,
    /// What its charging cost at the tariff, yuan.
    pub charging_cost_yuan: f64,
    /// Its other costs (entered, imported, service records), yuan.
    pub other_costs_yuan: f64,
    /// Days of the month so far without a trip.
    pub idle_days: i64,
    pub previous: Previous,
    pub km_change_pct: Option<f64>,
}

/// One driver's month.
#[derive(Serialize, Debug, Clone)]
pub struct DriverStats {
    pub driver_id: String,
    pub name: String,
    pub trips: i64,
    pub km: f64,
    pub hours: f64,
    pub previous: Previous,
    pub km_change_pct: Option<f64>,
}

/// The month's statistics, as the API answers them.
#[derive(Serialize, Debug, Clone)]
pub struct Monthly {
    pub month: String,
    pub previous_month: String,
    pub co2_factors: Co2Factors,
    pub units: Vec<UnitStats>,
    pub vehicles: Vec<VehicleStats>,
    pub drivers: Vec<DriverStats>,
}

fn hours(ms: i64) -> f64 {
    ms as f64 / 3_600_000.0
}

fn change_pct(now: f64, before: f64) -> Option<f64> {
    (before > 0.0).then(|| (now - before) / before * 100.0)
}

fn previous_of(t: Option<&TripTotals>) -> Previous {
    t.map(|t| Previous { trips: t.trips, km: t.km, hours: hours(t.ms), kwh: t.kwh }).unwrap_or_default()
}

/// The month before `month` (YYYY-MM).
pub fn month_before(month: &str) -> String {
    let (y, m) = (month[..4].parse::<i32>().unwrap_or(2000), month[5..].parse::<u32>().unwrap_or(1));
    if m == 1 { format!("{:04}-12", y - 1) } else { format!("{y:04}-{:02}", m - 1) }
}

/// The month's first instant and the next month's, in UTC.
pub fn month_bounds(month: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (y, m) = (month[..4].parse::<i32>().ok()?, month[5..].parse::<u32>().ok()?);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let tz = china_offset();
    Some((
        tz.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?.with_timezone(&Utc),
        tz.with_ymd_and_hms(ny, nm, 1, 0, 0, 0).single()?.with_timezone(&Utc),
    ))
}

/// The month's figures per unit, car and driver: of one unit and its cars and their
/// drivers when `unit_filter` names one, else of all. `month` is `YYYY-MM` (checked by the
/// caller); `now` ends the part of the month that has passed.
pub async fn monthly(
    store: &Store,
    month: &str,
    unit_filter: Option<&str>,
    factors: Co2Factors,
    now: DateTime<Utc>,
) -> Result<Monthly, StatsError> {
    let (start, end) = month_bounds(month).ok_or_else(|| StatsError::BadMonth(month.to_owned()))?;
    let prev_month = month_before(month);
    let derived = store.derived();
    let by = |totals: Vec<TripTotals>| -> HashMap<String, TripTotals> {
        totals.into_iter().map(|t| (t.key.clone(), t)).collect()
    };
    let (unit_now, unit_prev) = (
        by(derived.trip_totals(month, TripGroup::Unit).await?),
        by(derived.trip_totals(&prev_month, TripGroup::Unit).await?),
    );
    let (car_now, car_prev) = (
        by(derived.trip_totals(month, TripGroup::Vehicle).await?),
        by(derived.trip_totals(&prev_month, TripGroup::Vehicle).await?),
    );
    let (drv_now, drv_prev) = (
        by(derived.trip_totals(month, TripGroup::Driver).await?),
        by(derived.trip_totals(&prev_month, TripGroup::Driver).await?),
    );
    let charges: HashMap<String, ChargeTotals> =
        derived.charge_totals(month).await?.into_iter().map(|c| (c.key.clone(), c)).collect();
    let other_costs: HashMap<String, f64> =
        store.costs().totals(month).await?.into_iter().map(|c| (c.vin, c.yuan)).collect();
    let vehicles_all = store.vehicles().list(unit_filter).await?;
    // A unit's costs are its cars'.
    let mut unit_costs: HashMap<&str, (f64, f64)> = HashMap::new();
    for v in &vehicles_all {
        if let Some(u) = v.unit_id.as_deref() {
            let e = unit_costs.entry(u).or_default();
            e.0 += charges.get(v.vin.as_str()).map_or(0.0, |c| c.cost_yuan);
            e.1 += other_costs.get(v.vin.as_str()).copied().unwrap_or(0.0);
        }
    }
    let mut orders: HashMap<String, (BTreeMap<String, i64>, i64)> = HashMap::new();
    for (unit, status, n, passengers) in store.orders().counts_by_unit(start, end).await? {
        let entry = orders.entry(unit).or_default();
        entry.0.insert(status.as_str().to_owned(), n);
        if status == OrderStatus::Completed {
            entry.1 += passengers;
        }
    }
    // Hours and days of the month so far (all of it for a past month).
    let elapsed_end = end.min(now).max(start);
    let month_hours = hours((elapsed_end - start).num_milliseconds()).max(f64::EPSILON);
    let month_days = ((elapsed_end - start).num_seconds() + 86_399) / 86_400;

    let mut units = Vec::new();
    for unit in store.units().list().await? {
        if unit_filter.is_some_and(|f| f != unit.id) {
            continue;
        }
        let t = unit_now.get(&unit.id);
        let (trips, km, ms, kwh) = t.map_or((0, 0.0, 0, 0.0), |t| (t.trips, t.km, t.ms, t.kwh));
        let budget = budget_of(store, &unit, month).await?;
        let (order_counts, passengers) = orders.remove(&unit.id).unwrap_or_default();
        let previous = previous_of(unit_prev.get(&unit.id));
        let (charging_cost_yuan, other_costs_yuan) = unit_costs.get(unit.id.as_str()).copied().unwrap_or_default();
        units.push(UnitStats {
            charging_cost_yuan,
            other_costs_yuan,
            budget_kwh: unit.monthly_energy_budget_kwh,
            budget_share: budget.share,
            budget_warning: budget.share >= BUDGET_WARNING_SHARE,
            unit_id: unit.id,
            name: unit.name,
            orders: order_counts,
            passengers,
            trips,
            km,
            hours: hours(ms),
            kwh,
            co2_avoided_kg: factors.avoided_kg(km, kwh),
            km_change_pct: change_pct(km, previous.km),
            previous,
        });
    }
    let mut vehicles = Vec::new();
    for v in &vehicles_all {
        let key = v.vin.to_string();
        let t = car_now.get(&key);
        let (trips, km, ms, kwh, days) = t.map_or((0, 0.0, 0, 0.0, 0), |t| (t.trips, t.km, t.ms, t.kwh, t.days));
        let c = charges.get(&key);
        let previous = previous_of(car_prev.get(&key));
        vehicles.push(VehicleStats {
            vin: key,
            plate: v.plate.clone(),
            unit_id: v.unit_id.clone(),
            trips,
            km,
            hours: hours(ms),
            utilization: hours(ms) / month_hours,
            kwh,
            charging_sessions: c.map_or(0, |c| c.sessions),
            charging_kwh: c.map_or(0.0, |c| c.kwh),
            charging_cost_yuan: c.map_or(0.0, |c| c.cost_yuan),
            other_costs_yuan: other_costs.get(v.vin.as_str()).copied().unwrap_or(0.0),
            idle_days: (month_days - days).max(0),
            km_change_pct: change_pct(km, previous.km),
            previous,
        });
    }
    let cars_in_view: HashSet<String> = vehicles_all.iter().map(|v| v.vin.to_string()).collect();
    let mut drivers = Vec::new();
    for d in store.drivers().list().await? {
        // A unit sees the drivers of its cars.
        if unit_filter.is_some() && !d.vehicle_vin.as_ref().is_some_and(|v| cars_in_view.contains(v.as_str())) {
            continue;
        }
        let t = drv_now.get(&d.id);
        let (trips, km, ms) = t.map_or((0, 0.0, 0), |t| (t.trips, t.km, t.ms));
        let previous = previous_of(drv_prev.get(&d.id));
        drivers.push(DriverStats {
            driver_id: d.id,
            name: d.name,
            trips,
            km,
            hours: hours(ms),
            km_change_pct: change_pct(km, previous.km),
            previous,
        });
    }
    Ok(Monthly { month: month.to_owned(), previous_month: prev_month, co2_factors: factors, units, vehicles, drivers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_shanghai_months_and_wrap_at_the_year() {
        assert_eq!(month_before("2027-01"), "2026-12");
        let (a, b) = month_bounds("2026-12").unwrap();
        assert_eq!(
            (a.to_rfc3339().as_str(), b.to_rfc3339().as_str()),
            ("2026-11-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00")
        );
    }

    #[test]
    fn a_change_is_a_percentage_of_the_month_before_and_none_without_one() {
        assert_eq!(change_pct(150.0, 100.0), Some(50.0));
        assert_eq!(change_pct(50.0, 0.0), None);
        let t = TripTotals { key: "u1".into(), trips: 3, km: 12.5, ms: 5_400_000, kwh: 2.0, days: 2 };
        assert_eq!(previous_of(Some(&t)), Previous { trips: 3, km: 12.5, hours: 1.5, kwh: 2.0 });
        assert_eq!(previous_of(None), Previous::default());
    }
}
