//! Trips and charging sessions derived from telemetry: replaced by window, read by month.

use chrono::{DateTime, Utc};
use fleet_domain::Vin;
use fleet_domain::feasibility::GeoPoint;
use fleet_domain::trips::{ChargingSession, Trip, month_of};

use crate::{StorageError, Store, from_ms, on_pool, to_ms};

/// A stored trip with the order it served.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrip {
    pub trip: Trip,
    pub order_id: Option<String>,
    pub unit_id: Option<String>,
    pub driver_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TripRow {
    vin: String,
    start_ms: i64,
    end_ms: i64,
    start_lat: f64,
    start_lon: f64,
    end_lat: f64,
    end_lon: f64,
    start_odometer_km: Option<f64>,
    end_odometer_km: Option<f64>,
    distance_km: f64,
    energy_kwh: f64,
    start_soc_pct: Option<f64>,
    end_soc_pct: Option<f64>,
    open: bool,
    order_id: Option<String>,
    unit_id: Option<String>,
    driver_id: Option<String>,
}

const TRIP_COLUMNS: &str = "vin, start_ms, end_ms, start_lat, start_lon, end_lat, end_lon, start_odometer_km, end_odometer_km, \
     distance_km, energy_kwh, start_soc_pct, end_soc_pct, open, order_id, unit_id, driver_id";

impl TryFrom<TripRow> for StoredTrip {
    type Error = StorageError;
    fn try_from(r: TripRow) -> Result<Self, StorageError> {
        Ok(StoredTrip {
            trip: Trip {
                vin: Vin::parse(&r.vin).map_err(|e| StorageError::Corrupt(format!("trip VIN {:?}: {e}", r.vin)))?,
                start_ts: from_ms(r.start_ms),
                end_ts: from_ms(r.end_ms),
                start: GeoPoint::new(r.start_lat, r.start_lon),
                end: GeoPoint::new(r.end_lat, r.end_lon),
                start_odometer_km: r.start_odometer_km,
                end_odometer_km: r.end_odometer_km,
                distance_km: r.distance_km,
                energy_kwh: r.energy_kwh,
                start_soc_pct: r.start_soc_pct,
                end_soc_pct: r.end_soc_pct,
                open: r.open,
            },
            order_id: r.order_id,
            unit_id: r.unit_id,
            driver_id: r.driver_id,
        })
    }
}

/// The derived tables.
pub struct Derived<'a>(pub(crate) &'a Store);

