//! `GET /api/v1/stats/monthly?month=YYYY-MM[&unit_id=][&format=csv|xlsx][&view=][&lang=]`:
//! a month's use of the fleet per unit, car and driver (contract §3), with the month before
//! for comparison. Read from the derived trips and sessions and the orders table, never from
//! raw samples. Months are Asia/Shanghai months.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use fleet_domain::trips::{china_offset, month_of};
use fleet_domain::{OrderStatus, Role};
use fleet_storage::{TripGroup, TripTotals};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;

/// Petrol a comparable official sedan burns, L/100 km (the baseline for CO₂ avoided).
pub const DEFAULT_PETROL_L_PER_100KM: f64 = 8.0;
/// CO₂ from burning a litre of petrol, kg (IPCC 2006 default for motor gasoline, ≈2.3).
pub const DEFAULT_PETROL_KG_CO2_PER_L: f64 = 2.3;
/// CO₂ per kWh of grid electricity, kg (China's national average grid emission factor for
/// 2022, 0.5703 tCO₂/MWh, published by the Ministry of Ecology and Environment in 2024).
pub const DEFAULT_GRID_KG_CO2_PER_KWH: f64 = 0.5703;

/// The factors of the CO₂ comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Co2Factors {
    pub petrol_l_per_100km: f64,
    pub petrol_kg_co2_per_l: f64,
    pub grid_kg_co2_per_kwh: f64,
}

impl Default for Co2Factors {
    fn default() -> Self {
        Self {
            petrol_l_per_100km: DEFAULT_PETROL_L_PER_100KM,
            petrol_kg_co2_per_l: DEFAULT_PETROL_KG_CO2_PER_L,
            grid_kg_co2_per_kwh: DEFAULT_GRID_KG_CO2_PER_KWH,
        }
    }
}

impl Co2Factors {
    /// kg of CO₂ avoided by driving `km` on `kwh` instead of petrol.
    pub fn avoided_kg(&self, km: f64, kwh: f64) -> f64 {
        km * self.petrol_l_per_100km / 100.0 * self.petrol_kg_co2_per_l - kwh * self.grid_kg_co2_per_kwh
    }
}

#[derive(Deserialize)]
pub(crate) struct MonthlyQuery {
    month: Option<String>,
    unit_id: Option<String>,
    format: Option<String>,
    /// For CSV: `units` (default), `vehicles` or `drivers`.
    view: Option<String>,
    /// Column titles of downloads: `zh` (default) or `en`.
    lang: Option<String>,
}

/// Figures of the month before, for comparison.
#[derive(Serialize, Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Previous {
    trips: i64,
    km: f64,
    hours: f64,
    kwh: f64,
}

#[derive(Serialize, Debug)]
pub(crate) struct UnitStats {
    unit_id: String,
    name: String,
    /// Orders picked up (or to be) in the month, by status.
    orders: BTreeMap<String, i64>,
    /// Passengers of the month's completed orders.
    passengers: i64,
    trips: i64,
    km: f64,
    hours: f64,
    kwh: f64,
    co2_avoided_kg: f64,
    budget_kwh: f64,
    budget_share: f64,
    budget_warning: bool,
    previous: Previous,
    /// km change against the month before, percent (null when it had none).
    km_change_pct: Option<f64>,
}

#[derive(Serialize, Debug)]
pub(crate) struct VehicleStats {
    vin: String,
    plate: String,
    unit_id: Option<String>,
    trips: i64,
    km: f64,
    hours: f64,
    /// Hours under way ÷ hours of the month so far.
    utilization: f64,
    kwh: f64,
    charging_sessions: i64,
    charging_kwh: f64,
    /// Days of the month so far without a trip.
    idle_days: i64,
    previous: Previous,
    km_change_pct: Option<f64>,
}

#[derive(Serialize, Debug)]
pub(crate) struct DriverStats {
    driver_id: String,
    name: String,
    trips: i64,
    km: f64,
    hours: f64,
    previous: Previous,
    km_change_pct: Option<f64>,
}

