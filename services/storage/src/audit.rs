//! The audit log: every write request through the API, append-only.

use chrono::{DateTime, Utc};
use fleet_domain::User;
use serde::Serialize;

use crate::{StorageError, Store, from_ms, on_pool, to_ms};

/// One audited request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub ts: DateTime<Utc>,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub role: Option<String>,
    pub method: String,
    /// The path without the query string (which may carry a token).
    pub path: String,
    pub status: u16,
}

/// The audit log.
pub struct AuditLog<'a>(pub(crate) &'a Store);

impl AuditLog<'_> {
    /// Records one request by `user` (None: no valid token).
    pub async fn record(
        &self,
        ts: DateTime<Utc>,
        user: Option<&User>,
        method: &str,
        path: &str,
        status: u16,
    ) -> Result<(), StorageError> {
        let q = "INSERT INTO audit_log (ts_ms, user_id, username, role, method, path, status) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(to_ms(ts))
            .bind(user.map(|u| u.id))
            .bind(user.map(|u| u.username.as_str()))
            .bind(user.map(|u| u.role.as_str()))
            .bind(method)
            .bind(path)
            .bind(i32::from(status))
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Entries in `[from, to)`, newest first, at most `limit`.
    pub async fn list(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        type Row = (i64, Option<i64>, Option<String>, Option<String>, String, String, i32);
        let q = "SELECT ts_ms, user_id, username, role, method, path, status FROM audit_log \
                 WHERE ts_ms >= $1 AND ts_ms < $2 ORDER BY ts_ms DESC, id DESC LIMIT $3";
        let rows: Vec<Row> = on_pool!(self.0, pool => sqlx::query_as(q).bind(to_ms(from)).bind(to_ms(to)).bind(limit).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|(ts, user_id, username, role, method, path, status)| AuditEntry {
                ts: from_ms(ts),
                user_id,
                username,
                role,
                method,
                path,
                status: u16::try_from(status).unwrap_or(0),
            })
            .collect())
    }
}
