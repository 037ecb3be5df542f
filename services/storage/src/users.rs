//! Users (with their password hashes) and bearer tokens (stored as hashes).

use chrono::{DateTime, Utc};
use fleet_domain::{Role, User};

use crate::{StorageError, Store, from_ms, on_pool, to_ms};

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    unit_id: Option<String>,
    driver_id: Option<String>,
    retired_ms: Option<i64>,
}

const USER_COLUMNS: &str = "id, username, role, unit_id, driver_id, retired_ms";

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    expires_ms: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;
    fn try_from(r: UserRow) -> Result<Self, StorageError> {
        let role = Role::parse(&r.role).ok_or_else(|| StorageError::Corrupt(format!("role {:?}", r.role)))?;
        Ok(User {
            id: r.id,
            username: r.username,
            role,
            unit_id: r.unit_id,
            driver_id: r.driver_id,
            retired: r.retired_ms.is_some(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

/// Users.
pub struct Users<'a>(pub(crate) &'a Store);

impl Users<'_> {
    /// Creates a user from validated fields and an already computed password hash.
    pub async fn create(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        unit_id: Option<&str>,
        driver_id: Option<&str>,
    ) -> Result<User, StorageError> {
        let q = "INSERT INTO users (username, password_hash, role, unit_id, driver_id) VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let id: i64 = on_pool!(self.0, pool => sqlx::query_scalar(q)
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(unit_id)
            .bind(driver_id)
            .fetch_one(pool)
            .await)
        .map_err(|e| StorageError::classify(e, "username", "unit or driver"))?;
        Ok(User {
            id,
            username: username.to_owned(),
            role,
            unit_id: unit_id.map(str::to_owned),
            driver_id: driver_id.map(str::to_owned),
            retired: false,
        })
    }

    /// Gives a user a new role and links (validated: [`fleet_domain::NewUser::validate_account`]);
    /// `None` when there is no such user.
    pub async fn update(
        &self,
        id: i64,
        role: Role,
        unit_id: Option<&str>,
        driver_id: Option<&str>,
    ) -> Result<Option<User>, StorageError> {
        let q = "UPDATE users SET role = $2, unit_id = $3, driver_id = $4 WHERE id = $1";
        let n = on_pool!(self.0, pool => sqlx::query(q)
            .bind(id)
            .bind(role.as_str())
            .bind(unit_id)
            .bind(driver_id)
            .execute(pool)
            .await.map(|r| r.rows_affected()))
        .map_err(|e| StorageError::classify(e, "username", "unit or driver"))?;
        if n == 0 { Ok(None) } else { self.get(id).await }
    }

    /// Takes a user out of service (once): they cannot log in any more. `None` when there is
    /// no such user. The caller revokes their tokens.
    pub async fn retire(&self, id: i64) -> Result<Option<User>, StorageError> {
        let q = "UPDATE users SET retired_ms = $2 WHERE id = $1 AND retired_ms IS NULL";
        on_pool!(self.0, pool => sqlx::query(q).bind(id).bind(to_ms(Utc::now())).execute(pool).await.map(|r| r.rows_affected()))?;
        self.get(id).await
    }

    pub async fn get(&self, id: i64) -> Result<Option<User>, StorageError> {
        let q = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(id).fetch_optional(pool).await)?;
        row.map(User::try_from).transpose()
    }

    /// A user and their password hash, by username (for login).
    pub async fn credentials(&self, username: &str) -> Result<Option<(User, String)>, StorageError> {
        let q =
            "SELECT id, username, role, unit_id, driver_id, retired_ms, password_hash FROM users WHERE username = $1";
        let row: Option<CredentialsRow> =
            on_pool!(self.0, pool => sqlx::query_as(q).bind(username).fetch_optional(pool).await)?;
        row.map(|r| User::try_from(r.user).map(|u| (u, r.password_hash))).transpose()
    }

    /// The password hash of a user, by id.
    pub async fn password_hash(&self, id: i64) -> Result<Option<String>, StorageError> {
        let q = "SELECT password_hash FROM users WHERE id = $1";
        Ok(on_pool!(self.0, pool => sqlx::query_scalar(q).bind(id).fetch_optional(pool).await)?)
    }

    pub async fn set_password_hash(&self, id: i64, hash: &str) -> Result<(), StorageError> {
        let q = "UPDATE users SET password_hash = $1 WHERE id = $2";
        on_pool!(self.0, pool => sqlx::query(q).bind(hash).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<User>, StorageError> {
        let q = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
        let rows: Vec<UserRow> =
            on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).fetch_all(pool).await)?;
        rows.into_iter().map(User::try_from).collect()
    }

    pub async fn count(&self) -> Result<i64, StorageError> {
        Ok(on_pool!(self.0, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await)?)
    }
}

