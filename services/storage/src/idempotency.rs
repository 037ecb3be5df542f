//! Answers kept for `Idempotency-Key` retries (docs/api.md): a repeat with the same key by the
//! same user within 24 h is answered as the first request was.

use chrono::{DateTime, Utc};

use crate::{StorageError, Store, on_pool, to_ms};

/// Answers kept for `Idempotency-Key` retries.
pub struct IdempotencyKeys<'a>(pub(crate) &'a Store);

/// A kept answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptAnswer {
    /// The request it answered (`POST /api/v1/orders/…`): a key reused for another request
    /// is refused.
    pub request: String,
    pub status: u16,
    pub body: Vec<u8>,
}

impl IdempotencyKeys<'_> {
    /// The answer kept for this user's key, if kept since `since`.
    pub async fn get(&self, user_id: i64, key: &str, since: DateTime<Utc>) -> Result<Option<KeptAnswer>, StorageError> {
        let q =
            "SELECT request, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_ms >= $3";
        let row: Option<(String, i32, Vec<u8>)> = on_pool!(self.0, pool => sqlx::query_as(q).bind(user_id).bind(key).bind(to_ms(since)).fetch_optional(pool).await)?;
        Ok(row.map(|(request, status, body)| KeptAnswer {
            request,
            status: u16::try_from(status).unwrap_or(500),
            body,
        }))
    }

    /// Keeps an answer (the first one wins; an older expired one is replaced).
    pub async fn put(
        &self,
        user_id: i64,
        key: &str,
        answer: &KeptAnswer,
        now: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let q = "INSERT INTO idempotency_keys (user_id, key, request, status, body, created_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (user_id, key) DO UPDATE SET request = excluded.request, status = excluded.status, body = excluded.body, \
                 created_ms = excluded.created_ms WHERE idempotency_keys.created_ms < $7";
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(user_id)
            .bind(key)
            .bind(&answer.request)
            .bind(i32::from(answer.status))
            .bind(&answer.body)
            .bind(to_ms(now))
            .bind(to_ms(expired_before))
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Forgets answers kept before `before`; answers how many.
    pub async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        Ok(
            on_pool!(self.0, pool => sqlx::query("DELETE FROM idempotency_keys WHERE created_ms < $1").bind(to_ms(before)).execute(pool).await.map(|r| r.rows_affected()))?,
        )
    }
}
