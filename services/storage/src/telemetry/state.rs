//! The vehicles' current state (`vehicle_state`): how samples fold into it, the merge that
//! never moves it backwards (in SQL and in memory, the same rules), and the backlog ingest
//! keeps between its writes.
//!
//! Ingest writes the state behind the samples: a committed batch's state goes into a
//! [`StateBacklog`] (one row per vehicle), written a few times a second. At a high message
//! rate that is one upsert per vehicle per write instead of one per vehicle per batch (an
//! upsert costs the database about as much as a sample's insert). What a crash loses of the
//! backlog is derivable from the stored samples: [`super::Telemetry::catch_up_states`]
//! re-folds, at start, every sample newer than its vehicle's state.

use std::collections::{BTreeMap, HashMap};

use fleet_domain::{Sample, VehicleState, Vin};

use crate::shapes::shaped;
use crate::{StorageError, from_ms, to_ms};

/// Most rows per multi-row upsert on SQLite (12 binds a row).
const SQLITE_ROWS_PER_STATEMENT: usize = 1024;

pub(super) const STATE_COLUMNS: &str =
    "vin, ts_ms, pos_ts_ms, lat, lon, speed_kmh, heading_deg, soc_pct, odometer_km, charging, ignition, range_km";

/// A vehicle's newest values, ready to merge into `vehicle_state`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(super) struct StateRow {
    pub(super) vin: String,
    pub(super) ts_ms: i64,
    pub(super) pos_ts_ms: Option<i64>,
    pub(super) lat: Option<f64>,
    pub(super) lon: Option<f64>,
    pub(super) speed_kmh: Option<f64>,
    pub(super) heading_deg: Option<f64>,
    pub(super) soc_pct: Option<f64>,
    pub(super) odometer_km: Option<f64>,
    pub(super) charging: Option<bool>,
    pub(super) ignition: Option<bool>,
    pub(super) range_km: Option<f64>,
}

impl StateRow {
    /// One sample's values, without its VIN (the caller's key; no allocation per sample).
    fn of(s: &Sample) -> StateRow {
        let ts_ms = to_ms(s.ts);
        StateRow {
            vin: String::new(),
            ts_ms,
            pos_ts_ms: s.position_valid.then_some(ts_ms),
            lat: s.position_valid.then_some(s.lat),
            lon: s.position_valid.then_some(s.lon),
            speed_kmh: s.speed_kmh,
            heading_deg: s.heading_deg,
            soc_pct: s.soc_pct,
            odometer_km: s.odometer_km,
            charging: s.charging,
            ignition: s.ignition,
            range_km: s.range_km,
        }
    }

    /// Takes what `newer` brings, by the rules of [`UPSERT_STATE_TAIL`]: the telemetry
    /// fields (each falling back to the value held) only with a later sample time, the
    /// position only with a later valid position.
    fn merge(&mut self, newer: &StateRow) {
        if newer.ts_ms > self.ts_ms {
            self.speed_kmh = newer.speed_kmh.or(self.speed_kmh);
            self.heading_deg = newer.heading_deg.or(self.heading_deg);
            self.soc_pct = newer.soc_pct.or(self.soc_pct);
            self.odometer_km = newer.odometer_km.or(self.odometer_km);
            self.charging = newer.charging.or(self.charging);
            self.ignition = newer.ignition.or(self.ignition);
            self.range_km = newer.range_km.or(self.range_km);
            self.ts_ms = newer.ts_ms;
        }
        if newer.pos_ts_ms.is_some_and(|p| p > self.pos_ts_ms.unwrap_or(-1)) {
            self.pos_ts_ms = newer.pos_ts_ms;
            self.lat = newer.lat;
            self.lon = newer.lon;
        }
    }
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

/// Folds a batch into one state row per vehicle, sorted by VIN: the samples of a vehicle
/// merged in time order, so that a field the newest sample lacks comes from the newest
/// that has it. (Of two samples with the same time the first counts, as storage keeps it.)
/// Samples whose clock was ahead are left out: a vehicle with only those gets no row.
pub(super) fn newest_states(samples: &[Sample]) -> Vec<StateRow> {
    let mut by_vin: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.moves_state()) {
        by_vin.entry(s.vin.as_str()).or_default().push(s);
    }
    by_vin
        .into_iter()
        .map(|(vin, mut list)| {
            list.sort_by_key(|s| s.ts);
            let mut row = StateRow { vin: vin.to_owned(), ..StateRow::of(list[0]) };
            for s in &list[1..] {
                row.merge(&StateRow::of(s));
            }
            row
        })
        .collect()
}

/// The state of committed samples not yet written to `vehicle_state`: one row per vehicle,
/// each the merge of every batch absorbed since the last write.
///
/// Merging batches before the write is the same as writing them one by one, with one
/// difference in a corner: a field the newest sample lacks falls back to the value of an
/// older sample of the backlog even where the stored state is newer than that sample. (A
/// single batch folds the same way, so this widens a window that was there already.)
#[derive(Debug, Default)]
pub struct StateBacklog {
    rows: HashMap<String, StateRow>,
    samples: u64,
}

impl StateBacklog {
    /// Adds a committed batch.
    pub fn absorb(&mut self, samples: &[Sample]) {
        self.samples += samples.len() as u64;
        for row in newest_states(samples) {
            self.add(row);
        }
    }

    fn add(&mut self, row: StateRow) {
        match self.rows.get_mut(row.vin.as_str()) {
            Some(held) => held.merge(&row),
            None => {
                self.rows.insert(row.vin.clone(), row);
            }
        }
    }

