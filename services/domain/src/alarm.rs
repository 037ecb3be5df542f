//! Alarms: what the platform raises for people to look at, each at the time of the sample
//! (or the moment) that raised it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Vin;

/// Every kind of alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    LeftParkingOffHours,
    LeftServiceArea,
    ZoneEntered,
    ZoneExited,
    LowSocIdle,
    OfflineOnOrder,
    MaintenanceDue,
    BudgetWarning,
    BudgetExhausted,
    MisuseNoOrder,
    MisuseOffHours,
    MisuseOutOfArea,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 12] = [
        Self::LeftParkingOffHours,
        Self::LeftServiceArea,
        Self::ZoneEntered,
        Self::ZoneExited,
        Self::LowSocIdle,
        Self::OfflineOnOrder,
        Self::MaintenanceDue,
        Self::BudgetWarning,
        Self::BudgetExhausted,
        Self::MisuseNoOrder,
        Self::MisuseOffHours,
        Self::MisuseOutOfArea,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeftParkingOffHours => "left_parking_off_hours",
            Self::LeftServiceArea => "left_service_area",
            Self::ZoneEntered => "zone_entered",
            Self::ZoneExited => "zone_exited",
            Self::LowSocIdle => "low_soc_idle",
            Self::OfflineOnOrder => "offline_on_order",
            Self::MaintenanceDue => "maintenance_due",
            Self::BudgetWarning => "budget_warning",
            Self::BudgetExhausted => "budget_exhausted",
            Self::MisuseNoOrder => "misuse_no_order",
            Self::MisuseOffHours => "misuse_off_hours",
            Self::MisuseOutOfArea => "misuse_out_of_area",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kinds raised by crossing geofences (evaluated again with a window of late data).
    pub const FENCE: [AlarmKind; 4] =
        [Self::LeftParkingOffHours, Self::LeftServiceArea, Self::ZoneEntered, Self::ZoneExited];
}

/// An alarm to store. `key` makes it once-only: the same alarm raised again (a window of
/// samples evaluated again) is the same row.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlarm {
    pub kind: AlarmKind,
    pub vin: Option<Vin>,
    pub unit_id: Option<String>,
    pub ts: DateTime<Utc>,
    pub key: String,
    pub detail: Value,
}

/// A stored alarm, as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub id: i64,
    pub kind: AlarmKind,
    pub vin: Option<Vin>,
    pub unit_id: Option<String>,
    pub ts: DateTime<Utc>,
    pub detail: Value,
    /// When someone marked it seen and dealt with (the alarm centre), and who (user id).
    #[serde(default)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub acknowledged_by: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_as_written() {
        for k in AlarmKind::ALL {
            assert_eq!(AlarmKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
        }
        assert_eq!(AlarmKind::parse("fire"), None);
    }
}
