//! Telemetry samples, the vehicles' current state, and the batch commit that writes both
//! (with the batch's dead letters) in one transaction.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use fleet_domain::{DeadLetter, Sample, SampleSource, VehicleState, Vin};

use crate::dead_letters::{insert_dead_letters, insert_dead_letters_once};
use crate::shapes::shaped;
use crate::{Store, StorageError, from_ms, on_pool, to_ms};

/// Most rows per multi-row INSERT on SQLite (18 binds a row stays under its 32,766 limit);
/// smaller chunks come in the fixed sizes of [`shaped`].
const SQLITE_ROWS_PER_STATEMENT: usize = 1024;

/// What a batch commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Samples newly stored.
    pub inserted: u64,
    /// Samples already stored (same VIN and `ts`), stored once.
    pub duplicates: u64,
    pub dead_letters: u64,
}

/// The monthly partitions of the PostgreSQL sample table known to exist.
#[derive(Debug, Clone, Default)]
pub struct Partitions(Arc<Mutex<HashSet<(i32, u32)>>>);

/// China Standard Time (UTC+8, no daylight saving): months and days are counted in it.
fn cst() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// Merges state rows into `vehicle_state` on SQLite: telemetry fields move only with a newer
/// sample, the position only with a newer valid position ([`UPSERT_STATE_TAIL`], shared with
/// PostgreSQL's `postgres::upsert_states`).
async fn upsert_states_sqlite(tx: &mut sqlx::SqliteConnection, rows: &[StateRow]) -> Result<(), StorageError> {
    for chunk in shaped(rows, SQLITE_ROWS_PER_STATEMENT) {
        let mut qb = sqlx::QueryBuilder::new(format!("INSERT INTO vehicle_state ({STATE_COLUMNS}) "));
        qb.push_values(chunk, |mut b, r: &StateRow| {
            b.push_bind(r.vin.clone())
                .push_bind(r.ts_ms)
                .push_bind(r.pos_ts_ms)
                .push_bind(r.lat)
                .push_bind(r.lon)
                .push_bind(r.speed_kmh)
                .push_bind(r.heading_deg)
                .push_bind(r.soc_pct)
                .push_bind(r.odometer_km)
                .push_bind(r.charging)
                .push_bind(r.ignition)
                .push_bind(r.range_km);
        });
        qb.push(UPSERT_STATE_TAIL);
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Telemetry samples and vehicle state.
pub struct Telemetry<'a>(pub(crate) &'a Store);

impl Telemetry<'_> {
    /// Durably stores a batch: new samples (duplicates skipped), the vehicles' newest state
    /// (never moved backwards) and the dead letters, all in one transaction.
    pub async fn commit(&self, samples: &[Sample], dead: &[DeadLetter]) -> Result<BatchOutcome, StorageError> {
        self.write(samples, dead, false).await
    }

    /// [`Self::commit`] again after a failed attempt, which may have committed after all
    /// (the connection broke before its reply arrived). Samples are deduplicated anyway; a
    /// dead letter is skipped when one with the same time, topic, reason and payload is
    /// stored already, so the retry does not store the batch's rejects twice. (The first
    /// attempt does not look: the same bad message sent twice within a millisecond is two
    /// dead letters.)
    pub async fn recommit(&self, samples: &[Sample], dead: &[DeadLetter]) -> Result<BatchOutcome, StorageError> {
        self.write(samples, dead, true).await
    }

    async fn write(&self, samples: &[Sample], dead: &[DeadLetter], again: bool) -> Result<BatchOutcome, StorageError> {
        let states = newest_states(samples);
        let mut inserted = 0u64;
        match self.0 {
            Store::Sqlite(_, writer) => {
                let mut tx = writer.begin().await?;
                for chunk in shaped(samples, SQLITE_ROWS_PER_STATEMENT) {
                    inserted += insert_samples_sqlite(&mut tx, chunk).await?;
                }
                upsert_states_sqlite(&mut tx, &states).await?;
                if again {
                    insert_dead_letters_once!(tx, dead);
                } else {
                    insert_dead_letters!(tx, dead);
                }
                tx.commit().await?;
            }
            Store::Postgres(pool, partitions) => {
                postgres::ensure_partitions(pool, partitions, samples).await?;
                // By COPY first; a sample stored already fails it, and the batch goes again
                // by the INSERT that skips duplicates (copy.rs).
                inserted = match postgres::write(pool, samples, &states, dead, again, true).await? {
                    Some(n) => n,
                    None => postgres::write(pool, samples, &states, dead, again, false).await?.unwrap_or_default(),
                };
            }
        }
        Ok(BatchOutcome { inserted, duplicates: samples.len() as u64 - inserted, dead_letters: dead.len() as u64 })
    }

    /// The stored samples of a vehicle in `[from, to]`, in time order, at most `limit`.
    pub async fn track(&self, vin: &str, from: DateTime<Utc>, to: DateTime<Utc>, limit: i64) -> Result<Vec<Sample>, StorageError> {
        let rows: Vec<SampleRow> = match self.0 {
            Store::Sqlite(pool, _) => {
                let q = format!("SELECT {SAMPLE_COLUMNS}, ts_ms, frame FROM telemetry_samples WHERE vin = $1 AND ts_ms >= $2 AND ts_ms <= $3 ORDER BY ts_ms LIMIT $4");
                sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(vin).bind(to_ms(from)).bind(to_ms(to)).bind(limit).fetch_all(pool).await?
            }
            Store::Postgres(pool, _) => {
                let q = format!(
                    "SELECT {SAMPLE_COLUMNS}, (EXTRACT(EPOCH FROM ts) * 1000)::BIGINT AS ts_ms, frame \
                     FROM telemetry_samples WHERE vin = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts LIMIT $4"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(vin).bind(from).bind(to).bind(limit).fetch_all(pool).await?
            }
        };
        rows.into_iter().map(Sample::try_from).collect()
    }

    /// Removes raw samples older than `cutoff` (derived trips and sessions stay). SQLite
    /// deletes in chunks (short write locks); PostgreSQL drops the monthly partitions that end
    /// by `cutoff`, so a month's samples go when the whole month has aged out. Answers rows
    /// (SQLite) or partitions (PostgreSQL) removed.
    pub async fn purge_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        match self.0 {
            Store::Sqlite(pool, _) => {
                let mut removed = 0;
                loop {
                    let q = "DELETE FROM telemetry_samples WHERE rowid IN (SELECT rowid FROM telemetry_samples WHERE ts_ms < $1 LIMIT 20000)";
                    let n = sqlx::query(q).bind(to_ms(cutoff)).execute(pool).await?.rows_affected();
                    removed += n;
                    if n == 0 {
                        return Ok(removed);
                    }
                }
            }
            Store::Postgres(pool, known) => {
                let q = "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
                         WHERE p.relname = 'telemetry_samples' ORDER BY c.relname";
                let names: Vec<String> = sqlx::query_scalar(q).fetch_all(pool).await?;
                let mut dropped = 0;
                for name in names {
                    let Some((y, m)) = name.strip_prefix("telemetry_samples_p").filter(|d| d.len() == 6).and_then(|d| Some((d[..4].parse::<i32>().ok()?, d[4..].parse::<u32>().ok()?))) else {
                        continue;
                    };
                    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                    if month_start(ny, nm) > cutoff {
                        continue;
                    }
                    let mut tx = pool.begin().await?;
                    sqlx::query("SELECT pg_advisory_xact_lock(7320960)").execute(&mut *tx).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}"))).execute(&mut *tx).await?;
                    tx.commit().await?;
                    known.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&(y, m));
                    dropped += 1;
                }
                Ok(dropped)
            }
        }
    }

    /// Stored samples, of one vehicle or of all.
    pub async fn count(&self, vin: Option<&str>) -> Result<i64, StorageError> {
        let q = "SELECT COUNT(*) FROM telemetry_samples WHERE $1 = '' OR vin = $1";
        Ok(on_pool!(self.0, pool => sqlx::query_scalar(q).bind(vin.unwrap_or("")).fetch_one(pool).await)?)
    }

    /// The current state of one vehicle.
    pub async fn state(&self, vin: &str) -> Result<Option<VehicleState>, StorageError> {
        let q = format!("SELECT {STATE_COLUMNS} FROM vehicle_state WHERE vin = $1");
        let row: Option<StateRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).bind(vin).fetch_optional(pool).await)?;
        row.map(VehicleState::try_from).transpose()
    }

    /// The current state of every vehicle that has reported.
    pub async fn states(&self) -> Result<Vec<VehicleState>, StorageError> {
        let q = format!("SELECT {STATE_COLUMNS} FROM vehicle_state ORDER BY vin");
        let rows: Vec<StateRow> = on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).fetch_all(pool).await)?;
        rows.into_iter().map(VehicleState::try_from).collect()
    }
}