/// Bearer tokens, kept only as hashes.
pub struct AuthTokens<'a>(pub(crate) &'a Store);

impl AuthTokens<'_> {
    pub async fn create(&self, token_hash: &str, user_id: i64, expires_at: DateTime<Utc>) -> Result<(), StorageError> {
        let q = "INSERT INTO auth_tokens (token_hash, user_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)";
        on_pool!(self.0, pool => sqlx::query(q)
            .bind(token_hash)
            .bind(user_id)
            .bind(to_ms(Utc::now()))
            .bind(to_ms(expires_at))
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The user holding a live (unexpired, unrevoked) token.
    pub async fn user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>, StorageError> {
        Ok(self.session(token_hash, now).await?.map(|(user, _)| user))
    }

    /// The user holding a live token, and when the token expires.
    pub async fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, DateTime<Utc>)>, StorageError> {
        let q = "SELECT u.id, u.username, u.role, u.unit_id, u.driver_id, u.retired_ms, t.expires_ms \
                 FROM auth_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.revoked_ms IS NULL AND t.expires_ms > $2 AND u.retired_ms IS NULL";
        let row: Option<SessionRow> =
            on_pool!(self.0, pool => sqlx::query_as(q).bind(token_hash).bind(to_ms(now)).fetch_optional(pool).await)?;
        row.map(|r| Ok((User::try_from(r.user)?, from_ms(r.expires_ms)))).transpose()
    }

    /// The user a token was issued to, whether or not it is still live (for the audit log:
    /// a logout is attributed although it revokes its token).
    pub async fn owner(&self, token_hash: &str) -> Result<Option<User>, StorageError> {
        let q = "SELECT u.id, u.username, u.role, u.unit_id, u.driver_id, u.retired_ms \
                 FROM auth_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1";
        let row: Option<UserRow> =
            on_pool!(self.0, pool => sqlx::query_as(q).bind(token_hash).fetch_optional(pool).await)?;
        row.map(User::try_from).transpose()
    }

    pub async fn revoke(&self, token_hash: &str) -> Result<(), StorageError> {
        let q = "UPDATE auth_tokens SET revoked_ms = $1 WHERE token_hash = $2 AND revoked_ms IS NULL";
        on_pool!(self.0, pool => sqlx::query(q).bind(to_ms(Utc::now())).bind(token_hash).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Forgets tokens that expired or were revoked before `before` (they open nothing any
    /// more; the audit log keeps who did what by name); answers how many.
    pub async fn purge(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let q = "DELETE FROM auth_tokens WHERE expires_ms < $1 OR revoked_ms < $1";
        Ok(on_pool!(self.0, pool => sqlx::query(q).bind(to_ms(before)).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    /// Revokes every token of a user (after a password change), except `keep`.
    pub async fn revoke_all_for(&self, user_id: i64, keep: Option<&str>) -> Result<(), StorageError> {
        let q = "UPDATE auth_tokens SET revoked_ms = $1 WHERE user_id = $2 AND revoked_ms IS NULL AND token_hash <> $3";
        on_pool!(self.0, pool => sqlx::query(q).bind(to_ms(Utc::now())).bind(user_id).bind(keep.unwrap_or("")).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
