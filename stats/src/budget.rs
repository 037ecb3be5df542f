//! A unit's monthly energy budget as used so far, read from the derived trips.

use fleet_storage::{StorageError, Store};
use serde::Serialize;

/// A budget is flagged from this share used.
pub const BUDGET_WARNING_SHARE: f64 = 0.8;

/// A unit's energy budget for a month.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Budget {
    pub month: String,
    pub budget_kwh: f64,
    pub used_kwh: f64,
    /// Used ÷ budget (1.0 = all used; 0 budget with any use counts as spent).
    pub share: f64,
    /// True from [`BUDGET_WARNING_SHARE`] used.
    pub warning: bool,
}

impl Budget {
    /// The budget of `budget_kwh` in `month` with `used_kwh` used.
    pub fn new(month: &str, budget_kwh: f64, used_kwh: f64) -> Self {
        let share = if budget_kwh > 0.0 {
            used_kwh / budget_kwh
        } else if used_kwh > 0.0 {
            1.0
        } else {
            0.0
        };
        Self { month: month.to_owned(), budget_kwh, used_kwh, share, warning: share >= BUDGET_WARNING_SHARE }
    }

    /// All of it used: new orders are refused (unless an admin overrides).
    pub fn spent(&self) -> bool {
        self.share >= 1.0
    }
}

/// The budget of `unit` in `month` (YYYY-MM) as used so far.
pub async fn budget_of(store: &Store, unit: &fleet_domain::Unit, month: &str) -> Result<Budget, StorageError> {
    let used_kwh = store.derived().unit_energy_kwh(&unit.id, month).await?;
    Ok(Budget::new(month, unit.monthly_energy_budget_kwh, used_kwh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_warns_from_four_fifths_used_and_a_zero_budget_is_spent_by_any_use() {
        let b = Budget::new("2026-11", 100.0, 79.0);
        assert!((b.share - 0.79).abs() < 1e-12 && !b.warning);
        assert!(Budget::new("2026-11", 100.0, 80.0).warning);
        let zero = Budget::new("2026-11", 0.0, 0.5);
        assert_eq!((zero.share, zero.warning), (1.0, true));
        assert_eq!(Budget::new("2026-11", 0.0, 0.0).share, 0.0);
    }
}
