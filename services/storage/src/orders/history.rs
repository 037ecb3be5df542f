//! Past orders loaded with their histories in bulk (demo data, migrations from other systems).

use fleet_domain::{OrderEvent, OrderStatus, Vin};

use super::{INSERT_EVENT, OrderRecord, Orders, busy_or};
use crate::{StorageError, Store, to_ms};

/// A past order with its history, loaded as is (demo data, migrations from other systems).
#[derive(Debug, Clone)]
pub struct HistoricOrder {
    pub record: OrderRecord,
    /// Oldest first, each with the acting user's id if known.
    pub events: Vec<(OrderEvent, Option<i64>)>,
}

macro_rules! insert_history_in_tx {
    ($tx:ident, $orders:expr) => {{
        for h in $orders {
            let h: &HistoricOrder = h;
            let (r, o) = (&h.record, &h.record.order);
            sqlx::query(
                "INSERT INTO orders (id, unit_id, status, passengers, pickup_lat, pickup_lon, pickup_name, dropoff_lat, dropoff_lon, \
                 dropoff_name, pickup_at_ms, purpose, vin, driver_id, unmatched_reason, window_start_ms, window_end_ms, assigned_ms, \
                 created_ms, updated_ms, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
            )
            .bind(&o.id)
            .bind(&o.unit_id)
            .bind(o.status.as_str())
            .bind(i32::try_from(o.passengers).unwrap_or(i32::MAX))
            .bind(o.pickup.lat)
            .bind(o.pickup.lon)
            .bind(&o.pickup.name)
            .bind(o.dropoff.lat)
            .bind(o.dropoff.lon)
            .bind(&o.dropoff.name)
            .bind(to_ms(o.pickup_at))
            .bind(&o.purpose)
            .bind(o.vin.as_ref().map(Vin::as_str))
            .bind(&o.driver_id)
            .bind(&o.unmatched_reason)
            .bind(to_ms(r.window_start))
            .bind(to_ms(r.window_end))
            .bind(o.assigned_at.map(to_ms))
            .bind(to_ms(r.created_at))
            .bind(h.events.last().map_or(to_ms(r.created_at), |(e, _)| to_ms(e.ts)))
            .bind(r.version)
            .execute(&mut *$tx)
            .await
            .map_err(busy_or)?;
            for (e, user) in &h.events {
                sqlx::query(INSERT_EVENT)
                    .bind(&o.id)
                    .bind(to_ms(e.ts))
                    .bind(&e.actor)
                    .bind(*user)
                    .bind(e.action.as_str())
                    .bind(e.from.map(OrderStatus::as_str))
                    .bind(e.to.as_str())
                    .bind(&e.reason)
                    .bind(e.vin.as_ref().map(Vin::as_str))
                    .bind(e.on_behalf)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        $tx.commit().await?;
    }};
}

impl Orders<'_> {
    /// Loads past orders with their histories, many per transaction. The database's rules
    /// still hold (no car double-booked).
    pub async fn insert_history(&self, orders: &[HistoricOrder]) -> Result<(), StorageError> {
        for chunk in orders.chunks(500) {
            match self.0 {
                Store::Sqlite(pool, _) => {
                    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    insert_history_in_tx!(tx, chunk)
                }
                Store::Postgres(pool, _) => {
                    let mut tx = pool.begin().await?;
                    insert_history_in_tx!(tx, chunk)
                }
            }
        }
        Ok(())
    }
}
