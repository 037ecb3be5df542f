//! Charging stations (shown on the map; used by dispatch for charging trips later).

use serde::Serialize;

use crate::{StorageError, Store, on_pool};

/// A charging station.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ChargingStation {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub power_kw: f64,
}

/// Charging stations.
pub struct ChargingStations<'a>(pub(crate) &'a Store);

impl ChargingStations<'_> {
    pub async fn create(&self, s: &ChargingStation) -> Result<(), StorageError> {
        let q = "INSERT INTO charging_stations (id, name, lat, lon, power_kw) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self.0, pool => sqlx::query(q).bind(&s.id).bind(&s.name).bind(s.lat).bind(s.lon).bind(s.power_kw).execute(pool).await.map(|r| r.rows_affected()))
            .map_err(|e| StorageError::classify(e, "charging station id", "charging station"))?;
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<ChargingStation>, StorageError> {
        let q = "SELECT id, name, lat, lon, power_kw FROM charging_stations ORDER BY id";
        Ok(on_pool!(self.0, pool => sqlx::query_as(q).fetch_all(pool).await)?)
    }
}
