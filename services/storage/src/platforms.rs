//! Accounts of the platforms that forward GB/T 32960.3 reports of many vehicles (a carmaker's
//! or a regional platform) over the TCP gateway. Only an argon2 hash of the password is kept.

use chrono::{DateTime, Utc};

use crate::{StorageError, Store, from_ms, on_pool, to_ms};

/// A platform account (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub id: i64,
    pub name: String,
    /// What the platform sends in its login (at most 12 bytes on the wire).
    pub username: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PlatformRow {
    id: i64,
    name: String,
    username: String,
    created_ms: i64,
}

impl From<PlatformRow> for Platform {
    fn from(r: PlatformRow) -> Self {
        Self { id: r.id, name: r.name, username: r.username, created_at: from_ms(r.created_ms) }
    }
}

/// Platform accounts.
pub struct Platforms<'a>(pub(crate) &'a Store);

impl Platforms<'_> {
    /// Adds an account; `Conflict` when the username is taken.
    pub async fn create(
        &self,
        name: &str,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Platform, StorageError> {
        let q = "INSERT INTO gbt32960_platforms (name, username, password_hash, created_ms) VALUES ($1, $2, $3, $4) RETURNING id";
        let id: i64 = on_pool!(self.0, pool => sqlx::query_scalar(q)
            .bind(name)
            .bind(username)
            .bind(password_hash)
            .bind(to_ms(now))
            .fetch_one(pool)
            .await)
        .map_err(|e| StorageError::classify(e, "platform username", "platform"))?;
        Ok(Platform { id, name: name.to_owned(), username: username.to_owned(), created_at: from_ms(to_ms(now)) })
    }

    /// Every account, oldest first.
    pub async fn list(&self) -> Result<Vec<Platform>, StorageError> {
        let q = "SELECT id, name, username, created_ms FROM gbt32960_platforms ORDER BY id";
        let rows: Vec<PlatformRow> = on_pool!(self.0, pool => sqlx::query_as(q).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Platform::from).collect())
    }

    /// The password hash of the account `username`, if there is one (for the platform login).
    pub async fn password_hash(&self, username: &str) -> Result<Option<String>, StorageError> {
        let q = "SELECT password_hash FROM gbt32960_platforms WHERE username = $1";
        Ok(on_pool!(self.0, pool => sqlx::query_scalar(q).bind(username).fetch_optional(pool).await)?)
    }
}
