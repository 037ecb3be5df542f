//! A fresh, empty database for one bench run, on the configured server.

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use fleet_domain::NewVehicle;
use fleet_storage::{Backend, Store};
use futures_util::{StreamExt, TryStreamExt};
use sqlx::Connection;

use super::bench_vin;

/// Registrations in flight at once on PostgreSQL, which overlaps their round trips. SQLite
/// has one writer: concurrent inserts there only wait on each other's locks (seconds, with
/// its busy handler's back-off), so they go one at a time.
const PG_REGISTER_CONCURRENCY: usize = 16;

/// Registers bench cars `0..n` (VIN [`bench_vin`], one unique plate each, no unit).
pub(crate) async fn register_vehicles(store: &Store, n: usize) -> anyhow::Result<()> {
    register_cars(store, n, |_| BenchCar {
        model: "Bench EV",
        battery_kwh: 60.0,
        consumption_kwh_per_100km: 14.0,
        unit_id: None,
        terminal_phone: None,
    })
    .await
}

/// What a bench car is besides its VIN and plate.
pub(crate) struct BenchCar {
    pub model: &'static str,
    pub battery_kwh: f64,
    pub consumption_kwh_per_100km: f64,
    pub unit_id: Option<String>,
    /// The phone number of its JT/T 808 terminal, if it has one.
    pub terminal_phone: Option<String>,
}

/// Registers bench cars `0..n` (VIN [`bench_vin`], one unique plate each), car `i` as
/// `car(i)` says.
pub(crate) async fn register_cars(store: &Store, n: usize, car: impl Fn(usize) -> BenchCar) -> anyhow::Result<()> {
    let concurrency = match store.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => PG_REGISTER_CONCURRENCY,
    };
    let car = &car;
    futures_util::stream::iter(0..n)
        .map(|i| async move {
            let vin = bench_vin(i);
            let c = car(i);
            let v = NewVehicle {
                vin: vin.to_string(),
                plate: format!("浙L{}{:05}", if i < 100_000 { 'D' } else { 'F' }, i % 100_000),
                model: c.model.into(),
                seats: 5,
                battery_kwh: c.battery_kwh,
                consumption_kwh_per_100km: c.consumption_kwh_per_100km,
                unit_id: c.unit_id,
                terminal_phone: c.terminal_phone,
                ..Default::default()
            };
            store.vehicles().create(&vin, &v).await.with_context(|| format!("registering {vin}"))
        })
        .buffer_unordered(concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// A database made for this run: a new SQLite file beside the configured one, or a new
/// PostgreSQL database on the configured server. Dropped (PostgreSQL) or removed (SQLite)
/// by `cleanup`.
pub(crate) struct BenchDb {
    pub url: String,
    admin_url: Option<String>,
    name: String,
}

impl BenchDb {
    pub(crate) async fn create(configured: &str) -> anyhow::Result<Self> {
        // A run may hold several at once.
        static MADE: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "fleet_bench_{}_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        if configured.starts_with("sqlite:") {
            let path = configured.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            let dir = std::path::Path::new(path).parent().map(|p| p.to_path_buf()).unwrap_or_default();
            let file = dir.join(format!("{tag}.db"));
            Ok(Self { url: format!("sqlite://{}", file.display()), admin_url: None, name: file.display().to_string() })
        } else {
            let mut url = url::Url::parse(configured).context("FLEET_DATABASE_URL")?;
            let admin = configured.to_owned();
            let mut conn = sqlx::PgConnection::connect(&admin).await.context("connecting to PostgreSQL")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {tag}"))).execute(&mut conn).await?;
            url.set_path(&tag);
            Ok(Self { url: url.to_string(), admin_url: Some(admin), name: tag })
        }
    }

    pub(crate) async fn store(&self) -> anyhow::Result<Store> {
        let store = Store::connect(&self.url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub(crate) async fn cleanup(self) {
        match self.admin_url {
            Some(admin) => {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let q = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                    let _ = sqlx::query(sqlx::AssertSqlSafe(q)).execute(&mut conn).await;
                }
            }
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
        }
    }
}
