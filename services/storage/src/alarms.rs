//! Geofences and alarms.

use chrono::{DateTime, Utc};
use fleet_domain::Vin;
use fleet_domain::alarm::{Alarm, AlarmKind, NewAlarm};
use fleet_domain::geofence::{FenceKind, Geofence, NewGeofence};

use crate::{StorageError, Store, from_ms, on_pool, to_ms};

type FenceRow = (i64, String, String, Option<String>, Option<String>, String, Option<f64>);

fn fence_of((id, name, kind, unit_id, vin, geometry, radius_m): FenceRow) -> Result<Geofence, StorageError> {
    Ok(Geofence {
        id,
        name,
        kind: FenceKind::parse(&kind).ok_or_else(|| StorageError::Corrupt(format!("geofence kind {kind:?}")))?,
        unit_id,
        vin,
        geometry: serde_json::from_str(&geometry)
            .map_err(|e| StorageError::Corrupt(format!("geofence {id} geometry: {e}")))?,
        radius_m,
    })
}

/// Geofences.
pub struct Geofences<'a>(pub(crate) &'a Store);

impl Geofences<'_> {
    /// Stores a validated geofence. A unit or VIN that does not exist → `MissingReference`.
    pub async fn create(&self, g: &NewGeofence) -> Result<Geofence, StorageError> {
        let q = "INSERT INTO geofences (name, kind, unit_id, vin, geometry, radius_m) VALUES ($1, $2, $3, $4, $5, $6) \
                 RETURNING id";
        let id: i64 = on_pool!(self.0, pool => sqlx::query_scalar(q)
            .bind(g.name.trim())
            .bind(g.kind.as_str())
            .bind(&g.unit_id)
            .bind(&g.vin)
            .bind(g.geometry.to_string())
            .bind(g.radius_m)
            .fetch_one(pool)
            .await)
        .map_err(|e| StorageError::classify(e, "geofence", "unit or vehicle"))?;
        Ok(Geofence {
            id,
            name: g.name.trim().to_owned(),
            kind: g.kind,
            unit_id: g.unit_id.clone(),
            vin: g.vin.clone(),
            geometry: g.geometry.clone(),
            radius_m: g.radius_m,
        })
    }

    pub async fn list(&self) -> Result<Vec<Geofence>, StorageError> {
        let q = "SELECT id, name, kind, unit_id, vin, geometry, radius_m FROM geofences ORDER BY id";
        let rows: Vec<FenceRow> = on_pool!(self.0, pool => sqlx::query_as(q).fetch_all(pool).await)?;
        rows.into_iter().map(fence_of).collect()
    }

    /// Deletes a geofence; false when there was none. Its alarms stay.
    pub async fn delete(&self, id: i64) -> Result<bool, StorageError> {
        let q = "DELETE FROM geofences WHERE id = $1";
        let n = on_pool!(self.0, pool => sqlx::query(q).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

pub(crate) type AlarmRow = (i64, String, Option<String>, Option<String>, i64, String, Option<i64>, Option<i64>);

pub(crate) fn alarm_of((id, kind, vin, unit_id, ts, detail, ack_ms, ack_by): AlarmRow) -> Result<Alarm, StorageError> {
    Ok(Alarm {
        id,
        kind: AlarmKind::parse(&kind).ok_or_else(|| StorageError::Corrupt(format!("alarm kind {kind:?}")))?,
        vin: vin
            .map(|v| Vin::parse(&v).map_err(|e| StorageError::Corrupt(format!("alarm VIN {v:?}: {e}"))))
            .transpose()?,
        unit_id,
        ts: from_ms(ts),
        detail: serde_json::from_str(&detail).map_err(|e| StorageError::Corrupt(format!("alarm {id} detail: {e}")))?,
        acknowledged_at: ack_ms.map(from_ms),
        acknowledged_by: ack_by,
    })
}

const ALARM_COLUMNS: &str = "id, kind, vin, unit_id, ts_ms, detail, acknowledged_ms, acknowledged_by";

/// Alarms.
pub struct Alarms<'a>(pub(crate) &'a Store);

macro_rules! insert_alarm {
    ($exec:expr, $a:expr) => {{
        let a: &NewAlarm = $a;
        let q = "INSERT INTO alarms (kind, vin, unit_id, ts_ms, key, detail) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (key) DO NOTHING RETURNING id";
        sqlx::query_scalar::<_, i64>(q)
            .bind(a.kind.as_str())
            .bind(a.vin.as_ref().map(Vin::as_str))
            .bind(&a.unit_id)
            .bind(to_ms(a.ts))
            .bind(&a.key)
            .bind(a.detail.to_string())
            .fetch_optional($exec)
            .await
    }};
}

fn stored(id: i64, a: &NewAlarm) -> Alarm {
    Alarm {
        id,
        kind: a.kind,
        vin: a.vin.clone(),
        unit_id: a.unit_id.clone(),
        ts: a.ts,
        detail: a.detail.clone(),
        acknowledged_at: None,
        acknowledged_by: None,
    }
}

impl Alarms<'_> {
    /// Stores an alarm unless one with its key is stored; answers it when it is new.
    pub async fn raise(&self, a: &NewAlarm) -> Result<Option<Alarm>, StorageError> {
        let id: Option<i64> = on_pool!(self.0, pool => insert_alarm!(pool, a))?;
        Ok(id.map(|id| stored(id, a)))
    }

    /// Makes a car's alarms of `kinds` timed in `(after, before)` exactly `alarms`: those no
    /// longer raised go, new ones come, the rest stay as they are (same id). Answers the new
    /// ones. Used when a window of samples is evaluated again.
    pub async fn replace_window(
        &self,
        vin: &Vin,
        kinds: &[AlarmKind],
        after: DateTime<Utc>,
        before: DateTime<Utc>,
        alarms: &[NewAlarm],
    ) -> Result<Vec<Alarm>, StorageError> {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let list = kinds.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        let existing =
            format!("SELECT id, key FROM alarms WHERE vin = $1 AND ts_ms > $2 AND ts_ms < $3 AND kind IN ({list})");
        let keep: std::collections::HashSet<&str> = alarms.iter().map(|a| a.key.as_str()).collect();
        macro_rules! replace {
            ($tx:ident) => {{
                let rows: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(existing.as_str()))
                    .bind(vin.as_str())
                    .bind(to_ms(after))
                    .bind(to_ms(before))
                    .fetch_all(&mut *$tx)
                    .await?;
                for (id, key) in &rows {
                    if !keep.contains(key.as_str()) {
                        sqlx::query("DELETE FROM alarms WHERE id = $1").bind(id).execute(&mut *$tx).await?;
                    }
                }
                let mut added = Vec::new();
                for a in alarms {
                    if let Some(id) = insert_alarm!(&mut *$tx, a)? {
                        added.push(stored(id, a));
                    }
                }
                $tx.commit().await?;
                Ok::<_, sqlx::Error>(added)
            }};
        }
        // Read, then write: SQLite takes the write lock first (BEGIN IMMEDIATE), so two
        // writers never deadlock upgrading their read locks.
        let added = match self.0 {
            Store::Sqlite(pool, _) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                replace!(tx)
            }
            Store::Postgres(pool, _) => {
                let mut tx = pool.begin().await?;
                replace!(tx)
            }
        };
        Ok(added?)
    }

    /// Alarms timed in `[from, to)`, of one kind or all, newest first, at most `limit`.
    pub async fn list(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        kind: Option<AlarmKind>,
        unacknowledged: bool,
        limit: i64,
    ) -> Result<Vec<Alarm>, StorageError> {
        let open = if unacknowledged { " AND acknowledged_ms IS NULL" } else { "" };
        let q = format!(
            "SELECT {ALARM_COLUMNS} FROM alarms WHERE ts_ms >= $1 AND ts_ms < $2 AND ($3 IS NULL OR kind = $3){open} \
             ORDER BY ts_ms DESC, id DESC LIMIT $4"
        );
        let rows: Vec<AlarmRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str()))
            .bind(to_ms(from))
            .bind(to_ms(to))
            .bind(kind.map(AlarmKind::as_str))
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(alarm_of).collect()
    }

    pub async fn get(&self, id: i64) -> Result<Option<Alarm>, StorageError> {
        let q = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE id = $1");
        let row: Option<AlarmRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(id).fetch_optional(pool).await)?;
        row.map(alarm_of).transpose()
    }

    /// Marks an alarm dealt with by `user_id` (the first acknowledgement stays); answers it.
    pub async fn acknowledge(&self, id: i64, user_id: i64, now: DateTime<Utc>) -> Result<Option<Alarm>, StorageError> {
        let q =
            "UPDATE alarms SET acknowledged_ms = $2, acknowledged_by = $3 WHERE id = $1 AND acknowledged_ms IS NULL";
        on_pool!(self.0, pool => sqlx::query(q).bind(id).bind(to_ms(now)).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))?;
        self.get(id).await
    }
}
