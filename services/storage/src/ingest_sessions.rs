//! The persistent MQTT sessions of a cluster's ingest instances, by client id: registered by
//! their owners, drained by another instance while the owner is down (who holds a session
//! is decided by an advisory lock per client id, see `Store::try_lead`), and handed back
//! when the owner asks.

use chrono::{DateTime, Utc};

use crate::{StorageError, Store, from_ms, on_pool, to_ms};

/// Ingest sessions of a cluster.
pub struct IngestSessions<'a>(pub(crate) &'a Store);

impl IngestSessions<'_> {
    /// Registers `client_id` as a session of `share_group` (again after a restart: its
    /// group may have changed).
    pub async fn register(&self, client_id: &str, share_group: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
        let q = "INSERT INTO ingest_sessions (client_id, share_group, registered_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id) DO UPDATE SET share_group = excluded.share_group";
        on_pool!(self.0, pool => sqlx::query(q).bind(client_id).bind(share_group).bind(to_ms(now)).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The sessions of `share_group`, each with when its owner last asked for it back.
    pub async fn list(&self, share_group: &str) -> Result<Vec<(String, Option<DateTime<Utc>>)>, StorageError> {
        let q = "SELECT client_id, release_requested_ms FROM ingest_sessions WHERE share_group = $1 ORDER BY client_id";
        let rows: Vec<(String, Option<i64>)> =
            on_pool!(self.0, pool => sqlx::query_as(q).bind(share_group).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(id, ms)| (id, ms.map(from_ms))).collect())
    }

    /// The owner of `client_id` is back and asks whoever holds its session to let it go
    /// (asked again while it waits); `None` withdraws the request once it holds it again.
    pub async fn request_release(&self, client_id: &str, at: Option<DateTime<Utc>>) -> Result<(), StorageError> {
        let q = "UPDATE ingest_sessions SET release_requested_ms = $2 WHERE client_id = $1";
        on_pool!(self.0, pool => sqlx::query(q).bind(client_id).bind(at.map(to_ms)).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