#[derive(Serialize, Debug)]
pub(crate) struct Monthly {
    month: String,
    previous_month: String,
    co2_factors: Co2Factors,
    units: Vec<UnitStats>,
    vehicles: Vec<VehicleStats>,
    drivers: Vec<DriverStats>,
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
fn month_before(month: &str) -> String {
    let (y, m) = (month[..4].parse::<i32>().unwrap_or(2000), month[5..].parse::<u32>().unwrap_or(1));
    if m == 1 { format!("{:04}-12", y - 1) } else { format!("{y:04}-{:02}", m - 1) }
}

/// The month's first instant and the next month's, in UTC.
pub(crate) fn month_bounds(month: &str) -> Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let (y, m) = (month[..4].parse::<i32>().ok()?, month[5..].parse::<u32>().ok()?);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let tz = china_offset();
    Some((
        tz.with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?.with_timezone(&Utc),
        tz.with_ymd_and_hms(ny, nm, 1, 0, 0, 0).single()?.with_timezone(&Utc),
    ))
}

/// Builds the month's statistics for what the caller sees.
pub(crate) async fn monthly_stats(
    state: &AppState,
    auth: &AuthUser,
    month: &str,
    unit_filter: Option<&str>,
) -> Result<Monthly, ApiError> {
    let own_unit = match auth.user.role {
        Role::Driver => return Err(ApiError::Forbidden),
        Role::Unit => Some(auth.user.unit_id.clone().unwrap_or_default()),
        _ => None,
    };
    if let (Some(own), Some(f)) = (&own_unit, unit_filter)
        && own != f
    {
        return Err(ApiError::NotFound("unit"));
    }
    let unit_filter = own_unit.as_deref().or(unit_filter);
    let (start, end) = month_bounds(month).ok_or_else(|| ApiError::BadRequest(format!("bad month {month:?}")))?;
    let prev_month = month_before(month);
    let derived = state.store.derived();
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
    let charges: HashMap<String, fleet_storage::ChargeTotals> =
        derived.charge_totals(month).await?.into_iter().map(|c| (c.key.clone(), c)).collect();
    let mut orders: HashMap<String, (BTreeMap<String, i64>, i64)> = HashMap::new();
    for (unit, status, n, passengers) in state.store.orders().counts_by_unit(start, end).await? {
        let entry = orders.entry(unit).or_default();
        entry.0.insert(status.as_str().to_owned(), n);
        if status == OrderStatus::Completed {
            entry.1 += passengers;
        }
    }
    let factors = state.co2;
    let now = Utc::now();
    // Hours and days of the month so far (all of it for a past month).
    let elapsed_end = end.min(now).max(start);
    let month_hours = hours((elapsed_end - start).num_milliseconds()).max(f64::EPSILON);
    let month_days = ((elapsed_end - start).num_seconds() + 86_399) / 86_400;

    let mut units = Vec::new();
    for unit in state.store.units().list().await? {
        if unit_filter.is_some_and(|f| f != unit.id) {
            continue;
        }
        let t = unit_now.get(&unit.id);
        let (trips, km, ms, kwh) = t.map_or((0, 0.0, 0, 0.0), |t| (t.trips, t.km, t.ms, t.kwh));
        let budget = super::trips::budget_of(state, &unit, month).await?;
        let (order_counts, passengers) = orders.remove(&unit.id).unwrap_or_default();
        let previous = previous_of(unit_prev.get(&unit.id));
        units.push(UnitStats {
            budget_kwh: unit.monthly_energy_budget_kwh,
            budget_share: budget.share,
            budget_warning: budget.share >= super::trips::BUDGET_WARNING_SHARE,
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
    let vehicles_all = state.store.vehicles().list(unit_filter).await?;
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
            idle_days: (month_days - days).max(0),
            km_change_pct: change_pct(km, previous.km),
            previous,
        });
    }
    let cars_in_view: std::collections::HashSet<String> = vehicles_all.iter().map(|v| v.vin.to_string()).collect();
    let mut drivers = Vec::new();
    for d in state.store.drivers().list().await? {
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

/// `GET /api/v1/stats/monthly`.
pub(crate) async fn monthly(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<MonthlyQuery>,
) -> Result<Response, ApiError> {
    let month = match q.month {
        Some(m) => super::trips::parse_month(&m)?,
        None => month_of(Utc::now()),
    };
    let lang = match q.lang.as_deref() {
        None | Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        Some(other) => return Err(ApiError::BadRequest(format!("lang must be zh or en, got {other:?}"))),
    };
    let stats = monthly_stats(&state, &auth, &month, q.unit_id.as_deref()).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(stats).into_response()),
        Some("csv") => {
            let view = q.view.as_deref().unwrap_or("units");
            let table = tables(&stats, lang).into_iter().find(|t| t.view == view).ok_or_else(|| {
                ApiError::BadRequest(format!("view must be units, vehicles or drivers, got {view:?}"))
            })?;
            let body = csv_of(&table).map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))?;
            Ok(download(body, "text/csv; charset=utf-8", &format!("fleet-{}-{month}.csv", table.view)))
        }
        Some("xlsx") => {
            let body = xlsx_of(&tables(&stats, lang)).map_err(|e| ApiError::Internal(format!("writing XLSX: {e}")))?;
            Ok(download(
                body,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                &format!("fleet-{month}.xlsx"),
            ))
        }
        Some(other) => Err(ApiError::BadRequest(format!("format must be json, csv or xlsx, got {other:?}"))),
    }
}

