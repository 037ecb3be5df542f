//! A fresh, empty database for one bench run, on the configured server.

use anyhow::Context;
use fleet_storage::Store;
use sqlx::Connection;

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
        let tag = format!("fleet_bench_{}_{}", std::process::id(), chrono::Utc::now().timestamp());
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
