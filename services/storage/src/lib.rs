//! Storage: one repository interface over two back ends, SQLite (the embedded default) and
//! PostgreSQL (by URL). `Store` is a cheap handle (a pool); each aggregate has a repository
//! (`store.vehicles()`, `store.telemetry()`, …) whose methods run the same SQL on both back
//! ends where the dialects agree, and back-end-specific SQL where they do not (the
//! telemetry batch write and the monthly partitions). Queries return domain types.
//!
//! Times are stored as integer milliseconds since the epoch, except the PostgreSQL sample
//! table, whose `timestamptz` is its partition key.

mod alarms;
mod audit;
mod costs;
mod dead_letters;
mod derived;
mod error;
mod idempotency;
mod ingest_sessions;
mod mqtt_secrets;
mod notify;
mod orders;
mod platforms;
mod registry;
mod shapes;
mod stations;
mod telemetry;
mod users;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use alarms::{Alarms, Geofences};
pub use audit::{AuditEntry, AuditLog};
pub use costs::{CostTotals, Costs, Settings};
pub use dead_letters::DeadLetters;
pub use derived::{ChargeTotals, Derived, StoredTrip, TripGroup, TripTotals};
pub use error::StorageError;
pub use idempotency::{IdempotencyKeys, KeptAnswer};
pub use ingest_sessions::IngestSessions;
pub use mqtt_secrets::{MqttAccount, MqttSecrets};
pub use notify::{CHANNEL as EVENT_CHANNEL, Listener, MAX_PAYLOAD as MAX_EVENT_PAYLOAD};
pub use orders::{Act, Acted, Actor, HistoricOrder, OrderQuery, OrderRecord, Orders, Served};
pub use platforms::{Platform, Platforms};
pub use registry::{Drivers, MaintenanceRecord, Units, Vehicles};
pub use stations::{ChargingStation, ChargingStations};
pub use telemetry::{BatchOutcome, StateBacklog, Telemetry};
pub use users::{AuthTokens, Users};
pub use webhooks::{Delivery, Webhook, Webhooks};

/// Which database engine a `Store` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the database: clone freely.
#[derive(Debug, Clone)]
pub enum Store {
    /// The pool, and the one connection telemetry batches are committed on (see
    /// [`SQLITE_TELEMETRY_WRITER`]).
    Sqlite(SqlitePool, SqlitePool),
    Postgres(PgPool, telemetry::Partitions),
}

/// Where fleetd keeps its data unless told otherwise (`FLEET_DATABASE_URL`), and the server
/// the benches measure on by default.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./fleet-data/fleet.db";