fn download(body: Vec<u8>, mime: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    Zh,
    En,
}

enum Cell {
    Text(String),
    Num(f64),
}

struct Table {
    view: &'static str,
    title: &'static str,
    columns: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The three tables of a download, with column titles in `lang`.
fn tables(s: &Monthly, lang: Lang) -> Vec<Table> {
    let pick = |zh: &'static str, en: &'static str| if lang == Lang::Zh { zh } else { en };
    let n = |x: f64| Cell::Num(round(x, 2));
    let i = |x: i64| Cell::Num(x as f64);
    let change = |c: Option<f64>| c.map_or(Cell::Text(String::new()), |c| Cell::Num(round(c, 1)));
    let statuses = OrderStatus::ALL;
    let mut unit_cols = vec![pick("单位编号", "Unit id"), pick("单位名称", "Unit")];
    unit_cols.extend(statuses.iter().map(|s| match (lang, s) {
        (Lang::En, s) => s.as_str(),
        (Lang::Zh, OrderStatus::PendingApproval) => "待审批订单",
        (Lang::Zh, OrderStatus::Approved) => "待派车订单",
        (Lang::Zh, OrderStatus::Assigned) => "已派车订单",
        (Lang::Zh, OrderStatus::Accepted) => "已接单订单",
        (Lang::Zh, OrderStatus::PickedUp) => "行程中订单",
        (Lang::Zh, OrderStatus::Completed) => "已完成订单",
        (Lang::Zh, OrderStatus::Rejected) => "已驳回订单",
        (Lang::Zh, OrderStatus::Canceled) => "已取消订单",
    }));
    unit_cols.extend([
        pick("乘车人数", "Passengers"),
        pick("行程数", "Trips"),
        pick("里程(km)", "km"),
        pick("用车时长(h)", "Hours"),
        pick("电耗(kWh)", "kWh"),
        pick("减排CO₂(kg)", "CO2 avoided (kg)"),
        pick("能耗预算(kWh)", "Budget (kWh)"),
        pick("预算使用率(%)", "Budget used (%)"),
        pick("里程环比(%)", "km vs last month (%)"),
    ]);
    let units = Table {
        view: "units",
        title: pick("按单位", "Units"),
        columns: unit_cols,
        rows: s
            .units
            .iter()
            .map(|u| {
                let mut row = vec![Cell::Text(u.unit_id.clone()), Cell::Text(u.name.clone())];
                row.extend(statuses.iter().map(|st| i(u.orders.get(st.as_str()).copied().unwrap_or(0))));
                row.extend([
                    i(u.passengers),
                    i(u.trips),
                    n(u.km),
                    n(u.hours),
                    n(u.kwh),
                    n(u.co2_avoided_kg),
                    n(u.budget_kwh),
                    n(u.budget_share * 100.0),
                    change(u.km_change_pct),
                ]);
                row
            })
            .collect(),
    };
    let vehicles = Table {
        view: "vehicles",
        title: pick("按车辆", "Vehicles"),
        columns: vec![
            pick("车牌", "Plate"),
            "VIN",
            pick("所属单位", "Unit"),
            pick("行程数", "Trips"),
            pick("里程(km)", "km"),
            pick("用车时长(h)", "Hours"),
            pick("利用率(%)", "Utilization (%)"),
            pick("电耗(kWh)", "kWh"),
            pick("充电次数", "Charging sessions"),
            pick("充电量(kWh)", "Charged (kWh)"),
            pick("闲置天数", "Idle days"),
            pick("里程环比(%)", "km vs last month (%)"),
        ],
        rows: s
            .vehicles
            .iter()
            .map(|v| {
                vec![
                    Cell::Text(v.plate.clone()),
                    Cell::Text(v.vin.clone()),
                    Cell::Text(v.unit_id.clone().unwrap_or_default()),
                    i(v.trips),
                    n(v.km),
                    n(v.hours),
                    n(v.utilization * 100.0),
                    n(v.kwh),
                    i(v.charging_sessions),
                    n(v.charging_kwh),
                    i(v.idle_days),
                    change(v.km_change_pct),
                ]
            })
            .collect(),
    };
    let drivers = Table {
        view: "drivers",
        title: pick("按驾驶员", "Drivers"),
        columns: vec![
            pick("驾驶员编号", "Driver id"),
            pick("姓名", "Name"),
            pick("行程数", "Trips"),
            pick("里程(km)", "km"),
            pick("用车时长(h)", "Hours"),
            pick("里程环比(%)", "km vs last month (%)"),
        ],
        rows: s
            .drivers
            .iter()
            .map(|d| {
                vec![
                    Cell::Text(d.driver_id.clone()),
                    Cell::Text(d.name.clone()),
                    i(d.trips),
                    n(d.km),
                    n(d.hours),
                    change(d.km_change_pct),
                ]
            })
            .collect(),
    };
    vec![units, vehicles, drivers]
}

/// CSV for Excel in China: UTF-8 with a byte-order mark. Text cells are made inert for
/// spreadsheet programs ([`inert_text`]); numbers are written as numbers.
fn csv_of(t: &Table) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    w.write_record(&t.columns)?;
    for row in &t.rows {
        w.write_record(row.iter().map(|c| match c {
            Cell::Text(s) => inert_text(s).into_owned(),
            Cell::Num(x) => x.to_string(),
        }))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// A text cell a spreadsheet program shows as text, never runs as a formula: one that
/// begins with `=`, `+`, `-`, `@`, a tab or a carriage return (what Excel, LibreOffice and
/// Sheets take for the start of a formula; OWASP "CSV Injection") gets a leading `'`,
/// which they show as text and do not display.
fn inert_text(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// One worksheet per table.
fn xlsx_of(tables: &[Table]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    for t in tables {
        let sheet = book.add_worksheet();
        sheet.set_name(t.title)?;
        for (c, title) in t.columns.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            sheet.write_string_with_format(0, c, *title, &bold)?;
            sheet.set_column_width(c, 14)?;
        }
        for (r, row) in t.rows.iter().enumerate() {
            let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                match cell {
                    Cell::Text(s) => sheet.write_string(r, c, s)?,
                    Cell::Num(x) => sheet.write_number(r, c, *x)?,
                };
            }
        }
    }
    book.save_to_buffer()
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
    fn text_cells_that_a_spreadsheet_would_run_as_formulas_are_made_inert() {
        for bad in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(inert_text(bad), format!("'{bad}"), "{bad:?}");
        }
        for fine in ["市委办公室", "浙L·D7001", "a=b", "", "1-2"] {
            assert_eq!(inert_text(fine), fine);
        }
        let t = Table {
            view: "units",
            title: "t",
            columns: vec!["名称", "km"],
            rows: vec![vec![Cell::Text("=1+1".into()), Cell::Num(-3.5)]],
        };
        let csv = String::from_utf8(csv_of(&t).unwrap()).unwrap();
        assert_eq!(csv.trim_start_matches('\u{feff}'), "名称,km\n'=1+1,-3.5\n", "numbers stay numbers");
    }

    #[test]
    fn co2_avoided_is_petrol_burnt_minus_grid_emissions() {
        let f = Co2Factors::default();
        // 100 km: 8 L × 2.3 kg = 18.4 kg of petrol CO₂; 15 kWh × 0.5703 = 8.5545 kg.
        assert!((f.avoided_kg(100.0, 15.0) - (18.4 - 8.5545)).abs() < 1e-9);
    }
}
