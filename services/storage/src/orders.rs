//! Orders: the order rows, their append-only history, the cars that declined them, and the
//! one transactional path every status change takes ([`Orders::act`]).

mod act;
mod history;

pub use act::Acted;
pub use fleet_domain::order::{Act, Actor};
pub use history::HistoricOrder;

use chrono::{DateTime, Utc};
use fleet_domain::{NewOrder, Order, OrderAction, OrderEvent, OrderStatus, Place, Vin};

use crate::{StorageError, Store, from_ms, on_pool, to_ms};

/// An order with what dispatch keeps beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub order: Order,
    /// The time the order holds its car: `[start, end)`.
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Bumped by every status change: a writer that read version `v` may insist on it.
    pub version: i64,
}

/// Which orders a listing wants.
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    pub unit_id: Option<String>,
    pub driver_id: Option<String>,
    /// Empty: every status.
    pub statuses: Vec<OrderStatus>,
    /// Pickup time bounds.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: String,
    unit_id: String,
    status: String,
    passengers: i32,
    pickup_lat: f64,
    pickup_lon: f64,
    pickup_name: String,
    dropoff_lat: f64,
    dropoff_lon: f64,
    dropoff_name: String,
    pickup_at_ms: i64,
    purpose: String,
    vin: Option<String>,
    driver_id: Option<String>,
    unmatched_reason: Option<String>,
    window_start_ms: i64,
    window_end_ms: i64,
    assigned_ms: Option<i64>,
    created_ms: i64,
    version: i64,
}

const ORDER_COLUMNS: &str = "id, unit_id, status, passengers, pickup_lat, pickup_lon, pickup_name, dropoff_lat, dropoff_lon, \
     dropoff_name, pickup_at_ms, purpose, vin, driver_id, unmatched_reason, window_start_ms, window_end_ms, assigned_ms, \
     created_ms, version";

fn corrupt(what: &str, value: &str) -> StorageError {
    StorageError::Corrupt(format!("order {what} {value:?}"))
}

