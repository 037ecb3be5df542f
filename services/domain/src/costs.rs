//! Costs of running the cars beyond the electricity: tolls, parking, repairs, insurance and
//! others, entered one by one or imported from a spreadsheet.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::registry::ValidationError;
use crate::{Vin, trips};

/// What a cost was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    Toll,
    Parking,
    Repair,
    Insurance,
    Other,
}

impl CostKind {
    pub const ALL: [CostKind; 5] = [Self::Toll, Self::Parking, Self::Repair, Self::Insurance, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Toll => "toll",
            Self::Parking => "parking",
            Self::Repair => "repair",
            Self::Insurance => "insurance",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The most one cost may be, yuan.
pub const MAX_COST_YUAN: f64 = 10_000_000.0;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// A cost to record, as received.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewCost {
    pub vin: String,
    pub on: NaiveDate,
    pub kind: CostKind,
    pub amount_yuan: f64,
    #[serde(default)]
    pub note: String,
}

/// The checks every money entry shares (a cost, a service record): dated no later than
/// tomorrow (`future` says why not), 0 to [`MAX_COST_YUAN`] in `amount_field`, a note of at
/// most [`MAX_NOTE_CHARS`].
pub fn check_entry(
    on: NaiveDate,
    today: NaiveDate,
    future: &str,
    amount_field: &'static str,
    amount: f64,
    note: &str,
) -> Result<(), ValidationError> {
    if on > today + chrono::TimeDelta::days(1) {
        return Err(ValidationError::new("on", future));
    }
    if !(amount.is_finite() && (0.0..=MAX_COST_YUAN).contains(&amount)) {
        return Err(ValidationError::new(amount_field, "must be 0 to 10,000,000"));
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(ValidationError::new("note", format!("at most {MAX_NOTE_CHARS} characters")));
    }
    Ok(())
}

impl NewCost {
    /// Checks the fields (not dated after tomorrow, 0 to 10,000,000 yuan) and gives the VIN.
    pub fn validate(&self, today: NaiveDate) -> Result<Vin, ValidationError> {
        let vin = Vin::parse(&self.vin).map_err(|e| ValidationError::new("vin", e.to_string()))?;
        let future = "a cost cannot be dated in the future";
        check_entry(self.on, today, future, "amount_yuan", self.amount_yuan, &self.note)?;
        Ok(vin)
    }

    /// The statistics month (`YYYY-MM`) the cost counts in.
    pub fn month(&self) -> String {
        self.on.format("%Y-%m").to_string()
    }
}

/// A recorded cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub id: i64,
    pub vin: Vin,
    pub on: NaiveDate,
    pub kind: CostKind,
    pub amount_yuan: f64,
    pub note: String,
}

/// Today's date in Asia/Shanghai.
pub fn today() -> NaiveDate {
    chrono::Utc::now().with_timezone(&trips::china_offset()).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(on: &str, amount: f64) -> NewCost {
        NewCost {
            vin: "LSJA24U66NS000001".into(),
            on: on.parse().unwrap(),
            kind: CostKind::Toll,
            amount_yuan: amount,
            note: String::new(),
        }
    }

    #[test]
    fn costs_are_checked_and_count_in_their_month() {
        let today: NaiveDate = "2026-12-08".parse().unwrap();
        assert!(cost("2026-11-30", 25.0).validate(today).is_ok());
        assert_eq!(cost("2026-11-30", 25.0).month(), "2026-11");
        assert_eq!(cost("2026-12-10", 1.0).validate(today).unwrap_err().field, "on");
        assert_eq!(cost("2026-12-01", -1.0).validate(today).unwrap_err().field, "amount_yuan");
        assert_eq!(cost("2026-12-01", f64::NAN).validate(today).unwrap_err().field, "amount_yuan");
        let mut c = cost("2026-12-01", 1.0);
        c.vin = "nope".into();
        assert_eq!(c.validate(today).unwrap_err().field, "vin");
        c = cost("2026-12-01", 1.0);
        c.note = "x".repeat(501);
        assert_eq!(c.validate(today).unwrap_err().field, "note");
        for k in CostKind::ALL {
            assert_eq!(CostKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(CostKind::parse("fuel"), None);
    }
}
