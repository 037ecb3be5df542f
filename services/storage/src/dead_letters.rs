//! Rejected messages, kept with their reason and raw bytes.

use fleet_domain::{DeadLetter, DeadLetterReason};

use crate::{StorageError, Store, from_ms, on_pool};

/// Dead letters.
pub struct DeadLetters<'a>(pub(crate) &'a Store);

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    received_ms: i64,
    topic: String,
    vin: Option<String>,
    reason: String,
    detail: String,
    payload: Vec<u8>,
    size: i64,
}

impl DeadLetters<'_> {
    /// The newest `limit` dead letters, newest first, optionally of one reason.
    pub async fn recent(&self, limit: i64, reason: Option<DeadLetterReason>) -> Result<Vec<DeadLetter>, StorageError> {
        let q = "SELECT received_ms, topic, vin, reason, detail, payload, size FROM dead_letters \
                 WHERE ($1 IS NULL OR reason = $1) ORDER BY id DESC LIMIT $2";
        let reason = reason.map(DeadLetterReason::as_str);
        let rows: Vec<DeadLetterRow> = match self.0 {
            Store::Sqlite(pool, _) => sqlx::query_as(q).bind(reason).bind(limit).fetch_all(pool).await?,
            Store::Postgres(pool, _) => {
                let q = q.replace("$1 IS NULL", "$1::text IS NULL");
                sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(reason).bind(limit).fetch_all(pool).await?
            }
        };
        rows.into_iter()
            .map(|r| {
                Ok(DeadLetter {
                    received_at: from_ms(r.received_ms),
                    topic: r.topic,
                    vin: r.vin,
                    reason: DeadLetterReason::parse(&r.reason)
                        .ok_or_else(|| StorageError::Corrupt(format!("dead-letter reason {:?}", r.reason)))?,
                    detail: r.detail,
                    payload: r.payload,
                    size: usize::try_from(r.size).unwrap_or(0),
                })
            })
            .collect()
    }

    pub async fn count(&self) -> Result<i64, StorageError> {
        Ok(on_pool!(self.0, pool => sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters").fetch_one(pool).await)?)
    }
}

/// Appends dead letters on an open connection or transaction (the batch commit); the same
/// SQL serves both back ends, so it is written once and typed per back end.
macro_rules! insert_dead_letters {
    ($conn:expr, $letters:expr) => {
        for chunk in $crate::shapes::shaped($letters, 256) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO dead_letters (received_ms, topic, vin, reason, detail, payload, size) ",
            );
            qb.push_values(chunk, |mut b, d: &fleet_domain::DeadLetter| {
                b.push_bind($crate::to_ms(d.received_at))
                    .push_bind(d.topic.clone())
                    .push_bind(d.vin.clone())
                    .push_bind(d.reason.as_str())
                    .push_bind(d.detail.clone())
                    .push_bind(d.payload.clone())
                    .push_bind(i64::try_from(d.size).unwrap_or(i64::MAX));
            });
            qb.build().execute(&mut *$conn).await?;
        }
    };
}
pub(crate) use insert_dead_letters;

/// Like [`insert_dead_letters`], skipping each letter already stored (same time, topic,
/// reason and payload): for a batch written again after an attempt whose outcome is unknown.
/// One statement a letter; the rare path (dead letters in a retried batch).
macro_rules! insert_dead_letters_once {
    ($conn:expr, $letters:expr) => {
        for d in $letters.iter() {
            sqlx::query(
                "INSERT INTO dead_letters (received_ms, topic, vin, reason, detail, payload, size) \
                 SELECT $1, $2, $3, $4, $5, $6, $7 \
                 WHERE NOT EXISTS (SELECT 1 FROM dead_letters \
                                   WHERE received_ms = $1 AND topic = $2 AND reason = $4 AND payload = $6)",
            )
            .bind($crate::to_ms(d.received_at))
            .bind(d.topic.clone())
            .bind(d.vin.clone())
            .bind(d.reason.as_str())
            .bind(d.detail.clone())
            .bind(d.payload.clone())
            .bind(i64::try_from(d.size).unwrap_or(i64::MAX))
            .execute(&mut *$conn)
            .await?;
        }
    };
}
pub(crate) use insert_dead_letters_once;