impl TryFrom<OrderRow> for OrderRecord {
    type Error = StorageError;
    fn try_from(r: OrderRow) -> Result<Self, StorageError> {
        let status = OrderStatus::parse(&r.status).ok_or_else(|| corrupt("status", &r.status))?;
        let vin = r.vin.as_deref().map(|v| Vin::parse(v).map_err(|_| corrupt("VIN", v))).transpose()?;
        Ok(OrderRecord {
            order: Order {
                id: r.id,
                unit_id: r.unit_id,
                status,
                passengers: u32::try_from(r.passengers)
                    .map_err(|_| corrupt("passengers", &r.passengers.to_string()))?,
                pickup: Place { lat: r.pickup_lat, lon: r.pickup_lon, name: r.pickup_name },
                dropoff: Place { lat: r.dropoff_lat, lon: r.dropoff_lon, name: r.dropoff_name },
                pickup_at: from_ms(r.pickup_at_ms),
                purpose: r.purpose,
                vin,
                driver_id: r.driver_id,
                unmatched_reason: r.unmatched_reason,
                assigned_at: r.assigned_ms.map(from_ms),
            },
            window_start: from_ms(r.window_start_ms),
            window_end: from_ms(r.window_end_ms),
            created_at: from_ms(r.created_ms),
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    ts_ms: i64,
    actor: String,
    actor_user_id: Option<i64>,
    action: String,
    from_status: Option<String>,
    to_status: String,
    reason: Option<String>,
    vin: Option<String>,
    on_behalf: bool,
}

impl EventRow {
    fn into_event(self) -> Result<(OrderEvent, Option<i64>), StorageError> {
        let status = |s: &str| OrderStatus::parse(s).ok_or_else(|| corrupt("event status", s));
        let event = OrderEvent {
            ts: from_ms(self.ts_ms),
            actor: self.actor,
            action: OrderAction::parse(&self.action).ok_or_else(|| corrupt("event action", &self.action))?,
            from: self.from_status.as_deref().map(status).transpose()?,
            to: status(&self.to_status)?,
            reason: self.reason,
            vin: self.vin.as_deref().map(|v| Vin::parse(v).map_err(|_| corrupt("event VIN", v))).transpose()?,
            on_behalf: self.on_behalf,
        };
        Ok((event, self.actor_user_id))
    }
}

const EVENT_COLUMNS: &str = "ts_ms, actor, actor_user_id, action, from_status, to_status, reason, vin, on_behalf";
const INSERT_EVENT: &str = "INSERT INTO order_events (order_id, ts_ms, actor, actor_user_id, action, from_status, to_status, reason, vin, on_behalf) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// A double booking refused by the database (PostgreSQL's exclusion constraint, SQLite's
/// trigger) becomes [`StorageError::VehicleBusy`].
fn busy_or(e: sqlx::Error) -> StorageError {
    let busy = e
        .as_database_error()
        .is_some_and(|d| d.code().as_deref() == Some("23P01") || d.message().contains("orders_no_double_booking"));
    if busy { StorageError::VehicleBusy } else { StorageError::classify(e, "order id", "unit, vehicle or driver") }
}

/// Orders and their history.
pub struct Orders<'a>(pub(crate) &'a Store);

impl Orders<'_> {
    /// Stores a new order (validated by `NewOrder::validate`) in `status` (pending approval,
    /// or approved in an auto-approving unit) with its creation event.
    #[expect(clippy::too_many_arguments, reason = "one row's worth of fields, named at the call")]
    pub async fn create(
        &self,
        id: &str,
        new: &NewOrder,
        pickup_at: DateTime<Utc>,
        status: OrderStatus,
        window: (DateTime<Utc>, DateTime<Utc>),
        actor: &Actor,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<OrderRecord, StorageError> {
        let insert = "INSERT INTO orders (id, unit_id, status, passengers, pickup_lat, pickup_lon, pickup_name, dropoff_lat, \
             dropoff_lon, dropoff_name, pickup_at_ms, purpose, window_start_ms, window_end_ms, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)";
        let passengers =
            i32::try_from(new.passengers).map_err(|_| StorageError::Corrupt("passengers out of range".into()))?;
        macro_rules! run {
            ($tx:ident) => {{
                sqlx::query(insert)
                    .bind(id)
                    .bind(&new.unit_id)
                    .bind(status.as_str())
                    .bind(passengers)
                    .bind(new.pickup.lat)
                    .bind(new.pickup.lon)
                    .bind(new.pickup.name.trim())
                    .bind(new.dropoff.lat)
                    .bind(new.dropoff.lon)
                    .bind(new.dropoff.name.trim())
                    .bind(to_ms(pickup_at))
                    .bind(new.purpose.trim())
                    .bind(to_ms(window.0))
                    .bind(to_ms(window.1))
                    .bind(to_ms(now))
                    .execute(&mut *$tx)
                    .await
                    .map_err(busy_or)?;
                sqlx::query(INSERT_EVENT)
                    .bind(id)
                    .bind(to_ms(now))
                    .bind(&actor.name)
                    .bind(actor.user_id)
                    .bind(OrderAction::Create.as_str())
                    .bind(None::<&str>)
                    .bind(status.as_str())
                    .bind(reason)
                    .bind(None::<&str>)
                    .bind(actor.on_behalf)
                    .execute(&mut *$tx)
                    .await?;
                $tx.commit().await?;
            }};
        }
        match self.0 {
            Store::Sqlite(pool, _) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                run!(tx)
            }
            Store::Postgres(pool, _) => {
                let mut tx = pool.begin().await?;
                run!(tx)
            }
        }
        self.get(id).await?.ok_or_else(|| StorageError::Corrupt(format!("order {id} vanished after its creation")))
    }

    pub async fn get(&self, id: &str) -> Result<Option<OrderRecord>, StorageError> {
        let q = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let row: Option<OrderRow> =
            on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(pool).await)?;
        row.map(OrderRecord::try_from).transpose()
    }

