//! Webhooks and their outbox: which alarms go where, and each delivery until it is done.

use chrono::{DateTime, Utc};
use fleet_domain::alarm::{Alarm, AlarmKind};

use crate::{StorageError, Store, on_pool, to_ms};

/// A webhook as listed (its secret is never read back).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub kinds: Vec<AlarmKind>,
}

/// A delivery due to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub url: String,
    pub secret: String,
    pub body: String,
    pub alarm_id: i64,
    pub attempts: i32,
    pub next_ms: i64,
    pub created_ms: i64,
}

/// Webhooks.
pub struct Webhooks<'a>(pub(crate) &'a Store);

impl Webhooks<'_> {
    /// Stores a webhook (checked by the caller); it gets the alarms raised from now on.
    pub async fn create(&self, url: &str, kinds: &[AlarmKind], secret: &str) -> Result<Webhook, StorageError> {
        let now = to_ms(Utc::now());
        let id: Result<i64, sqlx::Error> = on_pool!(self.0, pool => async {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar("INSERT INTO webhooks (url, secret, created_ms) VALUES ($1, $2, $3) RETURNING id")
                .bind(url).bind(secret).bind(now).fetch_one(&mut *tx).await?;
            for k in kinds {
                sqlx::query("INSERT INTO webhook_kinds (webhook_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id).bind(k.as_str()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(id)
        }.await);
        Ok(Webhook { id: id?, url: url.to_owned(), kinds: kinds.to_vec() })
    }

    pub async fn list(&self) -> Result<Vec<Webhook>, StorageError> {
        let hooks: Vec<(i64, String)> =
            on_pool!(self.0, pool => sqlx::query_as("SELECT id, url FROM webhooks ORDER BY id").fetch_all(pool).await)?;
        let kinds: Vec<(i64, String)> = on_pool!(self.0, pool => sqlx::query_as("SELECT webhook_id, kind FROM webhook_kinds ORDER BY kind").fetch_all(pool).await)?;
        Ok(hooks
            .into_iter()
            .map(|(id, url)| Webhook {
                id,
                url,
                kinds: kinds.iter().filter(|(w, _)| *w == id).filter_map(|(_, k)| AlarmKind::parse(k)).collect(),
            })
            .collect())
    }

    /// Deletes a webhook and its pending deliveries; false when there was none.
    pub async fn delete(&self, id: i64) -> Result<bool, StorageError> {
        let n: u64 = on_pool!(self.0, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM webhook_kinds WHERE webhook_id = $1").bind(id).execute(&mut *tx).await?;
            let n = sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n)
        }.await)?;
        Ok(n > 0)
    }

    /// Puts every alarm stored since `since` (and after its webhook was made) of a webhook's
    /// kinds into the outbox, once per webhook and alarm; answers how many were added. `body`
    /// renders an alarm as it is sent.
    pub async fn enqueue(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        body: impl Fn(&Alarm) -> String,
    ) -> Result<u64, StorageError> {
        let q = "SELECT w.id, a.id, a.kind, a.vin, a.unit_id, a.ts_ms, a.detail, a.acknowledged_ms, a.acknowledged_by \
                 FROM alarms a \
                 JOIN webhook_kinds k ON k.kind = a.kind JOIN webhooks w ON w.id = k.webhook_id \
                 WHERE a.created_ms >= $1 AND a.created_ms >= w.created_ms \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.alarm_id = a.id) \
                 ORDER BY a.id LIMIT 10000";
        type Row = (i64, i64, String, Option<String>, Option<String>, i64, String, Option<i64>, Option<i64>);
        let rows: Vec<Row> = on_pool!(self.0, pool => sqlx::query_as(q).bind(to_ms(since)).fetch_all(pool).await)?;
        let insert = "INSERT INTO webhook_deliveries (webhook_id, alarm_id, body, next_ms, created_ms) \
                      VALUES ($1, $2, $3, $4, $4) ON CONFLICT (webhook_id, alarm_id) DO NOTHING";
        let mut added = 0;
        for (hook, id, kind, vin, unit_id, ts, detail, ack_ms, ack_by) in rows {
            let alarm = crate::alarms::alarm_of((id, kind, vin, unit_id, ts, detail, ack_ms, ack_by))?;
            let text = body(&alarm);
            added += on_pool!(self.0, pool => sqlx::query(insert)
                .bind(hook).bind(id).bind(&text).bind(to_ms(now))
                .execute(pool).await.map(|r| r.rows_affected()))?;
        }
        Ok(added)
    }

    /// Deliveries due at `now` (not delivered, not given up), oldest first.
    pub async fn due(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Delivery>, StorageError> {
        let q = "SELECT d.id, w.url, w.secret, d.body, d.alarm_id, d.attempts, d.next_ms, d.created_ms \
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.delivered_ms IS NULL AND d.gave_up_ms IS NULL AND d.next_ms <= $1 \
                 ORDER BY d.next_ms, d.id LIMIT $2";
        type Row = (i64, String, String, String, i64, i32, i64, i64);
        let rows: Vec<Row> =
            on_pool!(self.0, pool => sqlx::query_as(q).bind(to_ms(now)).bind(limit).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, url, secret, body, alarm_id, attempts, next_ms, created_ms)| Delivery {
                id,
                url,
                secret,
                body,
                alarm_id,
                attempts,
                next_ms,
                created_ms,
            })
            .collect())
    }

    /// Takes a due delivery for this sender until `until` (another instance that read it due
    /// too finds it taken); false when someone else took it first.
    pub async fn claim(&self, d: &Delivery, until: DateTime<Utc>) -> Result<bool, StorageError> {
        let q = "UPDATE webhook_deliveries SET next_ms = $3 WHERE id = $1 AND next_ms = $2 AND delivered_ms IS NULL";
        let n = on_pool!(self.0, pool => sqlx::query(q).bind(d.id).bind(d.next_ms).bind(to_ms(until)).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// A 2xx came back: never sent again.
    pub async fn delivered(&self, id: i64, now: DateTime<Utc>) -> Result<(), StorageError> {
        let q =
            "UPDATE webhook_deliveries SET delivered_ms = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1";
        on_pool!(self.0, pool => sqlx::query(q).bind(id).bind(to_ms(now)).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// It failed: tried again at `next`, or given up when `next` is none.
    pub async fn failed(
        &self,
        id: i64,
        now: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        error: &str,
    ) -> Result<(), StorageError> {
        let q = "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $2, \
                 next_ms = COALESCE($3, next_ms), gave_up_ms = CASE WHEN $3 IS NULL THEN $4 ELSE NULL END WHERE id = $1";
        on_pool!(self.0, pool => sqlx::query(q).bind(id).bind(error).bind(next.map(to_ms)).bind(to_ms(now)).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The outbox's state: (delivered, pending, given up).
    pub async fn counts(&self) -> Result<(i64, i64, i64), StorageError> {
        let q = "SELECT \
                 CAST(COALESCE(SUM(CASE WHEN delivered_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN delivered_ms IS NULL AND gave_up_ms IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN gave_up_ms IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) \
                 FROM webhook_deliveries";
        Ok(on_pool!(self.0, pool => sqlx::query_as(q).fetch_one(pool).await)?)
    }
}