/// Connections a PostgreSQL pool may hold.
pub const PG_MAX_CONNECTIONS: u32 = 16;
/// Connections a SQLite pool may hold (one writer at a time; readers in WAL run beside it).
pub const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// SQLite commits telemetry on a connection of its own. SQLite drops a connection's whole
/// page cache when another connection has written since its last transaction; from a pool
/// that hands out its connections in turn, every batch found a cold cache and read the
/// index pages it updates back from the file.
pub const SQLITE_TELEMETRY_WRITER: u32 = 1;
/// Page cache of that connection (SQLite's default is 2 MiB): a batch updates the (VIN, time)
/// index at one leaf page per car, so the cache should hold a fleet's worth of them (2,000
/// cars ≈ 8 MiB of 4 KiB pages).
pub const SQLITE_TELEMETRY_WRITER_CACHE_KIB: u32 = 8 * 1024;
/// How long a query waits for a pooled connection before failing.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a leadership's session may take to answer [`Leadership::holds`]: one behind a
/// dead network path would otherwise hang the check, and the leader with it, until TCP
/// gives up (many minutes).
pub const LEADERSHIP_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `$body` with `$pool` bound to whichever pool the store holds: for SQL that both
/// dialects accept as written.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::Store::Sqlite($pool, _) => $body,
            $crate::Store::Postgres($pool, _) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Opens a pool for `url`: `sqlite://path` (the file and its folder are created if
    /// missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StorageError::Config(format!("cannot create {}: {e}", dir.display())))?;
            }
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a committed batch survives power loss, not only a crash; the cost is
                // one fsync per batch, not per sample.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(opts.clone())
                .await?;
            let writer = SqlitePoolOptions::new()
                .max_connections(SQLITE_TELEMETRY_WRITER)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy_with(opts.pragma("cache_size", format!("-{SQLITE_TELEMETRY_WRITER_CACHE_KIB}")));
            Ok(Self::Sqlite(pool, writer))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts =
                PgConnectOptions::from_str(url).map_err(|e| StorageError::Config(format!("bad database URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(PG_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(opts)
                .await?;
            Ok(Self::Postgres(pool, telemetry::Partitions::default()))
        } else {
            Err(StorageError::Config(format!(
                "database URL must start with sqlite:// or postgres://, got {:?}",
                url.split(':').next().unwrap_or("")
            )))
        }
    }

    /// The same database through a pool of its own, for a pipeline that runs on a runtime of
    /// its own: a PostgreSQL connection answers through the I/O driver of the runtime that
    /// opened it, so the pipeline's queries would otherwise wait for the other runtime's
    /// threads. Call it on the runtime that will use it (its connections open there, lazily,
    /// at most `max_connections`). SQLite is shared as it is: its connections run on threads of
    /// their own, and telemetry must go through its one writer.
    pub async fn apart(&self, max_connections: u32) -> Self {
        match self {
            Self::Sqlite(..) => self.clone(),
            Self::Postgres(pool, partitions) => {
                let own = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with((*pool.connect_options()).clone());
                Self::Postgres(own, partitions.clone())
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(..) => Backend::Sqlite,
            Self::Postgres(..) => Backend::Postgres,
        }
    }

    /// Applies the pending migrations of this back end.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        match self {
            Self::Sqlite(pool, _) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Self::Postgres(pool, _) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), StorageError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes the pools, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool, writer) => {
                writer.close().await;
                pool.close().await;
            }
            Self::Postgres(pool, _) => pool.close().await,
        }
    }

    pub fn geofences(&self) -> Geofences<'_> {
        Geofences(self)
    }

    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks(self)
    }

    pub fn alarms(&self) -> Alarms<'_> {
        Alarms(self)
    }

    pub fn settings(&self) -> Settings<'_> {
        Settings(self)
    }

    pub fn costs(&self) -> Costs<'_> {
        Costs(self)
    }

    pub fn units(&self) -> Units<'_> {
        Units(self)
    }
    pub fn vehicles(&self) -> Vehicles<'_> {
        Vehicles(self)
    }
    pub fn drivers(&self) -> Drivers<'_> {
        Drivers(self)
    }
    pub fn users(&self) -> Users<'_> {
        Users(self)
    }
    pub fn tokens(&self) -> AuthTokens<'_> {
        AuthTokens(self)
    }
    pub fn telemetry(&self) -> Telemetry<'_> {
        Telemetry(self)
    }
    pub fn dead_letters(&self) -> DeadLetters<'_> {
        DeadLetters(self)
    }
    pub fn charging_stations(&self) -> ChargingStations<'_> {
        ChargingStations(self)
    }
    /// Tries to become the one leader named `name` among the instances on this database
    /// (PostgreSQL: a session advisory lock held on a connection of its own, released when
    /// the [`Leadership`] is dropped or its connection dies). On SQLite the one process that
    /// writes the file leads.
    pub async fn try_lead(&self, name: &str) -> Result<Option<Leadership>, StorageError> {
        match self {
            Self::Sqlite(..) => Ok(Some(Leadership(None))),
            Self::Postgres(pool, _) => {
                let mut conn = pool.acquire().await?;
                let key = lock_key(name);
                let got: bool =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut *conn).await?;
                // Off the pool for good: the lock lives exactly as long as this session.
                Ok(got.then(|| Leadership(Some(conn.detach()))))
            }
        }
    }

    pub fn audit(&self) -> AuditLog<'_> {
        AuditLog(self)
    }
    pub fn derived(&self) -> Derived<'_> {
        Derived(self)
    }
    pub fn orders(&self) -> Orders<'_> {
        Orders(self)
    }
    pub fn idempotency_keys(&self) -> IdempotencyKeys<'_> {
        IdempotencyKeys(self)
    }
    /// The MQTT sessions of a cluster's ingest instances.
    pub fn ingest_sessions(&self) -> IngestSessions<'_> {
        IngestSessions(self)
    }
    /// Vehicles' MQTT accounts (Mosquitto password-file lines).
    pub fn mqtt_secrets(&self) -> MqttSecrets<'_> {
        MqttSecrets(self)
    }
    /// Accounts of the platforms forwarding GB/T 32960.3 reports over the TCP gateway.
    pub fn platforms(&self) -> Platforms<'_> {
        Platforms(self)
    }
}

/// Held leadership (see [`Store::try_lead`]).
#[derive(Debug)]
pub struct Leadership(Option<sqlx::PgConnection>);

impl Leadership {
    /// Whether the leadership still holds: on PostgreSQL, whether its session answers within
    /// [`LEADERSHIP_CHECK_TIMEOUT`]. Once false, drop it (its session is dead or unusable) and
    /// try to lead again.
    pub async fn holds(&mut self) -> bool {
        match &mut self.0 {
            None => true,
            Some(conn) => {
                let ping = sqlx::query("SELECT 1").execute(&mut *conn);
                matches!(tokio::time::timeout(LEADERSHIP_CHECK_TIMEOUT, ping).await, Ok(Ok(_)))
            }
        }
    }
}

/// A stable 64-bit advisory-lock key for a name (FNV-1a).
fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Milliseconds since the epoch, the stored form of most times.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}