macro_rules! replace_in_tx {
    ($tx:ident, $vin:expr, $from:expr, $to:expr, $trips:expr, $sessions:expr) => {{
        let (vin, from, to): (&Vin, i64, i64) = ($vin, $from, $to);
        sqlx::query("DELETE FROM trips WHERE vin = $1 AND start_ms >= $2 AND start_ms < $3")
            .bind(vin.as_str())
            .bind(from)
            .bind(to)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM charging_sessions WHERE vin = $1 AND start_ms >= $2 AND start_ms < $3")
            .bind(vin.as_str())
            .bind(from)
            .bind(to)
            .execute(&mut *$tx)
            .await?;
        for t in $trips {
            let t: &StoredTrip = t;
            sqlx::query(
                "INSERT INTO trips (vin, start_ms, end_ms, month, start_lat, start_lon, end_lat, end_lon, start_odometer_km, \
                 end_odometer_km, distance_km, energy_kwh, start_soc_pct, end_soc_pct, open, order_id, unit_id, driver_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            )
            .bind(t.trip.vin.as_str())
            .bind(to_ms(t.trip.start_ts))
            .bind(to_ms(t.trip.end_ts))
            .bind(month_of(t.trip.start_ts))
            .bind(t.trip.start.lat)
            .bind(t.trip.start.lon)
            .bind(t.trip.end.lat)
            .bind(t.trip.end.lon)
            .bind(t.trip.start_odometer_km)
            .bind(t.trip.end_odometer_km)
            .bind(t.trip.distance_km)
            .bind(t.trip.energy_kwh)
            .bind(t.trip.start_soc_pct)
            .bind(t.trip.end_soc_pct)
            .bind(t.trip.open)
            .bind(&t.order_id)
            .bind(&t.unit_id)
            .bind(&t.driver_id)
            .execute(&mut *$tx)
            .await?;
        }
        for c in $sessions {
            let c: &ChargingSession = c;
            sqlx::query(
                "INSERT INTO charging_sessions (vin, start_ms, end_ms, month, lat, lon, start_soc_pct, end_soc_pct, energy_kwh, open, \
                 cost_yuan) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(c.vin.as_str())
            .bind(to_ms(c.start_ts))
            .bind(to_ms(c.end_ts))
            .bind(month_of(c.start_ts))
            .bind(c.position.lat)
            .bind(c.position.lon)
            .bind(c.start_soc_pct)
            .bind(c.end_soc_pct)
            .bind(c.energy_kwh)
            .bind(c.open)
            .bind(c.cost_yuan)
            .execute(&mut *$tx)
            .await?;
        }
        $tx.commit().await?;
        Ok(())
    }};
}

impl Derived<'_> {
    /// Replaces a car's trips and sessions that start in `[from, to)` with `trips` and
    /// `sessions` (which must start in that window), in one transaction.
    pub async fn replace(
        &self,
        vin: &Vin,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        trips: &[StoredTrip],
        sessions: &[ChargingSession],
    ) -> Result<(), StorageError> {
        match self.0 {
            Store::Sqlite(pool, _) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                replace_in_tx!(tx, vin, to_ms(from), to_ms(to), trips, sessions)
            }
            Store::Postgres(pool, _) => {
                let mut tx = pool.begin().await?;
                replace_in_tx!(tx, vin, to_ms(from), to_ms(to), trips, sessions)
            }
        }
    }

    /// The span of a car's stored trips and sessions that reach into `[from, to]` (start
    /// before `to` and end after `from`): what a re-derivation of that window must cover.
    pub async fn span_touching(
        &self,
        vin: &Vin,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StorageError> {
        let q = "SELECT MIN(s), MAX(e) FROM ( \
                   SELECT start_ms AS s, end_ms AS e FROM trips WHERE vin = $1 AND start_ms <= $3 AND end_ms >= $2 \
                   UNION ALL \
                   SELECT start_ms, end_ms FROM charging_sessions WHERE vin = $1 AND start_ms <= $3 AND end_ms >= $2) AS x";
        let row: (Option<i64>, Option<i64>) = on_pool!(self.0, pool => sqlx::query_as(q).bind(vin.as_str()).bind(to_ms(from)).bind(to_ms(to)).fetch_one(pool).await)?;
        Ok(match row {
            (Some(a), Some(b)) => Some((from_ms(a), from_ms(b))),
            _ => None,
        })
    }

    /// The start of a car's newest stored trip or session (where a catch-up resumes).
    pub async fn latest_start(&self, vin: &Vin) -> Result<Option<DateTime<Utc>>, StorageError> {
        let q = "SELECT MAX(s) FROM (SELECT MAX(start_ms) AS s FROM trips WHERE vin = $1 \
                 UNION ALL SELECT MAX(start_ms) FROM charging_sessions WHERE vin = $1) AS x";
        let row: Option<i64> =
            on_pool!(self.0, pool => sqlx::query_scalar(q).bind(vin.as_str()).fetch_one(pool).await)?;
        Ok(row.map(from_ms))
    }

    /// A car's trips starting in `[from, to)`, in time order (all cars when `vin` is None).
    pub async fn trips(
        &self,
        vin: Option<&Vin>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<StoredTrip>, StorageError> {
        let rows: Vec<TripRow> = match vin {
            Some(v) => {
                let q = format!(
                    "SELECT {TRIP_COLUMNS} FROM trips WHERE vin = $1 AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms LIMIT $4"
                );
                on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(v.as_str()).bind(to_ms(from)).bind(to_ms(to)).bind(limit).fetch_all(pool).await)?
            }
            None => {
                let q = format!(
                    "SELECT {TRIP_COLUMNS} FROM trips WHERE start_ms >= $1 AND start_ms < $2 ORDER BY start_ms, vin LIMIT $3"
                );
                on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(to_ms(from)).bind(to_ms(to)).bind(limit).fetch_all(pool).await)?
            }
        };
        rows.into_iter().map(StoredTrip::try_from).collect()
    }

    /// A car's charging sessions starting in `[from, to)`, in time order.
    pub async fn sessions(
        &self,
        vin: &Vin,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ChargingSession>, StorageError> {
        let q = format!(
            "SELECT {SESSION_COLUMNS} FROM charging_sessions WHERE vin = $1 AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms"
        );
        let rows: Vec<SessionRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(vin.as_str()).bind(to_ms(from)).bind(to_ms(to)).fetch_all(pool).await)?;
        rows.into_iter().map(session_of).collect()
    }

    /// Every car's charging sessions starting in `[from, to)`, at most `limit`, in time order.
    pub async fn all_sessions(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ChargingSession>, StorageError> {
        let q = format!(
            "SELECT {SESSION_COLUMNS} FROM charging_sessions WHERE start_ms >= $1 AND start_ms < $2 ORDER BY start_ms, vin LIMIT $3"
        );
        let rows: Vec<SessionRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(to_ms(from)).bind(to_ms(to)).bind(limit).fetch_all(pool).await)?;
        rows.into_iter().map(session_of).collect()
    }

    /// kWh of the trips that served `unit_id`'s orders and started in `month` (Asia/Shanghai):
    /// the unit's energy use against its budget.
    pub async fn unit_energy_kwh(&self, unit_id: &str, month: &str) -> Result<f64, StorageError> {
        let q = "SELECT COALESCE(SUM(energy_kwh), 0.0) FROM trips WHERE unit_id = $1 AND month = $2";
        Ok(on_pool!(self.0, pool => sqlx::query_scalar::<_, f64>(q).bind(unit_id).bind(month).fetch_one(pool).await)?)
    }
}

