//! The monthly statistics as downloads see them: three tables (units, vehicles, drivers)
//! with column titles in Chinese or English, figures rounded as shown. Writing them as CSV
//! or a workbook is the web's.

use fleet_domain::OrderStatus;

use crate::monthly::Monthly;

/// The language of a download's column titles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// One cell of a table: text, or a number a spreadsheet computes with.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Num(f64),
}

/// One table of a download: a view of the month (units, vehicles or drivers).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `units`, `vehicles` or `drivers` (the `view` a CSV download asks for).
    pub view: &'static str,
    /// The worksheet's name.
    pub title: &'static str,
    /// Column titles, in the table's language.
    pub columns: Vec<&'static str>,
    /// One row per unit, car or driver, a cell per column.
    pub rows: Vec<Vec<Cell>>,
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The three tables of a download, with column titles in `lang`.
pub fn tables(s: &Monthly, lang: Lang) -> Vec<Table> {
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
        pick("充电费用(元)", "Charging cost (yuan)"),
        pick("其他费用(元)", "Other costs (yuan)"),
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
                    n(u.charging_cost_yuan),
                    n(u.other_costs_yuan),
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
            pick("充电费用(元)", "Charging cost (yuan)"),
            pick("其他费用(元)", "Other costs (yuan)"),
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
                    n(v.charging_cost_yuan),
                    n(v.other_costs_yuan),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::co2::Co2Factors;
    use crate::monthly::{DriverStats, Previous};

    fn month(drivers: Vec<DriverStats>) -> Monthly {
        Monthly {
            month: "2026-11".into(),
            previous_month: "2026-10".into(),
            co2_factors: Co2Factors::default(),
            units: Vec::new(),
            vehicles: Vec::new(),
            drivers,
        }
    }

    #[test]
    fn every_row_has_a_cell_per_column_in_both_languages() {
        let d = DriverStats {
            driver_id: "d1".into(),
            name: "王师傅".into(),
            trips: 3,
            km: 12.346,
            hours: 1.0 / 3.0,
            previous: Previous::default(),
            km_change_pct: None,
        };
        for lang in [Lang::Zh, Lang::En] {
            let tables = tables(&month(vec![d.clone()]), lang);
            let views: Vec<&str> = tables.iter().map(|t| t.view).collect();
            assert_eq!(views, ["units", "vehicles", "drivers"]);
            assert_eq!(tables[0].columns.len(), 2 + OrderStatus::ALL.len() + 11);
            assert_eq!(tables[1].columns.len(), 14);
            for t in &tables {
                assert!(t.rows.iter().all(|r| r.len() == t.columns.len()), "{}", t.view);
            }
        }
        let drivers = &tables(&month(vec![d]), Lang::En)[2];
        assert_eq!(drivers.columns, ["Driver id", "Name", "Trips", "km", "Hours", "km vs last month (%)"]);
        assert_eq!(
            drivers.rows[0],
            [
                Cell::Text("d1".into()),
                Cell::Text("王师傅".into()),
                Cell::Num(3.0),
                Cell::Num(12.35),
                Cell::Num(0.33),
                Cell::Text(String::new()),
            ],
            "figures rounded to two places, no change shown as an empty cell"
        );
    }
}
