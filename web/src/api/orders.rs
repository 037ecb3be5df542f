//! `/api/v1/orders`: applying for trips, approving them, the driver's and dispatcher's
//! actions, and the append-only history (docs/dispatch.md). Every status change goes through
//! `Orders::act` (one transaction with its history entry) and is announced on the bus for
//! the live feed.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use fleet_domain::feasibility::{GeoPoint, haversine_m};
use fleet_domain::order::reservation_window;
use fleet_domain::{NewOrder, Order, OrderAction, OrderEvent, OrderStatus, Role, Vin};
use fleet_storage::{Act, Acted, Actor, OrderQuery, OrderRecord};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access::{self, OrderScope};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonBody};

/// Orders in one listing when the request names no `limit`.
pub const DEFAULT_LIST_LIMIT: i64 = 500;
/// The most orders one listing may ask for.
pub const MAX_LIST_LIMIT: i64 = 5000;

#[derive(Serialize)]
pub(crate) struct OrderList {
    orders: Vec<Order>,
}

/// An order with its history.
#[derive(Serialize)]
pub(crate) struct OrderDetail {
    #[serde(flatten)]
    order: Order,
    events: Vec<OrderEvent>,
}

/// The optional body of an action.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionBody {
    reason: Option<String>,
}

/// `POST /api/v1/orders/{id}/assign` body.
#[derive(Deserialize)]
pub(crate) struct AssignBody {
    vin: String,
    reason: Option<String>,
}

/// Longest reason accepted with an action.
const MAX_REASON_CHARS: usize = 500;

fn actor_of(auth: &AuthUser, on_behalf: bool) -> Actor {
    Actor { name: auth.user.username.clone(), user_id: Some(auth.user.id), on_behalf, driver_id: None }
}

fn announce(state: &AppState, record: &OrderRecord) {
    state.bus.publish(fleet_bus::Event::OrderChanged(Arc::new(record.order.clone())));
}

/// `POST /api/v1/orders`: a unit applies (or a dispatcher or admin for a unit). Starts
/// `pending_approval`, or `approved` in an auto-approving unit.
pub(crate) async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    // Roles that never apply are refused before their body is judged.
    if matches!(auth.user.role, Role::Driver | Role::Auditor) {
        return Err(ApiError::Forbidden);
    }
    let new: NewOrder = body.parse()?;
    access::may_create_order(&auth.user, &new.unit_id)?;
    if new.override_budget && auth.user.role != Role::Admin {
        return Err(ApiError::Forbidden);
    }
    let now = Utc::now();
    let pickup_at = new.validate(now)?;
    let unit = state
        .store
        .units()
        .get(&new.unit_id)
        .await?
        .ok_or_else(|| ApiError::validation("unit_id", "no unit has this id"))?;
    let record = create_order(&state, &auth, &new, pickup_at, &unit, now).await?;
    tracing::info!(order.id = %record.order.id, unit.id = %unit.id, user.id = auth.user.id, "order created");
    Ok((StatusCode::CREATED, super::location("orders", &record.order.id), Json(record.order)))
}

/// Stores a validated order for an existing unit and announces it. Refused with
/// `budget_exhausted` when the unit's energy budget for the pickup's month is spent, unless
/// the order overrides it (admins only; recorded in its history).
pub(crate) async fn create_order(
    state: &AppState,
    auth: &AuthUser,
    new: &NewOrder,
    pickup_at: chrono::DateTime<Utc>,
    unit: &fleet_domain::Unit,
    now: chrono::DateTime<Utc>,
) -> Result<OrderRecord, ApiError> {
    let month = fleet_domain::trips::month_of(pickup_at);
    let spent = super::trips::budget_of(state, unit, &month).await?.spent();
    if spent && !new.override_budget {
        return Err(ApiError::BudgetExhausted(month));
    }
    let auto_approve = unit.auto_approve;
    let status = if auto_approve { OrderStatus::Approved } else { OrderStatus::PendingApproval };
    let trip_m = state.dispatch.road_m(haversine_m(
        GeoPoint::new(new.pickup.lat, new.pickup.lon),
        GeoPoint::new(new.dropoff.lat, new.dropoff.lon),
    ));
    let window = reservation_window(pickup_at, state.dispatch.eta(trip_m));
    let id = super::new_id("o");
    let reasons: Vec<&str> = [(auto_approve, "auto_approve"), (spent && new.override_budget, "budget_override")]
        .into_iter()
        .filter_map(|(on, r)| on.then_some(r))
        .collect();
    let reason = (!reasons.is_empty()).then(|| reasons.join(", "));
    let record = state
        .store
        .orders()
        .create(&id, new, pickup_at, status, window, &actor_of(auth, false), reason.as_deref(), now)
        .await?;
    announce(state, &record);
    Ok(record)
}

