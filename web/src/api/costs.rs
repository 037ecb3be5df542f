//! Costs (issue 21): the electricity tariff (`/api/v1/tariff`) and the costs entered beside
//! charging (`/api/v1/costs`, one by one or imported from CSV). Charging sessions are costed at
//! the tariff when they are derived; monthly statistics add both up per unit and car.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use fleet_domain::costs::{Cost, CostKind, NewCost, today};
use fleet_domain::tariff::Tariff;
use fleet_domain::{Vehicle, Vin};
use fleet_storage::StorageError;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access::{self, VehicleScope};
use crate::api::import::{RowError, csv_text, parse_rows};
use crate::api::vehicles::visible_vehicles;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiQuery, JsonBody};

/// `GET /api/v1/tariff`: the tariff set, or the default flat one.
pub(crate) async fn tariff(State(state): State<AppState>, _auth: AuthUser) -> Result<Json<Tariff>, ApiError> {
    let stored = state.store.settings().tariff().await?;
    Ok(Json(stored.unwrap_or_else(|| Tariff::flat(fleet_domain::tariff::DEFAULT_YUAN_PER_KWH))))
}

/// `PUT /api/v1/tariff` (admin): periods that tile 00:00–24:00 without gap or overlap;
/// otherwise 422 naming the problem and the stored tariff unchanged. Answered in day order.
pub(crate) async fn put_tariff(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<Json<Tariff>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let mut tariff: Tariff = body.parse()?;
    tariff.validate()?;
    tariff.periods.sort_by(|a, b| a.from.cmp(&b.from));
    state.store.settings().put_tariff(&tariff).await?;
    tracing::info!(periods = tariff.periods.len(), user.id = auth.user.id, "tariff set");
    Ok(Json(tariff))
}

#[derive(Serialize)]
pub(crate) struct CostList {
    costs: Vec<Cost>,
}

/// Stores validated costs; a VIN that is not registered is named.
async fn store_costs(state: &AppState, costs: &[(Vin, NewCost)]) -> Result<Vec<Cost>, ApiError> {
    state.store.costs().create(costs).await.map_err(|e| match e {
        StorageError::MissingReference(_) => ApiError::validation("vin", "no vehicle has this VIN"),
        e => e.into(),
    })
}

/// `POST /api/v1/costs {vin, on, kind, amount_yuan, note}` (admin).
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let new: NewCost = body.parse()?;
    let vin = new.validate(today())?;
    let mut stored = store_costs(&state, &[(vin, new)]).await?;
    let cost = stored.pop().ok_or_else(|| ApiError::Internal("a stored cost came back missing".into()))?;
    tracing::info!(cost.id = cost.id, vehicle.vin = %cost.vin, user.id = auth.user.id, "cost entered");
    Ok((StatusCode::CREATED, Json(cost)))
}

/// `GET /api/v1/costs` query.
#[derive(Deserialize)]
pub(crate) struct CostQuery {
    month: Option<String>,
    vin: Option<String>,
}

/// `GET /api/v1/costs[?month=YYYY-MM][&vin=]`: the month's costs (default this month) of the
/// cars the caller sees, by day.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<CostQuery>,
) -> Result<Json<CostList>, ApiError> {
    let month = match q.month {
        Some(m) => super::trips::parse_month(&m)?,
        None => fleet_domain::trips::month_of(chrono::Utc::now()),
    };
    let scope = VehicleScope::load(&state.store, &auth.user).await?;
    let seen: HashMap<Vin, Vehicle> =
        visible_vehicles(&state, &scope).await?.into_iter().map(|v| (v.vin.clone(), v)).collect();
    let costs = state.store.costs().list(&month, q.vin.as_deref()).await?;
    Ok(Json(CostList { costs: costs.into_iter().filter(|c| seen.contains_key(&c.vin)).collect() }))
}

/// The header row of a cost import, in this order.
pub const COLUMNS: [&str; 5] = ["vin", "on", "kind", "amount_yuan", "note"];

#[derive(Serialize, Debug)]
pub(crate) struct CostImport {
    created: Vec<i64>,
    errors: Vec<RowError>,
}

fn cost_row(r: &csv::StringRecord) -> Result<NewCost, String> {
    let on = r[1].parse().map_err(|_| format!("on: {:?} is not a day (YYYY-MM-DD)", &r[1]))?;
    let kind = CostKind::parse(&r[2])
        .ok_or_else(|| format!("kind: {:?} is none of toll, parking, repair, insurance, other", &r[2]))?;
    let amount_yuan = r[3].parse().map_err(|_| format!("amount_yuan: {:?} is not a number", &r[3]))?;
    Ok(NewCost { vin: r[0].to_owned(), on, kind, amount_yuan, note: r[4].to_owned() })
}

/// `POST /api/v1/costs/import` (admin; CSV `vin,on,kind,amount_yuan,note`): the good rows are
/// stored together, each bad one is named by its line (the header is line 1).
pub(crate) async fn import(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CostImport>, ApiError> {
    access::require(access::manages_registry(auth.user.role))?;
    let text = csv_text(&headers, &body)?;
    let rows = parse_rows(text, &COLUMNS, cost_row)?;
    let registered: std::collections::HashSet<String> = state.store.vehicles().vins().await?.into_iter().collect();
    let today = today();
    let (mut good, mut errors) = (Vec::new(), Vec::new());
    for row in rows {
        match row {
            Ok((line, new)) => match new.validate(today) {
                Ok(vin) if registered.contains(vin.as_str()) => good.push((vin, new)),
                Ok(vin) => errors.push(RowError { line, message: format!("vin: no vehicle has the VIN {vin}") }),
                Err(e) => errors.push(RowError { line, message: e.to_string() }),
            },
            Err(e) => errors.push(e),
        }
    }
    let created = store_costs(&state, &good).await?.into_iter().map(|c| c.id).collect::<Vec<_>>();
    tracing::info!(user.id = auth.user.id, created = created.len(), errors = errors.len(), "costs imported");
    Ok(Json(CostImport { created, errors }))
}