const SAMPLE_COLUMNS: &str = "vin, lat, lon, position_valid, speed_kmh, heading_deg, soc_pct, odometer_km, charging, ignition, \
     battery_voltage_v, battery_current_a, battery_temp_c, range_km, source";

#[derive(sqlx::FromRow)]
struct SampleRow {
    vin: String,
    ts_ms: i64,
    lat: f64,
    lon: f64,
    position_valid: bool,
    speed_kmh: Option<f64>,
    heading_deg: Option<f64>,
    soc_pct: Option<f64>,
    odometer_km: Option<f64>,
    charging: Option<bool>,
    ignition: Option<bool>,
    battery_voltage_v: Option<f64>,
    battery_current_a: Option<f64>,
    battery_temp_c: Option<f64>,
    range_km: Option<f64>,
    source: String,
    frame: Option<Vec<u8>>,
}

impl TryFrom<SampleRow> for Sample {
    type Error = StorageError;
    fn try_from(r: SampleRow) -> Result<Self, StorageError> {
        Ok(Sample {
            vin: Vin::parse(&r.vin).map_err(|e| StorageError::Corrupt(format!("sample VIN {:?}: {e}", r.vin)))?,
            ts: from_ms(r.ts_ms),
            lat: r.lat,
            lon: r.lon,
            position_valid: r.position_valid,
            speed_kmh: r.speed_kmh,
            heading_deg: r.heading_deg,
            soc_pct: r.soc_pct,
            odometer_km: r.odometer_km,
            charging: r.charging,
            ignition: r.ignition,
            battery_voltage_v: r.battery_voltage_v,
            battery_current_a: r.battery_current_a,
            battery_temp_c: r.battery_temp_c,
            range_km: r.range_km,
            source: SampleSource::parse(&r.source).ok_or_else(|| StorageError::Corrupt(format!("sample source {:?}", r.source)))?,
            frame: r.frame,
        })
    }
}

