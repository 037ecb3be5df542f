//! [`Orders::act`]: the SQL around the domain's decision of a status change
//! ([`fleet_domain::order::decide`]): read the order and what the decision needs of its
//! history, then write what it decided, all in one transaction.

use chrono::{DateTime, Utc};
use fleet_domain::Vin;
use fleet_domain::order::{Act, Decision, History, Refusal, decide};

use super::{EVENT_COLUMNS, EventRow, INSERT_EVENT, ORDER_COLUMNS, OrderRecord, OrderRow, Orders, busy_or};
use crate::{StorageError, Store, to_ms};

/// What [`Orders::act`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Acted {
    Changed(OrderRecord),
    /// The same actor repeated the action that brought the order to its status: nothing
    /// was recorded (retried taps).
    Unchanged(OrderRecord),
    /// A driver the order has left repeated their own last action on it: nothing was
    /// recorded, and the answer must not show who has the order now
    /// ([`fleet_domain::Order::seen_by_former_driver`]).
    FormerDriverRepeat(OrderRecord),
}

impl Acted {
    pub fn record(&self) -> &OrderRecord {
        match self {
            Self::Changed(r) | Self::Unchanged(r) | Self::FormerDriverRepeat(r) => r,
        }
    }
}

impl From<Refusal> for StorageError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Stale => Self::Stale,
            Refusal::NotTheirs => Self::NotTheirs,
            Refusal::InvalidTransition { action, from } => {
                Self::InvalidTransition { action: action.as_str(), from: from.as_str() }
            }
            Refusal::NoCar => Self::Corrupt(r.to_string()),
        }
    }
}

/// Attempts of one status change when the database ends its transaction to break a deadlock
/// with a concurrent one (see [`StorageError::is_retryable_conflict`]).
const ACT_ATTEMPTS: u32 = 5;

/// An open transaction on either back end. SQLite's is `BEGIN IMMEDIATE`, so it holds the
/// write lock from its first statement; PostgreSQL's locks the order's row as it reads it.
enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection: for SQL that both
/// dialects accept as written.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

impl Orders<'_> {
    /// Changes an order's status by `act`, in one transaction with its history entry: the
    /// domain decides (state machine, version, a driver's standing, same-actor repeats,
    /// exclusions); storage excludes a declining car from the order and lets the database
    /// refuse a double booking. `None` when no order has this id.
    pub async fn act(&self, id: &str, act: &Act<'_>, now: DateTime<Utc>) -> Result<Option<Acted>, StorageError> {
        let mut attempt = 1;
        loop {
            match self.act_once(id, act, now).await {
                Err(e) if e.is_retryable_conflict() && attempt < ACT_ATTEMPTS => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    /// One attempt of [`Orders::act`], in one transaction.
    async fn act_once(&self, id: &str, act: &Act<'_>, now: DateTime<Utc>) -> Result<Option<Acted>, StorageError> {
        let (mut tx, lock) = match self.0 {
            Store::Sqlite(pool, _) => (Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?), ""),
            Store::Postgres(pool, _) => (Tx::Postgres(pool.begin().await?), " FOR UPDATE"),
        };
        let q = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{lock}");
        let row: Option<OrderRow> =
            on_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await)?;
        let Some(row) = row else { return Ok(None) };
        let current = OrderRecord::try_from(row)?;
        let own_last = match act.needs_own_last(&current.order) {
            Some(user) => {
                let q = "SELECT action FROM order_events WHERE order_id = $1 AND actor_user_id = $2 ORDER BY id DESC LIMIT 1";
                let action: Option<String> =
                    on_tx!(&mut tx, c => sqlx::query_scalar(q).bind(id).bind(user).fetch_optional(c).await)?;
                action.as_deref().and_then(fleet_domain::OrderAction::parse)
            }
            None => None,
        };
        let q = format!("SELECT {EVENT_COLUMNS} FROM order_events WHERE order_id = $1 ORDER BY id DESC LIMIT 1");
        let last: Option<EventRow> =
            on_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(id).fetch_optional(c).await)?;
        let last = last.map(EventRow::into_event).transpose()?;
        let history = History { own_last, last: last.as_ref() };
        // Every answer but a change leaves the transaction unwritten; dropped, it rolls back.
        let change = match decide(&current.order, current.version, act, history, now) {
            Decision::Apply(change) => *change,
            Decision::Repeat => return Ok(Some(Acted::Unchanged(current))),
            Decision::FormerDriverRepeat => return Ok(Some(Acted::FormerDriverRepeat(current))),
            Decision::Refuse(refusal) => return Err(refusal.into()),
        };
        if let Some(vin) = &change.exclude {
            let q = "INSERT INTO order_exclusions (order_id, vin) VALUES ($1, $2) ON CONFLICT DO NOTHING";
            on_tx!(&mut tx, c => sqlx::query(q).bind(id).bind(vin.as_str()).execute(c).await.map(|_| ()))?;
        }
        let (next, event) = (&change.order, &change.event);
        let q = "UPDATE orders SET status = $2, vin = $3, driver_id = $4, unmatched_reason = $5, assigned_ms = $6, \
                 updated_ms = $7, version = $8 WHERE id = $1";
        on_tx!(&mut tx, c => sqlx::query(q)
            .bind(id)
            .bind(next.status.as_str())
            .bind(next.vin.as_ref().map(Vin::as_str))
            .bind(&next.driver_id)
            .bind(&next.unmatched_reason)
            .bind(next.assigned_at.map(to_ms))
            .bind(to_ms(now))
            .bind(change.version)
            .execute(c)
            .await
            .map(|_| ()))
        .map_err(busy_or)?;
        on_tx!(&mut tx, c => sqlx::query(INSERT_EVENT)
            .bind(id)
            .bind(to_ms(event.ts))
            .bind(&event.actor)
            .bind(act.actor.user_id)
            .bind(event.action.as_str())
            .bind(event.from.map(|s| s.as_str()))
            .bind(event.to.as_str())
            .bind(event.reason.as_deref())
            .bind(event.vin.as_ref().map(Vin::as_str))
            .bind(event.on_behalf)
            .execute(c)
            .await
            .map(|_| ()))?;
        match tx {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(Some(Acted::Changed(OrderRecord { order: change.order, version: change.version, ..current })))
    }
}