/// `GET /api/v1/orders` query.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    /// One status or several, comma-separated.
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    unit_id: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/orders?status=&from=&to=&unit_id=&limit=`: the caller's orders by pickup
/// time, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<OrderList>, ApiError> {
    let mut query = OrderQuery { limit: q.limit.unwrap_or(DEFAULT_LIST_LIMIT), ..OrderQuery::default() };
    if !(1..=MAX_LIST_LIMIT).contains(&query.limit) {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {MAX_LIST_LIMIT}")));
    }
    if let Some(list) = q.status.as_deref().filter(|s| !s.is_empty()) {
        for s in list.split(',') {
            let status =
                OrderStatus::parse(s.trim()).ok_or_else(|| ApiError::BadRequest(format!("unknown status {s:?}")))?;
            query.statuses.push(status);
        }
    }
    query.from = q.from.as_deref().map(|s| super::vehicles::parse_time("from", s)).transpose()?;
    query.to = q.to.as_deref().map(|s| super::vehicles::parse_time("to", s)).transpose()?;
    match OrderScope::of(&auth.user) {
        OrderScope::All => query.unit_id = q.unit_id,
        OrderScope::Unit(own) => {
            if q.unit_id.as_ref().is_some_and(|u| u != &own) {
                return Err(ApiError::NotFound("unit"));
            }
            query.unit_id = Some(own);
        }
        OrderScope::Driver(None) => return Ok(Json(OrderList { orders: Vec::new() })),
        OrderScope::Driver(Some(own)) => {
            query.unit_id = q.unit_id;
            query.driver_id = Some(own);
        }
    }
    let orders = state.store.orders().list(&query).await?.into_iter().map(|r| r.order).collect();
    Ok(Json(OrderList { orders }))
}

/// An order the caller sees, else 404 (whether it exists or not). A driver sees only the
/// orders assigned to them now: one that has left them (declined, expired, reassigned) is
/// another driver's business.
async fn visible_order(state: &AppState, auth: &AuthUser, id: &str) -> Result<OrderRecord, ApiError> {
    let record = state.store.orders().get(id).await?.ok_or(ApiError::NotFound("order"))?;
    if OrderScope::of(&auth.user).sees(&record.order) { Ok(record) } else { Err(ApiError::NotFound("order")) }
}

/// `GET /api/v1/orders/{id}`: the order and its history.
pub(crate) async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrderDetail>, ApiError> {
    let record = visible_order(&state, &auth, &id).await?;
    let events = state.store.orders().events(&id).await?.into_iter().map(|(e, _)| e).collect();
    Ok(Json(OrderDetail { order: record.order, events }))
}

/// An action's optional body: empty, or `{"reason": "…"}`.
fn reason_of(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: ActionBody = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::validation("reason", e.to_string())
        } else {
            ApiError::BadRequest(format!("malformed JSON: {e}"))
        }
    })?;
    check_reason(parsed.reason)
}

fn check_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ApiError::validation("reason", format!("must hold at most {MAX_REASON_CHARS} characters")));
    }
    Ok(reason)
}

/// Runs one action for the caller: 404 outside their view, 403 for a role that may not,
/// 409 from a status that does not allow it; a same-actor repeat answers the order unchanged.
///
/// A driver's own actions (accept, decline, pickup, complete) are decided by storage in the
/// transaction that changes the order: only the driver it is assigned to may take them, and a
/// driver it has left may only repeat their last tap, answered without the order's new car
/// and driver (a former driver's anything else is 404, as for any order not theirs).
async fn act(
    state: &AppState,
    auth: &AuthUser,
    id: &str,
    action: OrderAction,
    reason: Option<String>,
    car: Option<(Vin, Option<String>)>,
) -> Result<Json<Order>, ApiError> {
    let own_tap = auth.user.role == Role::Driver && action.is_drivers();
    let actor = if own_tap {
        let driver = auth.user.driver_id.clone().ok_or(ApiError::Forbidden)?;
        Actor {
            name: auth.user.username.clone(),
            user_id: Some(auth.user.id),
            on_behalf: false,
            driver_id: Some(driver),
        }
    } else {
        let record = visible_order(state, auth, id).await?;
        let on_behalf = access::may_act(&auth.user, action, &record.order).ok_or(ApiError::Forbidden)?;
        actor_of(auth, on_behalf)
    };
    let act = Act { action, actor: &actor, reason: reason.as_deref(), car, expected_version: None };
    match state.store.orders().act(id, &act, Utc::now()).await? {
        None => Err(ApiError::NotFound("order")),
        Some(Acted::Unchanged(record)) => Ok(Json(record.order)),
        Some(Acted::FormerDriverRepeat(record)) => Ok(Json(record.order.seen_by_former_driver())),
        Some(Acted::Changed(record)) => {
            tracing::info!(order.id = %id, order.status = record.order.status.as_str(), user.id = auth.user.id, action = action.as_str(), "order changed");
            announce(state, &record);
            Ok(Json(record.order))
        }
    }
}

macro_rules! action_handler {
    ($name:ident, $action:expr) => {
        #[doc = concat!("`POST /api/v1/orders/{id}/", stringify!($name), "` with an optional `{\"reason\"}`.")]
        pub(crate) async fn $name(
            State(state): State<AppState>,
            auth: AuthUser,
            ApiPath(id): ApiPath<String>,
            body: Bytes,
        ) -> Result<Json<Order>, ApiError> {
            let reason = reason_of(&body)?;
            act(&state, &auth, &id, $action, reason, None).await
        }
    };
}

