//! Telemetry samples, the vehicles' current state, and the batch commit that writes both
//! (with the batch's dead letters) in one transaction.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use fleet_domain::{DeadLetter, Sample, SampleSource, VehicleState, Vin};

use crate::dead_letters::{insert_dead_letters, insert_dead_letters_once};
use crate::shapes::shaped;
use crate::{StorageError, Store, from_ms, on_pool, to_ms};

pub use state::StateBacklog;
use state::{STATE_COLUMNS, StateRow, UPSERT_STATE_TAIL, newest_states, upsert_states_sqlite};

/// Most rows per multi-row INSERT on SQLite (19 binds a row stays under its 32,766 limit);
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

/// How a batch is written.
#[derive(Clone, Copy)]
struct Write {
    /// A retry after a failed attempt (dead letters looked up first).
    again: bool,
    /// The state merged in the same transaction.
    states: bool,
}

/// Telemetry samples and vehicle state.
pub struct Telemetry<'a>(pub(crate) &'a Store);

impl Telemetry<'_> {
    /// Durably stores a batch: new samples (duplicates skipped), the vehicles' newest state
    /// (never moved backwards) and the dead letters, all in one transaction.
    pub async fn commit(&self, samples: &[Sample], dead: &[DeadLetter]) -> Result<BatchOutcome, StorageError> {
        self.write(samples, dead, Write { again: false, states: true }).await
    }

    /// [`Self::commit`] again after a failed attempt, which may have committed after all
    /// (the connection broke before its reply arrived). Samples are deduplicated anyway; a
    /// dead letter is skipped when one with the same time, topic, reason and payload is
    /// stored already, so the retry does not store the batch's rejects twice. (The first
    /// attempt does not look: the same bad message sent twice within a millisecond is two
    /// dead letters.)
    pub async fn recommit(&self, samples: &[Sample], dead: &[DeadLetter]) -> Result<BatchOutcome, StorageError> {
        self.write(samples, dead, Write { again: true, states: true }).await
    }

    /// [`Self::commit`] without the state: the caller writes it later, from a
    /// [`StateBacklog`], with [`Self::write_states`] (ingest does, see `state.rs`).
    pub async fn commit_samples(&self, samples: &[Sample], dead: &[DeadLetter]) -> Result<BatchOutcome, StorageError> {
        self.write(samples, dead, Write { again: false, states: false }).await
    }

    /// [`Self::recommit`] without the state.
    pub async fn recommit_samples(
        &self,
        samples: &[Sample],
        dead: &[DeadLetter],
    ) -> Result<BatchOutcome, StorageError> {
        self.write(samples, dead, Write { again: true, states: false }).await
    }

    /// Merges a backlog into `vehicle_state` in one transaction (never moving a vehicle
    /// back).
    pub async fn write_states(&self, backlog: &StateBacklog) -> Result<(), StorageError> {
        if backlog.is_empty() {
            return Ok(());
        }
        let rows = backlog.sorted_rows();
        match self.0 {
            Store::Sqlite(_, writer) => {
                let mut tx = writer.begin().await?;
                upsert_states_sqlite(&mut tx, &rows).await?;
                tx.commit().await?;
            }
            Store::Postgres(pool, _) => {
                let mut tx = pool.begin().await?;
                postgres::upsert_states(&mut tx, &rows).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Brings every vehicle's state up to its stored samples: the samples newer than the
    /// state, folded and merged. Run at start, it restores what a crash took of a backlog
    /// not yet written (its samples were committed and acknowledged). Cheap when nothing is
    /// missing: one index probe per vehicle. Samples whose clock was ahead are left out: they
    /// never move a state (and, newer than it, would be read at every start). Answers the
    /// samples folded.
    pub async fn catch_up_states(&self) -> Result<u64, StorageError> {
        let cols = SAMPLE_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
        // The vehicles drive the join (CROSS JOIN keeps SQLite from reordering it), each
        // reading its samples from the primary key (vin, time) after its state's time (in
        // whole milliseconds, as the state keeps it).
        let rows: Vec<SampleRow> = match self.0 {
            Store::Sqlite(pool, _) => {
                let q = format!(
                    "SELECT {cols}, t.ts_ms, NULL AS frame FROM vehicles v LEFT JOIN vehicle_state st ON st.vin = v.vin \
                     CROSS JOIN telemetry_samples t WHERE t.vin = v.vin AND t.ts_ms > COALESCE(st.ts_ms, -9223372036854775808) AND NOT t.clock_ahead"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).fetch_all(pool).await?
            }
            Store::Postgres(pool, _) => {
                // LATERAL with ORDER BY: a plain join let the planner hash-join a scan of
                // every sample (measured: 400,000 rows scanned for none missing).
                let q = format!(
                    "SELECT t.* FROM vehicles v LEFT JOIN vehicle_state st ON st.vin = v.vin CROSS JOIN LATERAL \
                     (SELECT {cols}, (EXTRACT(EPOCH FROM t.ts) * 1000)::BIGINT AS ts_ms, NULL::BYTEA AS frame FROM telemetry_samples t \
                      WHERE t.vin = v.vin AND t.ts >= COALESCE(TIMESTAMPTZ 'epoch' + (st.ts_ms + 1) * INTERVAL '1 millisecond', '-infinity') AND NOT t.clock_ahead \
                      ORDER BY t.ts) t"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).fetch_all(pool).await?
            }
        };
        if rows.is_empty() {
            return Ok(0);
        }
        let samples = rows.into_iter().map(Sample::try_from).collect::<Result<Vec<_>, _>>()?;
        let mut backlog = StateBacklog::default();
        backlog.absorb(&samples);
        self.write_states(&backlog).await?;
        Ok(samples.len() as u64)
    }

    async fn write(&self, samples: &[Sample], dead: &[DeadLetter], how: Write) -> Result<BatchOutcome, StorageError> {
        let states = if how.states { newest_states(samples) } else { Vec::new() };
        let again = how.again;
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
                // A large batch by COPY, a smaller one ([`postgres::COPY_MIN_ROWS`]) by a plain
                // INSERT; a sample stored already fails either, and the batch goes again by the
                // INSERT that skips stored samples (copy.rs). Duplicates are rare (redeliveries),
                // and skipping them costs every row a speculative insertion.
                let how =
                    if samples.len() >= postgres::COPY_MIN_ROWS { postgres::How::Copy } else { postgres::How::Insert };
                inserted = match postgres::write(pool, samples, &states, dead, again, how).await? {
                    Some(n) => n,
                    None => postgres::write(pool, samples, &states, dead, again, postgres::How::InsertSkippingStored)
                        .await?
                        .unwrap_or_default(),
                };
            }
        }
        Ok(BatchOutcome { inserted, duplicates: samples.len() as u64 - inserted, dead_letters: dead.len() as u64 })
    }

    /// The stored samples of a vehicle in `[from, to]`, in time order, at most `limit`.
    pub async fn track(
        &self,
        vin: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Sample>, StorageError> {
        self.samples_between(vin, from, to, limit, true).await
    }

    /// [`Self::track`] without the GB/T 32960 frames (`Sample::frame` is None): for readers
    /// that need only the sample's own fields, such as trip derivation, which reads a car's
    /// window again and again; a frame is several times the rest of its row.
    pub async fn track_without_frames(
        &self,
        vin: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Sample>, StorageError> {
        self.samples_between(vin, from, to, limit, false).await
    }

    async fn samples_between(
        &self,
        vin: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
        frames: bool,
    ) -> Result<Vec<Sample>, StorageError> {
        let rows: Vec<SampleRow> = match self.0 {
            Store::Sqlite(pool, _) => {
                let frame = if frames { "frame" } else { "NULL" };
                let q = format!(
                    "SELECT {SAMPLE_COLUMNS}, ts_ms, {frame} AS frame FROM telemetry_samples WHERE vin = $1 AND ts_ms >= $2 AND ts_ms <= $3 ORDER BY ts_ms LIMIT $4"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(q.as_str()))
                    .bind(vin)
                    .bind(to_ms(from))
                    .bind(to_ms(to))
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Store::Postgres(pool, _) => {
                let frame = if frames { "frame" } else { "NULL::BYTEA" };
                let q = format!(
                    "SELECT {SAMPLE_COLUMNS}, (EXTRACT(EPOCH FROM ts) * 1000)::BIGINT AS ts_ms, {frame} AS frame \
                     FROM telemetry_samples WHERE vin = $1 AND ts >= $2 AND ts <= $3 ORDER BY ts LIMIT $4"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(q.as_str()))
                    .bind(vin)
                    .bind(from)
                    .bind(to)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
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
                    let Some((y, m)) = name
                        .strip_prefix("telemetry_samples_p")
                        .filter(|d| d.len() == 6)
                        .and_then(|d| Some((d[..4].parse::<i32>().ok()?, d[4..].parse::<u32>().ok()?)))
                    else {
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
        let rows: Vec<StateRow> =
            on_pool!(self.0, pool => sqlx::query_as(sqlx::AssertSqlSafe(q.as_str())).fetch_all(pool).await)?;
        rows.into_iter().map(VehicleState::try_from).collect()
    }
}

const SAMPLE_COLUMNS: &str = "vin, lat, lon, position_valid, speed_kmh, heading_deg, soc_pct, odometer_km, charging, ignition, \
     battery_voltage_v, battery_current_a, battery_temp_c, range_km, source, clock_ahead";

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
    clock_ahead: bool,
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
            clock_ahead: r.clock_ahead,
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
            source: SampleSource::parse(&r.source)
                .ok_or_else(|| StorageError::Corrupt(format!("sample source {:?}", r.source)))?,
            frame: r.frame,
        })
    }
}

async fn insert_samples_sqlite(tx: &mut sqlx::SqliteConnection, chunk: &[Sample]) -> Result<u64, StorageError> {
    let received = to_ms(Utc::now());
    let mut qb = sqlx::QueryBuilder::new(format!(
        "INSERT INTO telemetry_samples ({SAMPLE_COLUMNS}, ts_ms, frame, received_ms) "
    ));
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
            .push_bind(s.clock_ahead)
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
    cst()
        .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .single()
        .map_or(DateTime::<Utc>::MIN_UTC, |d| d.with_timezone(&Utc))
}

mod columns;
mod copy;
mod postgres;
mod state;
#[cfg(test)]
mod tests;