const STATE_COLUMNS: &str = "vin, ts_ms, pos_ts_ms, lat, lon, speed_kmh, heading_deg, soc_pct, odometer_km, charging, ignition, range_km";

/// A vehicle's newest values within one batch, ready to merge into `vehicle_state`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct StateRow {
    vin: String,
    ts_ms: i64,
    pos_ts_ms: Option<i64>,
    lat: Option<f64>,
    lon: Option<f64>,
    speed_kmh: Option<f64>,
    heading_deg: Option<f64>,
    soc_pct: Option<f64>,
    odometer_km: Option<f64>,
    charging: Option<bool>,
    ignition: Option<bool>,
    range_km: Option<f64>,
}

impl TryFrom<StateRow> for VehicleState {
    type Error = StorageError;
    fn try_from(r: StateRow) -> Result<Self, StorageError> {
        Ok(VehicleState {
            vin: Vin::parse(&r.vin).map_err(|e| StorageError::Corrupt(format!("state VIN {:?}: {e}", r.vin)))?,
            ts: from_ms(r.ts_ms),
            lat: r.lat,
            lon: r.lon,
            speed_kmh: r.speed_kmh,
            heading_deg: r.heading_deg,
            soc_pct: r.soc_pct,
            odometer_km: r.odometer_km,
            charging: r.charging,
            ignition: r.ignition,
            range_km: r.range_km,
        })
    }
}

/// Folds a batch into one state row per vehicle: the newest sample's time, each field's
/// newest known value, and the newest valid position.
fn newest_states(samples: &[Sample]) -> Vec<StateRow> {
    let mut by_vin: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_vin.entry(s.vin.as_str()).or_default().push(s);
    }
    by_vin
        .into_iter()
        .map(|(vin, mut list)| {
            list.sort_by_key(|s| s.ts);
            let mut row = StateRow {
                vin: vin.to_owned(),
                ts_ms: i64::MIN,
                pos_ts_ms: None,
                lat: None,
                lon: None,
                speed_kmh: None,
                heading_deg: None,
                soc_pct: None,
                odometer_km: None,
                charging: None,
                ignition: None,
                range_km: None,
            };
            for s in list {
                row.ts_ms = to_ms(s.ts);
                if s.position_valid {
                    row.pos_ts_ms = Some(row.ts_ms);
                    row.lat = Some(s.lat);
                    row.lon = Some(s.lon);
                }
                row.speed_kmh = s.speed_kmh.or(row.speed_kmh);
                row.heading_deg = s.heading_deg.or(row.heading_deg);
                row.soc_pct = s.soc_pct.or(row.soc_pct);
                row.odometer_km = s.odometer_km.or(row.odometer_km);
                row.charging = s.charging.or(row.charging);
                row.ignition = s.ignition.or(row.ignition);
                row.range_km = s.range_km.or(row.range_km);
            }
            row
        })
        .collect()
}