    /// The order's history, oldest first, with each acting user's id.
    pub async fn events(&self, id: &str) -> Result<Vec<(OrderEvent, Option<i64>)>, StorageError> {
        let q = format!("SELECT {EVENT_COLUMNS} FROM order_events WHERE order_id = $1 ORDER BY id");
        let rows: Vec<EventRow> =
            on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_all(pool).await)?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    /// Cars never to be offered this order again (they declined it or let it time out).
    pub async fn excluded(&self, id: &str) -> Result<Vec<Vin>, StorageError> {
        let rows: Vec<String> = on_pool!(self.0, pool => sqlx::query_scalar("SELECT vin FROM order_exclusions WHERE order_id = $1 ORDER BY vin").bind(id).fetch_all(pool).await)?;
        rows.iter().map(|v| Vin::parse(v).map_err(|_| corrupt("excluded VIN", v))).collect()
    }

    /// Orders matching `q`, by pickup time, newest first.
    pub async fn list(&self, q: &OrderQuery) -> Result<Vec<OrderRecord>, StorageError> {
        let mut clauses = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if q.unit_id.is_some() {
            clauses.push(format!("unit_id = {}", next()));
        }
        if q.driver_id.is_some() {
            clauses.push(format!("driver_id = {}", next()));
        }
        if !q.statuses.is_empty() {
            let list: Vec<String> = q.statuses.iter().map(|_| next()).collect();
            clauses.push(format!("status IN ({})", list.join(", ")));
        }
        if q.from.is_some() {
            clauses.push(format!("pickup_at_ms >= {}", next()));
        }
        if q.to.is_some() {
            clauses.push(format!("pickup_at_ms < {}", next()));
        }
        let limit = next();
        let filter = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders {filter} ORDER BY pickup_at_ms DESC, id LIMIT {limit}");
        let rows: Vec<OrderRow> = on_pool!(self.0, pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
            if let Some(u) = &q.unit_id {
                query = query.bind(u);
            }
            if let Some(d) = &q.driver_id {
                query = query.bind(d);
            }
            for s in &q.statuses {
                query = query.bind(s.as_str());
            }
            if let Some(f) = q.from {
                query = query.bind(to_ms(f));
            }
            if let Some(t) = q.to {
                query = query.bind(to_ms(t));
            }
            query.bind(q.limit).fetch_all(pool).await
        })?;
        rows.into_iter().map(OrderRecord::try_from).collect()
    }

    /// Approved orders to be picked up by `horizon` (now + the dispatch lead): the next
    /// batch's orders, oldest pickup first.
    pub async fn due(&self, horizon: DateTime<Utc>) -> Result<Vec<OrderRecord>, StorageError> {
        let q = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status = 'approved' AND pickup_at_ms <= $1 ORDER BY pickup_at_ms, created_ms"
        );
        let rows: Vec<OrderRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(to_ms(horizon)).fetch_all(pool).await)?;
        rows.into_iter().map(OrderRecord::try_from).collect()
    }

    /// Orders that occupy a car now or later (assigned, accepted, picked up): the
    /// reservations and the cars' duties.
    pub async fn occupying(&self) -> Result<Vec<OrderRecord>, StorageError> {
        let q = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status IN ('assigned', 'accepted', 'picked_up') ORDER BY window_start_ms"
        );
        let rows: Vec<OrderRow> =
            on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).fetch_all(pool).await)?;
        rows.into_iter().map(OrderRecord::try_from).collect()
    }

    /// Assigned orders whose driver has not answered since before `cutoff`.
    pub async fn unanswered_since(&self, cutoff: DateTime<Utc>) -> Result<Vec<OrderRecord>, StorageError> {
        let q = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status = 'assigned' AND assigned_ms < $1 ORDER BY assigned_ms"
        );
        let rows: Vec<OrderRow> =
            on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(to_ms(cutoff)).fetch_all(pool).await)?;
        rows.into_iter().map(OrderRecord::try_from).collect()
    }

    /// The excluded cars of every order that waits for a car (approved), by order id.
    pub async fn exclusions_of_waiting(&self) -> Result<std::collections::HashMap<String, Vec<Vin>>, StorageError> {
        let q = "SELECT e.order_id, e.vin FROM order_exclusions e JOIN orders o ON o.id = e.order_id WHERE o.status = 'approved'";
        let rows: Vec<(String, String)> = on_pool!(self.0, pool => sqlx::query_as(q).fetch_all(pool).await)?;
        let mut out: std::collections::HashMap<String, Vec<Vin>> = std::collections::HashMap::new();
        for (order, vin) in rows {
            out.entry(order).or_default().push(Vin::parse(&vin).map_err(|_| corrupt("excluded VIN", &vin))?);
        }
        Ok(out)
    }

    /// Orders picked up in `[from, to)` by unit and status: `(unit, status, orders, passengers)`.
    pub async fn counts_by_unit(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, OrderStatus, i64, i64)>, StorageError> {
        let q = "SELECT unit_id, status, COUNT(*), COALESCE(SUM(passengers), 0) FROM orders                  WHERE pickup_at_ms >= $1 AND pickup_at_ms < $2 GROUP BY unit_id, status ORDER BY unit_id, status";
        let rows: Vec<(String, String, i64, i64)> =
            on_pool!(self.0, pool => sqlx::query_as(q).bind(to_ms(from)).bind(to_ms(to)).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|(u, s, n, p)| Ok((u, OrderStatus::parse(&s).ok_or_else(|| corrupt("status", &s))?, n, p)))
            .collect()
    }

    /// The orders `vin` served at some time in `[from, to]`: from its driver's acceptance (the
    /// car sets off for the pickup, so the drive there serves the order too) to the order's
    /// completion or cancellation (None while still open).
    pub async fn served_by(
        &self,
        vin: &Vin,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Served>, StorageError> {
        let q = "SELECT o.id, o.unit_id, o.driver_id, p.ts_ms,                    (SELECT MIN(c.ts_ms) FROM order_events c WHERE c.order_id = o.id AND c.action IN ('complete', 'cancel') AND c.id > p.id)                  FROM order_events p JOIN orders o ON o.id = p.order_id                  WHERE p.action = 'accept' AND p.vin = $1 AND p.ts_ms <= $3 ORDER BY p.ts_ms";
        type Row = (String, String, Option<String>, i64, Option<i64>);
        let rows: Vec<Row> = on_pool!(self.0, pool => sqlx::query_as(q).bind(vin.as_str()).bind(to_ms(from)).bind(to_ms(to)).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .filter(|r| r.4.is_none_or(|done| done >= to_ms(from)))
            .map(|(order_id, unit_id, driver_id, picked, done)| Served {
                order_id,
                unit_id,
                driver_id,
                accepted_at: from_ms(picked),
                done_at: done.map(from_ms),
            })
            .collect())
    }

    /// Records why an approved order still waits; true when the reason changed.
    pub async fn set_unmatched_reason(&self, id: &str, reason: Option<&str>) -> Result<bool, StorageError> {
        let q = "UPDATE orders SET unmatched_reason = $2 WHERE id = $1 AND status = 'approved' AND unmatched_reason IS DISTINCT FROM $2";
        let n = on_pool!(self.0, pool => sqlx::query(q).bind(id).bind(reason).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

/// An order a car served (see [`Orders::served_by`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    pub order_id: String,
    pub unit_id: String,
    pub driver_id: Option<String>,
    pub accepted_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}
