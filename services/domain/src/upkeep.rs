//! What a car's file says is falling due: insurance, the annual inspection and maintenance
//! (by months or by km from the odometer the car reports). Pure: the vehicle, its odometer and
//! today's date in, reminders out.

use chrono::{Months, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::{Vehicle, Vin};

/// A reminder comes this many days before a date falls due...
pub const REMIND_DAYS_AHEAD: i64 = 30;
/// ...or this many km before a distance does.
pub const REMIND_KM_AHEAD: f64 = 500.0;

/// What falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    Insurance,
    Inspection,
    Maintenance,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insurance => "insurance",
            Self::Inspection => "inspection",
            Self::Maintenance => "maintenance",
        }
    }
}

/// One thing falling due for one car.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    pub vin: Vin,
    pub kind: ReminderKind,
    /// The day it falls due (none when it falls due by distance only).
    pub due_on: Option<NaiveDate>,
    /// The odometer reading at which it falls due (none when by date only).
    pub due_km: Option<f64>,
    /// Past its day, or the odometer past its reading.
    pub overdue: bool,
}

/// When the next service falls due: `last_maintenance_on` plus the months, and
/// `last_maintenance_km` (0 when none is on record) plus the km, each where the file has the
/// interval. `(None, None)` when the file sets no interval.
pub fn maintenance_due(v: &Vehicle) -> (Option<NaiveDate>, Option<f64>) {
    let f = &v.file;
    let on = match (f.last_maintenance_on, f.maintenance_every_months) {
        (Some(last), Some(m)) => last.checked_add_months(Months::new(m)),
        _ => None,
    };
    let km = f.maintenance_every_km.map(|every| f.last_maintenance_km.unwrap_or(0.0) + every);
    (on, km)
}

/// What is falling due for a car within [`REMIND_DAYS_AHEAD`] days of `today` or
/// [`REMIND_KM_AHEAD`] km of `odometer_km`, or is overdue: at most one reminder per kind. A
/// retired car has none.
pub fn reminders(v: &Vehicle, odometer_km: Option<f64>, today: NaiveDate) -> Vec<Reminder> {
    if v.retired {
        return Vec::new();
    }
    let horizon = today + TimeDelta::days(REMIND_DAYS_AHEAD);
    let by_date = |due: Option<NaiveDate>| due.is_some_and(|d| d <= horizon);
    let odo = odometer_km.filter(|k| k.is_finite());
    let by_km = |due: Option<f64>| matches!((due, odo), (Some(d), Some(o)) if o >= d - REMIND_KM_AHEAD);
    let late_date = |due: Option<NaiveDate>| due.is_some_and(|d| d < today);
    let late_km = |due: Option<f64>| matches!((due, odo), (Some(d), Some(o)) if o >= d);

    let mut out = Vec::new();
    let mut remind = |kind, due_on: Option<NaiveDate>, due_km: Option<f64>| {
        if by_date(due_on) || by_km(due_km) {
            let overdue = late_date(due_on) || late_km(due_km);
            out.push(Reminder { vin: v.vin.clone(), kind, due_on, due_km, overdue });
        }
    };
    remind(ReminderKind::Insurance, v.file.insurance_until, None);
    remind(ReminderKind::Inspection, v.file.inspection_due, None);
    let (on, km) = maintenance_due(v);
    remind(ReminderKind::Maintenance, on, km);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VehicleFile;

    fn car(file: VehicleFile) -> Vehicle {
        Vehicle {
            vin: Vin::parse("LSJA24U66NS000001").unwrap(),
            plate: "浙LD12345".into(),
            model: "m".into(),
            seats: 5,
            battery_kwh: 60.0,
            consumption_kwh_per_100km: 15.0,
            unit_id: None,
            terminal_phone: None,
            file,
            retired: false,
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn dates_remind_thirty_days_ahead_and_are_overdue_the_day_after() {
        let today = day(2026, 12, 7);
        let far = car(VehicleFile { insurance_until: Some(day(2027, 1, 7)), ..VehicleFile::default() });
        assert!(reminders(&far, None, today).is_empty(), "31 days ahead: not yet");
        let near = car(VehicleFile { insurance_until: Some(day(2027, 1, 6)), ..VehicleFile::default() });
        let r = reminders(&near, None, today);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].kind, r[0].due_on, r[0].due_km, r[0].overdue),
            (ReminderKind::Insurance, Some(day(2027, 1, 6)), None, false)
        );
        let due_today = car(VehicleFile { inspection_due: Some(today), ..VehicleFile::default() });
        assert!(!reminders(&due_today, None, today)[0].overdue);
        let late = car(VehicleFile { inspection_due: Some(day(2026, 12, 6)), ..VehicleFile::default() });
        let r = reminders(&late, None, today);
        assert_eq!((r[0].kind, r[0].overdue), (ReminderKind::Inspection, true));
    }

    #[test]
    fn maintenance_falls_due_by_months_or_km_whichever_first() {
        let today = day(2026, 12, 7);
        let file = VehicleFile {
            maintenance_every_km: Some(10_000.0),
            maintenance_every_months: Some(6),
            last_maintenance_on: Some(day(2026, 8, 1)),
            last_maintenance_km: Some(20_000.0),
            ..VehicleFile::default()
        };
        let v = car(file.clone());
        // Due 2027-02-01 or at 30,000 km: neither near at 29,400 km.
        assert!(reminders(&v, Some(29_400.0), today).is_empty());
        // 500 km ahead by distance.
        let r = reminders(&v, Some(29_500.0), today);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].due_on, r[0].due_km, r[0].overdue), (Some(day(2027, 2, 1)), Some(30_000.0), false));
        assert!(reminders(&v, Some(30_000.0), today)[0].overdue);
        // By months: within 30 days of 2027-02-01, far from the km.
        let r = reminders(&v, Some(21_000.0), day(2027, 1, 5));
        assert_eq!((r.len(), r[0].overdue), (1, false));
        assert!(reminders(&v, Some(21_000.0), day(2027, 2, 2))[0].overdue);
        // Without an odometer, only the date can remind.
        assert!(reminders(&v, None, today).is_empty());
        // No service on record: the km count from 0.
        let new = car(VehicleFile { maintenance_every_km: Some(5_000.0), ..VehicleFile::default() });
        let r = reminders(&new, Some(4_600.0), today);
        assert_eq!((r[0].due_on, r[0].due_km), (None, Some(5_000.0)));
        // Month ends stay in their month (Aug 31 + 6 months is Feb 28).
        let eom = car(VehicleFile {
            maintenance_every_months: Some(6),
            last_maintenance_on: Some(day(2026, 8, 31)),
            ..VehicleFile::default()
        });
        assert_eq!(maintenance_due(&eom).0, Some(day(2027, 2, 28)));
    }

    #[test]
    fn a_retired_car_and_an_empty_file_remind_of_nothing() {
        let today = day(2026, 12, 7);
        assert!(reminders(&car(VehicleFile::default()), Some(1e6), today).is_empty());
        let mut v = car(VehicleFile { insurance_until: Some(day(2026, 1, 1)), ..VehicleFile::default() });
        assert_eq!(reminders(&v, None, today).len(), 1);
        v.retired = true;
        assert!(reminders(&v, None, today).is_empty());
    }
}