/// Trip figures of one group (a unit, a car or a driver) in one month.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct TripTotals {
    /// The unit id, VIN or driver id.
    pub key: String,
    pub trips: i64,
    pub km: f64,
    /// Time under way, milliseconds.
    pub ms: i64,
    pub kwh: f64,
    /// Days (Asia/Shanghai) with at least one trip.
    pub days: i64,
}

/// Charging figures of one car in one month.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct ChargeTotals {
    pub key: String,
    pub sessions: i64,
    pub kwh: f64,
    pub cost_yuan: f64,
}

/// Which column trip totals group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripGroup {
    Unit,
    Vehicle,
    Driver,
}

/// Milliseconds in a day, and Asia/Shanghai's offset, for local day numbers in SQL.
const DAY_MS: i64 = 86_400_000;
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;

impl Derived<'_> {
    /// Trip totals of `month` (YYYY-MM, Asia/Shanghai) grouped by unit, car or driver (trips
    /// without that key are left out). Reads only the derived table.
    pub async fn trip_totals(&self, month: &str, group: TripGroup) -> Result<Vec<TripTotals>, StorageError> {
        let col = match group {
            TripGroup::Unit => "unit_id",
            TripGroup::Vehicle => "vin",
            TripGroup::Driver => "driver_id",
        };
        let q = format!(
            "SELECT {col} AS key, COUNT(*) AS trips, COALESCE(SUM(distance_km), 0.0) AS km, \
             CAST(COALESCE(SUM(end_ms - start_ms), 0) AS BIGINT) AS ms, COALESCE(SUM(energy_kwh), 0.0) AS kwh, \
             COUNT(DISTINCT (start_ms + {CHINA_OFFSET_MS}) / {DAY_MS}) AS days \
             FROM trips WHERE month = $1 AND {col} IS NOT NULL GROUP BY {col} ORDER BY {col}"
        );
        Ok(on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q)).bind(month).fetch_all(pool).await)?)
    }

    /// Charging totals of `month` by car.
    pub async fn charge_totals(&self, month: &str) -> Result<Vec<ChargeTotals>, StorageError> {
        let q = "SELECT vin AS key, COUNT(*) AS sessions, COALESCE(SUM(energy_kwh), 0.0) AS kwh, \
                 COALESCE(SUM(cost_yuan), 0.0) AS cost_yuan FROM charging_sessions \
                 WHERE month = $1 GROUP BY vin ORDER BY vin";
        Ok(on_pool!(self.0, pool => sqlx::query_as(q).bind(month).fetch_all(pool).await)?)
    }
}

const SESSION_COLUMNS: &str =
    "vin, start_ms, end_ms, lat, lon, start_soc_pct, end_soc_pct, energy_kwh, open, cost_yuan";
type SessionRow = (String, i64, i64, f64, f64, Option<f64>, Option<f64>, f64, bool, f64);

fn session_of((vin, s, e, lat, lon, a, b, kwh, open, cost): SessionRow) -> Result<ChargingSession, StorageError> {
    Ok(ChargingSession {
        vin: Vin::parse(&vin).map_err(|e| StorageError::Corrupt(format!("charging session VIN {vin:?}: {e}")))?,
        start_ts: from_ms(s),
        end_ts: from_ms(e),
        position: GeoPoint::new(lat, lon),
        start_soc_pct: a,
        end_soc_pct: b,
        energy_kwh: kwh,
        open,
        cost_yuan: cost,
    })
}
