use thiserror::Error;

/// What can go wrong in storage.
#[derive(Debug, Error)]
pub enum StorageError {
    /// A unique constraint: the named thing exists already.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A reference to something that does not exist.
    #[error("{0} does not exist")]
    MissingReference(&'static str),
    #[error("bad database configuration: {0}")]
    Config(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The order's status does not allow the action (409 `invalid_transition`).
    #[error("cannot {action} an order that is {from}")]
    InvalidTransition { action: &'static str, from: &'static str },
    /// The car already holds an order whose window overlaps (409 `vehicle_busy`).
    #[error("the vehicle already holds an overlapping order")]
    VehicleBusy,
    /// The order changed since it was read (a concurrent writer won); read it again.
    #[error("the order changed meanwhile")]
    Stale,
    /// A driver acting for themselves on an order that is not (or no longer) theirs: to them
    /// it is outside their view (404).
    #[error("the order is not assigned to this driver")]
    NotTheirs,
    #[error("database error: {0}")]
    Db(sqlx::Error),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl StorageError {
    /// Maps constraint violations to `Conflict`/`MissingReference` with a readable name of
    /// what collided, keeping every other error as is.
    pub(crate) fn classify(e: sqlx::Error, unique: &'static str, reference: &'static str) -> Self {
        if let Some(db) = e.as_database_error() {
            if db.is_unique_violation() {
                return Self::Conflict(unique);
            }
            if db.is_foreign_key_violation() {
                return Self::MissingReference(reference);
            }
        }
        Self::Db(e)
    }

    /// True for errors that mean the database is unreachable or failing, not that the
    /// request was wrong: the caller should retry later.
    /// The database gave up this transaction to let a concurrent one through (PostgreSQL's
    /// deadlock 40P01 or serialization failure 40001): running it again is the answer. Two
    /// orders assigned the same car at once each wait, in the exclusion constraint's check,
    /// for the other's row; PostgreSQL ends one, and run again it meets the other's committed
    /// booking and is refused as a double booking.
    pub fn is_retryable_conflict(&self) -> bool {
        matches!(self, Self::Db(sqlx::Error::Database(db)) if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
    }

    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Db(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_)
            )
        ) || matches!(self, Self::Db(sqlx::Error::Database(db)) if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57") || c == "5" || c == "6"))
    }
}