    /// Puts back a backlog whose write failed, under what came in since.
    pub fn merge(&mut self, other: StateBacklog) {
        self.samples += other.samples;
        for (_, row) in other.rows {
            self.add(row);
        }
    }

    /// Vehicles in the backlog.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Samples absorbed (what the rows were folded from).
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The rows sorted by VIN: two writers in flight lock them in the same order.
    pub(super) fn sorted_rows(&self) -> Vec<StateRow> {
        let mut rows: Vec<StateRow> = self.rows.values().cloned().collect();
        rows.sort_by(|a, b| a.vin.cmp(&b.vin));
        rows
    }
}

/// The merge of [`StateRow::merge`] in SQL, shared by both back ends.
pub(super) const UPSERT_STATE_TAIL: &str = " ON CONFLICT (vin) DO UPDATE SET
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

/// Merges state rows into `vehicle_state` on SQLite ([`UPSERT_STATE_TAIL`]).
pub(super) async fn upsert_states_sqlite(
    tx: &mut sqlx::SqliteConnection,
    rows: &[StateRow],
) -> Result<(), StorageError> {
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

#[cfg(test)]
mod tests {
    use fleet_domain::SampleSource;

    use super::*;

    fn s(vin: &str, ts_s: i64, valid: bool, soc: Option<f64>) -> Sample {
        let mut s =
            Sample::at(Vin::parse(vin).unwrap(), from_ms(ts_s * 1000), 30.0 + ts_s as f64, 122.0, SampleSource::Json);
        s.position_valid = valid;
        s.soc_pct = soc;
        s
    }

    const A: &str = "LSJA24U66NS000001";
    const B: &str = "LSJA24U66NS000002";

    #[test]
    fn newest_state_takes_latest_values_and_latest_valid_position() {
        let rows = newest_states(&[s(A, 3, false, None), s(A, 1, true, Some(50.0)), s(A, 2, true, Some(60.0))]);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.ts_ms, 3000);
        assert_eq!(r.pos_ts_ms, Some(2000));
        assert_eq!(r.lat, Some(32.0));
        assert_eq!(r.soc_pct, Some(60.0));
    }

    #[test]
    fn backlog_keeps_one_row_per_vehicle_at_its_newest_sample() {
        let mut b = StateBacklog::default();
        b.absorb(&[s(A, 10, true, Some(80.0)), s(B, 5, true, Some(40.0))]);
        b.absorb(&[s(A, 20, true, None), s(A, 15, true, Some(70.0))]);
        assert_eq!((b.len(), b.samples()), (2, 4));
        let rows = b.sorted_rows();
        assert_eq!(rows.iter().map(|r| r.vin.as_str()).collect::<Vec<_>>(), [A, B]);
        let a = &rows[0];
        // 20 s has no SoC: it falls back to the newest that had one (15 s, same batch).
        assert_eq!((a.ts_ms, a.soc_pct, a.pos_ts_ms, a.lat), (20_000, Some(70.0), Some(20_000), Some(50.0)));
    }

    #[test]
    fn backlog_never_moves_a_vehicle_back() {
        let mut b = StateBacklog::default();
        b.absorb(&[s(A, 100, true, Some(60.0))]);
        // A late batch from an offline period.
        b.absorb(&[s(A, 10, true, Some(90.0)), s(A, 20, true, Some(88.0))]);
        let a = &b.sorted_rows()[0];
        assert_eq!((a.ts_ms, a.soc_pct, a.pos_ts_ms, a.lat), (100_000, Some(60.0), Some(100_000), Some(130.0)));
        assert_eq!(b.samples(), 3);
    }

    #[test]
    fn an_invalid_position_moves_the_time_and_values_but_not_the_car() {
        let mut b = StateBacklog::default();
        b.absorb(&[s(A, 1, true, Some(50.0))]);
        b.absorb(&[s(A, 5, false, Some(45.0))]);
        let a = &b.sorted_rows()[0];
        assert_eq!((a.ts_ms, a.soc_pct, a.pos_ts_ms, a.lat), (5000, Some(45.0), Some(1000), Some(31.0)));
    }

    #[test]
    fn a_sample_from_the_future_moves_neither_the_backlog_nor_a_new_row() {
        let mut ahead = s(A, 90_000, true, Some(5.0));
        ahead.clock_ahead = true;
        let mut b = StateBacklog::default();
        b.absorb(&[s(A, 10, true, Some(80.0)), ahead.clone()]);
        b.absorb(&[s(A, 20, true, Some(79.0))]);
        let a = &b.sorted_rows()[0];
        assert_eq!((a.ts_ms, a.soc_pct, a.pos_ts_ms), (20_000, Some(79.0), Some(20_000)));
        let mut only_ahead = StateBacklog::default();
        only_ahead.absorb(&[ahead]);
        assert!(only_ahead.is_empty(), "a vehicle with only samples from the future gets no state");
    }

    #[test]
    fn a_failed_write_goes_back_under_what_came_since() {
        let mut failed = StateBacklog::default();
        failed.absorb(&[s(A, 10, true, Some(80.0)), s(B, 10, true, Some(30.0))]);
        let mut since = StateBacklog::default();
        since.absorb(&[s(A, 12, false, Some(79.0))]);
        since.merge(failed);
        assert_eq!((since.len(), since.samples()), (2, 3));
        let rows = since.sorted_rows();
        assert_eq!((rows[0].ts_ms, rows[0].soc_pct, rows[0].pos_ts_ms), (12_000, Some(79.0), Some(10_000)));
        assert_eq!((rows[1].ts_ms, rows[1].soc_pct), (10_000, Some(30.0)));
    }
}
