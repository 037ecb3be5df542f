//! The PostgreSQL side of a batch commit: samples by COPY or by INSERT (failing on a stored
//! sample, or skipping stored ones on the second try), the state merge, and the monthly
//! partitions the samples need.

use std::collections::HashSet;

use chrono::Utc;
use fleet_domain::{DeadLetter, Sample};

use super::columns::{Array, Arrays, PG_SAMPLE_COLUMNS, column_list};
use super::{Partitions, STATE_COLUMNS, StateRow, UPSERT_STATE_TAIL, copy, cst_month, month_start};
use crate::StorageError;
use crate::dead_letters::{insert_dead_letters, insert_dead_letters_once};

/// Rows per UNNEST insert.
const ROWS_PER_STATEMENT: usize = 5000;

/// Fewest samples a batch takes by COPY; smaller batches go by INSERT. sqlx sends a
/// COPY's data and its end in two writes on a socket with Nagle's algorithm on, so the end
/// waits for the server's delayed acknowledgement of the data: measured at the demo's load
/// (batches of a few samples), commits took 44 ms at the median by COPY against 1.7 ms for
/// the state's INSERT, and the live feed's latency grew by about 100 ms. In a large batch the
/// wait is shared by many rows, and COPY saves the database CPU (README, benchmark).
pub(super) const COPY_MIN_ROWS: usize = 1000;

/// Merges state rows into `vehicle_state` as SQLite does, one statement of arrays for the
/// whole batch (the rows are one per vehicle, sorted by VIN, so two commits in flight lock
/// them in the same order).
pub(super) async fn upsert_states(tx: &mut sqlx::PgConnection, rows: &[StateRow]) -> Result<(), StorageError> {
    if rows.is_empty() {
        return Ok(());
    }
    let q = format!(
        "INSERT INTO vehicle_state ({STATE_COLUMNS}) \
         SELECT * FROM UNNEST($1::TEXT[], $2::INT8[], $3::INT8[], $4::FLOAT8[], $5::FLOAT8[], $6::FLOAT8[], $7::FLOAT8[], \
                              $8::FLOAT8[], $9::FLOAT8[], $10::BOOL[], $11::BOOL[], $12::FLOAT8[]){UPSERT_STATE_TAIL}"
    );
    let f = |get: fn(&StateRow) -> Option<f64>| rows.iter().map(get).collect::<Vec<_>>();
    let b = |get: fn(&StateRow) -> Option<bool>| rows.iter().map(get).collect::<Vec<_>>();
    sqlx::query(sqlx::AssertSqlSafe(q.as_str()))
        .bind(rows.iter().map(|r| r.vin.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.ts_ms).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.pos_ts_ms).collect::<Vec<_>>())
        .bind(f(|r| r.lat))
        .bind(f(|r| r.lon))
        .bind(f(|r| r.speed_kmh))
        .bind(f(|r| r.heading_deg))
        .bind(f(|r| r.soc_pct))
        .bind(f(|r| r.odometer_km))
        .bind(b(|r| r.charging))
        .bind(b(|r| r.ignition))
        .bind(f(|r| r.range_km))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// How a transaction stores the batch's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum How {
    /// `COPY … FROM STDIN`: fails on a stored sample.
    Copy,
    /// `INSERT … SELECT FROM UNNEST`, failing on a stored sample like COPY: no speculative
    /// insertion (an index probe before each row and a WAL record after it).
    Insert,
    /// The same INSERT with `ON CONFLICT DO NOTHING`: stored samples are skipped.
    InsertSkippingStored,
}

/// One transaction of [`super::Telemetry::commit`], its samples stored `how`. None when a
/// way that fails on stored samples met one (nothing kept).
pub(super) async fn write(
    pool: &sqlx::PgPool,
    samples: &[Sample],
    states: &[StateRow],
    dead: &[DeadLetter],
    again: bool,
    how: How,
) -> Result<Option<u64>, StorageError> {
    let mut tx = pool.begin().await?;
    let stored = if how == How::Copy && !samples.is_empty() {
        let mut copy = tx.copy_in_raw(&copy::statement()).await?;
        copy.send(copy::encode(samples, Utc::now())).await?;
        copy.finish().await
    } else {
        let skip_stored = how == How::InsertSkippingStored;
        async {
            let mut n = 0;
            for chunk in samples.chunks(ROWS_PER_STATEMENT) {
                n += insert_samples(&mut tx, chunk, skip_stored).await?;
            }
            Ok(n)
        }
        .await
    };
    let inserted = match stored {
        Ok(n) => n,
        // Dropped, the transaction rolls back.
        Err(e)
            if how != How::InsertSkippingStored && e.as_database_error().is_some_and(|d| d.is_unique_violation()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    upsert_states(&mut tx, states).await?;
    if again {
        insert_dead_letters_once!(tx, dead);
    } else {
        insert_dead_letters!(tx, dead);
    }
    tx.commit().await?;
    Ok(Some(inserted))
}

async fn insert_samples(tx: &mut sqlx::PgConnection, chunk: &[Sample], skip_stored: bool) -> Result<u64, sqlx::Error> {
    let arrays: Vec<String> =
        PG_SAMPLE_COLUMNS.iter().enumerate().map(|(i, (_, t))| format!("${}::{}[]", i + 1, t.sql())).collect();
    // Without ON CONFLICT, a stored sample fails the statement like COPY: no speculative
    // insertion.
    let q = format!(
        "INSERT INTO telemetry_samples ({}) SELECT * FROM UNNEST({}){}",
        column_list(),
        arrays.join(", "),
        if skip_stored { " ON CONFLICT DO NOTHING" } else { "" }
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(q.as_str()));
    for column in Arrays::of(chunk, Utc::now()).into_columns() {
        query = match column {
            Array::Text(v) => query.bind(v),
            Array::Float(v) => query.bind(v),
            Array::Bool(v) => query.bind(v),
            Array::Time(v) => query.bind(v),
            Array::Bytes(v) => query.bind(v),
        };
    }
    Ok(query.execute(&mut *tx).await?.rows_affected())
}

/// Creates the monthly partitions the batch needs (month boundaries in China Standard Time),
/// once per process; an advisory lock keeps concurrent instances from racing.
pub(super) async fn ensure_partitions(
    pool: &sqlx::PgPool,
    known: &Partitions,
    samples: &[Sample],
) -> Result<(), StorageError> {
    let needed: HashSet<(i32, u32)> = samples.iter().map(|s| cst_month(s.ts)).collect();
    let missing: Vec<(i32, u32)> = {
        let known = known.0.lock().unwrap_or_else(|p| p.into_inner());
        needed.into_iter().filter(|m| !known.contains(m)).collect()
    };
    if missing.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7320960)").execute(&mut *tx).await?;
    for &(y, m) in &missing {
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let from = month_start(y, m).to_rfc3339();
        let to = month_start(ny, nm).to_rfc3339();
        let q = format!(
            "CREATE TABLE IF NOT EXISTS telemetry_samples_p{y:04}{m:02} PARTITION OF telemetry_samples FOR VALUES FROM ('{from}') TO ('{to}')"
        );
        sqlx::query(sqlx::AssertSqlSafe(q.as_str())).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    known.0.lock().unwrap_or_else(|p| p.into_inner()).extend(missing);
    Ok(())
}
