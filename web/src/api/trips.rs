//! `/api/v1/trips` (a logbook: start and end time, place and odometer) and a unit's energy
//! budget (`/api/v1/units/{id}/budget`), both read from the derived tables.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use fleet_domain::Vin;
use fleet_domain::trips::month_of;
use fleet_stats::budget::Budget;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access::{self, VehicleScope};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};

/// Trips in one answer at most.
pub const MAX_TRIPS: i64 = 10_000;

#[derive(Deserialize)]
pub(crate) struct TripQuery {
    vin: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// One logbook line: the derived trip and the order it served.
#[derive(Serialize)]
pub(crate) struct TripView {
    #[serde(flatten)]
    trip: fleet_domain::trips::Trip,
    order_id: Option<String>,
    unit_id: Option<String>,
    driver_id: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct TripList {
    trips: Vec<TripView>,
}

/// `GET /api/v1/trips?vin=&from=&to=`: trips starting in the window (default: the last 24 h),
/// of one car or of every car the caller sees.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<TripQuery>,
) -> Result<Json<TripList>, ApiError> {
    let (from, to) = super::time_window(q.from.as_deref(), q.to.as_deref(), chrono::Duration::hours(24))?;
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    let trips = match q.vin {
        Some(vin) => {
            let vehicle = state
                .store
                .vehicles()
                .get(&vin)
                .await?
                .filter(|v| scope.sees(v))
                .ok_or(ApiError::NotFound("vehicle"))?;
            state.store.derived().trips(Some(&vehicle.vin), from, to, MAX_TRIPS).await?
        }
        None => {
            let visible: std::collections::HashSet<Vin> =
                state.store.vehicles().list(None).await?.into_iter().filter(|v| scope.sees(v)).map(|v| v.vin).collect();
            state
                .store
                .derived()
                .trips(None, from, to, MAX_TRIPS)
                .await?
                .into_iter()
                .filter(|t| visible.contains(&t.trip.vin))
                .collect()
        }
    };
    let trips = trips
        .into_iter()
        .map(|s| TripView { trip: s.trip, order_id: s.order_id, unit_id: s.unit_id, driver_id: s.driver_id })
        .collect();
    Ok(Json(TripList { trips }))
}

#[derive(Deserialize)]
pub(crate) struct BudgetQuery {
    month: Option<String>,
}

/// `YYYY-MM`, checked.
pub(crate) fn parse_month(s: &str) -> Result<String, ApiError> {
    let ok = s.len() == 7
        && s.as_bytes()[4] == b'-'
        && s[..4].parse::<i32>().is_ok_and(|y| (2000..=2100).contains(&y))
        && s[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    if ok { Ok(s.to_owned()) } else { Err(ApiError::BadRequest(format!("month must be YYYY-MM, got {s:?}"))) }
}

/// The budget of `unit` in `month` as used so far (`fleet_stats::budget`).
pub(crate) async fn budget_of(state: &AppState, unit: &fleet_domain::Unit, month: &str) -> Result<Budget, ApiError> {
    Ok(fleet_stats::budget::budget_of(&state.store, unit, month).await?)
}

/// `GET /api/v1/units/{id}/budget?month=YYYY-MM` (default: this month in Asia/Shanghai).
pub(crate) async fn budget(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<BudgetQuery>,
) -> Result<Json<Budget>, ApiError> {
    let scope = access::unit_scope(&auth.user)?;
    let unit = state.store.units().get(&id).await?.filter(|u| scope.sees(&u.id)).ok_or(ApiError::NotFound("unit"))?;
    let month = match q.month {
        Some(m) => parse_month(&m)?,
        None => month_of(Utc::now()),
    };
    Ok(Json(budget_of(&state, &unit, &month).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_as_yyyy_mm() {
        assert!(parse_month("2026-11").is_ok());
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "abcd-ef"] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
    }
}