action_handler!(approve, OrderAction::Approve);
action_handler!(reject, OrderAction::Reject);
action_handler!(cancel, OrderAction::Cancel);
action_handler!(accept, OrderAction::Accept);
action_handler!(decline, OrderAction::Decline);
action_handler!(pickup, OrderAction::Pickup);
action_handler!(complete, OrderAction::Complete);

/// `POST /api/v1/orders/{id}/assign {vin}`: a dispatcher's manual assignment or
/// reassignment. A car that holds an overlapping active order → 409 `vehicle_busy`.
pub(crate) async fn assign(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    body: JsonBody,
) -> Result<Json<Order>, ApiError> {
    let record = visible_order(&state, &auth, &id).await?;
    access::may_act(&auth.user, OrderAction::Assign, &record.order).ok_or(ApiError::Forbidden)?;
    let body: AssignBody = body.parse()?;
    let reason = check_reason(body.reason)?;
    let vin = Vin::parse(&body.vin).map_err(|e| ApiError::validation("vin", e.to_string()))?;
    let vehicle = state
        .store
        .vehicles()
        .get(vin.as_str())
        .await?
        .ok_or_else(|| ApiError::validation("vin", "no vehicle has this VIN"))?;
    if vehicle.retired {
        return Err(ApiError::Conflict("the vehicle is retired".to_owned()));
    }
    if vehicle.file.in_maintenance {
        return Err(ApiError::Conflict("the vehicle is in maintenance".to_owned()));
    }
    let driver = state.store.drivers().of_vehicle(vehicle.vin.as_str()).await?.map(|d| d.id);
    if driver.is_none() {
        return Err(ApiError::Conflict("the vehicle has no driver bound to it".to_owned()));
    }
    act(&state, &auth, &id, OrderAction::Assign, reason, Some((vehicle.vin, driver))).await
}
