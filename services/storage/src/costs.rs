//! Settings kept as JSON by key (the tariff), and the costs entered beside the electricity.

use chrono::NaiveDate;
use fleet_domain::Vin;
use fleet_domain::costs::{Cost, CostKind, NewCost};
use fleet_domain::geofence::WorkingHours;
use fleet_domain::tariff::{PricedDay, Tariff};

use crate::{StorageError, Store, on_pool};

/// The key of the electricity tariff.
const TARIFF: &str = "tariff";
/// The key of the working hours.
const WORKING_HOURS: &str = "working_hours";

/// Settings: one JSON document per key.
pub struct Settings<'a>(pub(crate) &'a Store);

impl Settings<'_> {
    /// The document stored under `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        let q = "SELECT value FROM settings WHERE key = $1";
        Ok(on_pool!(self.0, pool => sqlx::query_scalar(q).bind(key).fetch_optional(pool).await)?)
    }

    /// The electricity tariff set, if one is.
    pub async fn tariff(&self) -> Result<Option<Tariff>, StorageError> {
        self.get(TARIFF)
            .await?
            .map(|t| serde_json::from_str(&t).map_err(|e| StorageError::Corrupt(format!("the stored tariff: {e}"))))
            .transpose()
    }

    /// The tariff's prices by time of day: the one set, or the default flat price.
    pub async fn priced_day(&self) -> Result<PricedDay, StorageError> {
        match self.tariff().await? {
            Some(t) => t.validate().map_err(|e| StorageError::Corrupt(format!("the stored tariff: {e}"))),
            None => Ok(PricedDay::default()),
        }
    }

    /// Stores a tariff that passed [`Tariff::validate`].
    pub async fn put_tariff(&self, tariff: &Tariff) -> Result<(), StorageError> {
        let json = serde_json::to_string(tariff).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.put(TARIFF, &json).await
    }

    /// The working hours set, or the default (Monday to Friday, 07:00–20:00).
    pub async fn working_hours(&self) -> Result<WorkingHours, StorageError> {
        match self.get(WORKING_HOURS).await? {
            Some(t) => {
                serde_json::from_str(&t).map_err(|e| StorageError::Corrupt(format!("the stored working hours: {e}")))
            }
            None => Ok(WorkingHours::default()),
        }
    }

    /// Stores working hours that passed [`WorkingHours::validate`].
    pub async fn put_working_hours(&self, hours: &WorkingHours) -> Result<(), StorageError> {
        let json = serde_json::to_string(hours).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.put(WORKING_HOURS, &json).await
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn put(&self, key: &str, value: &str) -> Result<(), StorageError> {
        let q =
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        on_pool!(self.0, pool => sqlx::query(q).bind(key).bind(value).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// A cost's row.
type CostRow = (i64, String, String, String, f64, String);

fn cost_of((id, vin, on, kind, amount_yuan, note): CostRow) -> Result<Cost, StorageError> {
    Ok(Cost {
        id,
        vin: Vin::parse(&vin).map_err(|e| StorageError::Corrupt(format!("cost VIN {vin:?}: {e}")))?,
        on: NaiveDate::parse_from_str(&on, "%Y-%m-%d")
            .map_err(|e| StorageError::Corrupt(format!("cost day {on:?}: {e}")))?,
        kind: CostKind::parse(&kind).ok_or_else(|| StorageError::Corrupt(format!("cost kind {kind:?}")))?,
        amount_yuan,
        note,
    })
}

/// What a car's month cost beyond charging.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CostTotals {
    pub vin: String,
    pub yuan: f64,
}

/// Costs entered or imported.
pub struct Costs<'a>(pub(crate) &'a Store);

impl Costs<'_> {
    /// Stores validated costs in one transaction (all or none); answers them with their ids.
    /// A VIN that is not registered → `MissingReference`.
    pub async fn create(&self, costs: &[(Vin, NewCost)]) -> Result<Vec<Cost>, StorageError> {
        let q = "INSERT INTO costs (vin, spent_on, month, kind, amount_yuan, note) VALUES ($1, $2, $3, $4, $5, $6) \
                 RETURNING id";
        let ids: Result<Vec<i64>, sqlx::Error> = on_pool!(self.0, pool => async {
            let mut tx = pool.begin().await?;
            let mut ids = Vec::with_capacity(costs.len());
            for (vin, c) in costs {
                let id: i64 = sqlx::query_scalar(q)
                    .bind(vin.as_str())
                    .bind(c.on.format("%Y-%m-%d").to_string())
                    .bind(c.month())
                    .bind(c.kind.as_str())
                    .bind(c.amount_yuan)
                    .bind(c.note.trim())
                    .fetch_one(&mut *tx)
                    .await?;
                ids.push(id);
            }
            tx.commit().await?;
            Ok(ids)
        }.await);
        let ids = ids.map_err(|e| StorageError::classify(e, "cost", "vehicle"))?;
        Ok(ids
            .into_iter()
            .zip(costs)
            .map(|(id, (vin, c))| Cost {
                id,
                vin: vin.clone(),
                on: c.on,
                kind: c.kind,
                amount_yuan: c.amount_yuan,
                note: c.note.trim().to_owned(),
            })
            .collect())
    }

    /// A month's costs, of one car or all, by day.
    pub async fn list(&self, month: &str, vin: Option<&str>) -> Result<Vec<Cost>, StorageError> {
        let q = "SELECT id, vin, spent_on, kind, amount_yuan, note FROM costs \
                 WHERE month = $1 AND ($2 IS NULL OR vin = $2) ORDER BY spent_on, id";
        let rows: Vec<CostRow> =
            on_pool!(self.0, pool => sqlx::query_as(q).bind(month).bind(vin).fetch_all(pool).await)?;
        rows.into_iter().map(cost_of).collect()
    }

    /// Each car's costs of `month` beyond charging: the costs entered and its service records.
    pub async fn totals(&self, month: &str) -> Result<Vec<CostTotals>, StorageError> {
        let q = "SELECT vin, CAST(SUM(yuan) AS DOUBLE PRECISION) AS yuan FROM ( \
                   SELECT vin, amount_yuan AS yuan FROM costs WHERE month = $1 \
                   UNION ALL \
                   SELECT vin, cost_yuan AS yuan FROM maintenance_records WHERE substr(done_on, 1, 7) = $1 \
                 ) AS spent GROUP BY vin ORDER BY vin";
        Ok(on_pool!(self.0, pool => sqlx::query_as(q).bind(month).fetch_all(pool).await)?)
    }
}