const UPSERT_STATE_TAIL: &str = " ON CONFLICT (vin) DO UPDATE SET
    speed_kmh = CASE WHEN excluded.ts_ms > vehicle_state.ts_ms THEN COALESCE(excluded.speed_kmh, vehicle_state.speed_kmh) ELSE vehicle_state.speed_kmh END,
    heading_deg = CASE WHEN excluded.ts_ms > vehicle_state.ts_ms THEN COALESCE(excluded.heading_deg, vehicle_state.heading_deg) ELSE vehicle_state.heading_deg END,
    soc_pct = CASE WHEN excluded.ts_ms > vehicle_state.ts_ms THEN COALESCE(excluded.soc_pct, vehicle_state.soc_pct) ELSE vehicle_state.soc_pct END,
    odometer_km = CASE WHEN excluded.ts_ms > vehicle_state.ts_ms THEN COALESCE(excluded.odometer_km, vehicle_state.odometer_km) ELSE vehicle_state.odometer_km END,
    charging = CASE WHEN excluded.ts_ms > vehicle_state.ts_ms THEN COALESCE(excluded.charging, vehicle_state.charging) ELSE vehicle_state.charging END,
    ignition = CASE WHEN excluded.ts_ms > vehicle_state.ts_ms THEN COALESCE(excluded.ignition, vehicle_state.ignition) ELSE vehicle_state.ignition END,
    range_km = CASE WHEN excluded.ts_ms > vehicle_state.ts_ms THEN COALESCE(excluded.range_km, vehicle_state.range_km) ELSE vehicle_state.range_km END,
    lat = CASE WHEN excluded.pos_ts_ms > COALESCE(vehicle_state.pos_ts_ms, -1) THEN excluded.lat ELSE vehicle_state.lat END,
    lon = CASE WHEN excluded.pos_ts_ms > COALESCE(vehicle_state.pos_ts_ms, -1) THEN excluded.lon ELSE vehicle_state.lon END,
    pos_ts_ms = CASE WHEN excluded.pos_ts_ms > COALESCE(vehicle_state.pos_ts_ms, -1) THEN excluded.pos_ts_ms ELSE vehicle_state.pos_ts_ms END,
    ts_ms = CASE WHEN excluded.ts_ms > vehicle_state.ts_ms THEN excluded.ts_ms ELSE vehicle_state.ts_ms END
WHERE excluded.ts_ms > vehicle_state.ts_ms OR excluded.pos_ts_ms > COALESCE(vehicle_state.pos_ts_ms, -1)";

async fn insert_samples_sqlite(tx: &mut sqlx::SqliteConnection, chunk: &[Sample]) -> Result<u64, StorageError> {
    let received = to_ms(Utc::now());
    let mut qb = sqlx::QueryBuilder::new(format!("INSERT INTO telemetry_samples ({SAMPLE_COLUMNS}, ts_ms, frame, received_ms) "));
    qb.push_values(chunk, |mut b, s| {
        b.push_bind(s.vin.as_str().to_owned())
            .push_bind(s.lat)
            .push_bind(s.lon)
            .push_bind(s.position_valid)
            .push_bind(s.speed_kmh)
            .push_bind(s.heading_deg)
            .push_bind(s.soc_pct)
            .push_bind(s.odometer_km)
            .push_bind(s.charging)
            .push_bind(s.ignition)
            .push_bind(s.battery_voltage_v)
            .push_bind(s.battery_current_a)
            .push_bind(s.battery_temp_c)
            .push_bind(s.range_km)
            .push_bind(s.source.as_str())
            .push_bind(to_ms(s.ts))
            .push_bind(s.frame.as_deref())
            .push_bind(received);
    });
    qb.push(" ON CONFLICT DO NOTHING");
    Ok(qb.build().execute(&mut *tx).await?.rows_affected())
}

/// The (year, month) in China Standard Time of an instant.
fn cst_month(t: DateTime<Utc>) -> (i32, u32) {
    let local = t.with_timezone(&cst());
    (local.year(), local.month())
}

fn month_start(year: i32, month: u32) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MIN);
    cst().from_local_datetime(&date.and_time(chrono::NaiveTime::MIN)).single().map_or(DateTime::<Utc>::MIN_UTC, |d| d.with_timezone(&Utc))
}

mod copy;
mod postgres;
#[cfg(test)]
mod tests;
