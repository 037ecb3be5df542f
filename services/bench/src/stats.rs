//! `fleetd bench stats`: how long one month's report takes (`GET /api/v1/stats/monthly`, JSON,
//! as admin) for fleets of `--vehicles` cars, with 1× and 10× as many raw samples per car
//! (`--densities`). The report reads the derived trips and charging sessions, never the raw
//! samples, so the 10× case must stay within 1.5× of the 1× case.
//!
//! Each case gets a fresh database: the cars (with their units and drivers), the orders their
//! trips served and a month of raw samples per car ([`month`]) are written straight through
//! storage; then a `fleetd run` child starts on it and its deriver catches every car up from
//! the raw samples. Once every case of a fleet size is derived, each report is requested once
//! to warm up and check it, then `--requests` times with the cases taking turns, so that a
//! shared machine's changing load falls on all of them alike.

mod month;
mod timing;

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use clap::Args;
use fleet_domain::trips::china_offset;
use fleet_domain::{NewDriver, NewUnit, OrderAction, OrderStatus, SecretUrl, Vin};
use fleet_storage::{Act, Actor, Backend, Store, TripGroup};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use self::month::{CarMonth, ORDER_TRIPS, SAMPLES_1X, TRIPS};
use self::timing::{time_reads, time_reports};
use super::child::Fleetd;
use super::db::{BenchDb, register_vehicles};
use super::load::{Broker, forget_session};
use super::{TargetArgs, bench_vin, progress, round_to};

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Fleet sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "60,1000")]
    pub vehicles: Vec<usize>,
    /// Raw-sample densities (comma-separated): 1 is 300 samples per car and month.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    pub densities: Vec<usize>,
    /// Timed requests per case (after one to warm up).
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// The month reported (YYYY-MM, Asia/Shanghai); default: last month.
    #[arg(long)]
    pub month: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Target of the issue: the report for 1,000 cars within this time.
const TARGET_MS: f64 = 200.0;
/// Target of the issue: 10× the raw samples costs at most this much more.
const TARGET_RATIO: f64 = 1.5;
/// The fleet size and the densities the targets are about.
const TARGET_VEHICLES: usize = 1000;
const TARGET_DENSITIES: (usize, usize) = (1, 10);
/// Cars per unit (a unit is a department with a few dozen cars).
const CARS_PER_UNIT: usize = 25;
/// Samples per storage commit.
const SAMPLES_PER_COMMIT: usize = 5_000;
/// Commits or order histories in flight at once on PostgreSQL; SQLite has one writer.
const PG_CONCURRENCY: usize = 4;
/// The deriver must have caught up within this time.
const DERIVE_TIMEOUT: Duration = Duration::from_secs(1800);

pub(crate) async fn run(args: StatsArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(!args.vehicles.is_empty() && args.vehicles.iter().all(|&n| n > 0), "fleet sizes must be positive");
    anyhow::ensure!(
        !args.densities.is_empty() && args.densities.iter().all(|&d| (1..=100).contains(&d)),
        "densities must be 1 to 100"
    );
    anyhow::ensure!(args.requests > 0, "at least one timed request");
    let month = match &args.month {
        Some(m) => m.clone(),
        None => last_month(Utc::now()),
    };
    let month_start = month_start(&month).with_context(|| format!("bad month {month:?} (YYYY-MM)"))?;
    let broker = Broker::start(args.target.mqtt_url.as_ref().map(SecretUrl::expose))?;
    let mut out = Map::new();
    for &n in &args.vehicles {
        let mut cases = Vec::new();
        let result = fleet(&args, &broker, &month, month_start, n, &mut cases, &mut out).await;
        for case in cases {
            case.teardown(&broker).await;
        }
        result?;
    }
    let (lo, hi) = TARGET_DENSITIES;
    let key = |d: usize| format!("stats.vehicles_{TARGET_VEHICLES}_raw_{d}x_ms");
    let (lo_ms, hi_ms) = (out.get(&key(lo)).and_then(Value::as_f64), out.get(&key(hi)).and_then(Value::as_f64));
    if let (Some(a), Some(b)) = (lo_ms, hi_ms) {
        let ratio = b / a;
        out.insert("stats.raw_10x_over_1x_ratio".into(), json!(round_to(ratio, 3)));
        out.insert("stats.target_met".into(), json!(a <= TARGET_MS && b <= TARGET_MS && ratio <= TARGET_RATIO));
    }
    out.insert("stats.month".into(), json!(month));
    out.insert("stats.requests".into(), json!(args.requests));
    out.insert("stats.samples_per_vehicle_1x".into(), json!(SAMPLES_1X));
    out.insert("stats.trips_per_vehicle".into(), json!(TRIPS));
    // Timings are wall-clock on a machine that may be shared: say how busy it was.
    if let Some(load) =
        std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
    {
        out.insert("stats.machine_load_1m".into(), json!(load));
    }
    Ok(Value::Object(out))
}

/// The month before `now`'s, in Asia/Shanghai.
fn last_month(now: DateTime<Utc>) -> String {
    let local = now.with_timezone(&china_offset());
    let (y, m) = if local.month() == 1 { (local.year() - 1, 12) } else { (local.year(), local.month() - 1) };
    format!("{y:04}-{m:02}")
}

/// Midnight Asia/Shanghai on the first of `month` (YYYY-MM).
fn month_start(month: &str) -> Option<DateTime<Utc>> {
    let (y, m) = month.split_once('-')?;
    let (y, m) = (y.parse().ok()?, m.parse().ok()?);
    Some(china_offset().with_ymd_and_hms(y, m, 1, 0, 0, 0).single()?.with_timezone(&Utc))
}

fn unit_id(car: usize) -> String {
    format!("su{:03}", car / CARS_PER_UNIT)
}

fn driver_id(car: usize) -> String {
    format!("sd{car:05}")
}

fn concurrency(store: &Store) -> usize {
    match store.backend() {
        Backend::Sqlite => 1,
        Backend::Postgres => PG_CONCURRENCY,
    }
}

/// One case: a fleet at one density, on its own database, served by its own fleetd once
/// the database is filled.
struct Case {
    name: String,
    d: usize,
    db: BenchDb,
    store: Store,
    client_id: String,
    fleetd: Option<Fleetd>,
}

impl Case {
    fn fleetd(&self) -> anyhow::Result<&Fleetd> {
        self.fleetd.as_ref().with_context(|| format!("{} has no fleetd", self.name))
    }

    async fn teardown(self, broker: &Broker) {
        self.store.close().await;
        if let Some(fleetd) = self.fleetd {
            if let Err(e) = fleetd.stop().await {
                progress(format!("stats {}: stopping fleetd: {e:#}", self.name));
            }
            if let Err(e) = forget_session(&broker.host, broker.port, &self.client_id).await {
                progress(format!("stats {}: {e:#}", self.name));
            }
        }
        self.db.cleanup().await;
    }
}

/// Every density for `n` cars, each case filled and derived in turn; then the reports of all
/// cases are timed taking turns, request by request, so that every density meets the same
/// load on a shared machine and their ratio holds however busy it is.
async fn fleet(
    args: &StatsArgs,
    broker: &Broker,
    month: &str,
    month_start: DateTime<Utc>,
    n: usize,
    cases: &mut Vec<Case>,
    out: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    for &d in &args.densities {
        let db = BenchDb::create(args.target.database_url.expose()).await?;
        let store = match db.store().await {
            Ok(store) => store,
            Err(e) => {
                db.cleanup().await;
                return Err(e);
            }
        };
        let client_id = format!("fleetd-bench-stats-{}-{d}x", std::process::id());
        cases.push(Case { name: format!("vehicles_{n}_raw_{d}x"), d, db, store, client_id, fleetd: None });
        let case = cases.last_mut().expect("a case was just added");
        prepare(case, broker, month_start, n, month, out).await?;
    }
    let timed = time_reports(cases, month, n, args.requests).await?;
    for (case, (median, p95, bytes)) in cases.iter().zip(timed) {
        let name = &case.name;
        progress(format!(
            "stats {name}: report median {median:.1} ms, p95 {p95:.1} ms, {:.0} KiB",
            bytes as f64 / 1024.0
        ));
        out.insert(format!("stats.{name}_ms"), json!(round_to(median, 2)));
        out.insert(format!("stats.{name}_p95_ms"), json!(round_to(p95, 2)));
        out.insert(format!("stats.{name}_report_kib"), json!(round_to(bytes as f64 / 1024.0, 1)));
        let (reads, by_kind) = time_reads(&case.store, month, month_start).await?;
        let split: Vec<String> = by_kind.iter().map(|(kind, ms)| format!("{kind} {ms:.1}")).collect();
        progress(format!(
            "stats {name}: the report's storage reads alone, from here: median {reads:.1} ms ({})",
            split.join(", ")
        ));
        out.insert(format!("stats.{name}_storage_reads_ms"), json!(round_to(reads, 2)));
        for (kind, ms) in by_kind {
            out.insert(format!("stats.{name}_reads_{kind}_ms"), json!(round_to(ms, 2)));
        }
    }
    Ok(())
}

/// Fills a case's database (cars, units, drivers, orders, raw samples), starts its fleetd
/// and waits until it has derived every trip and session.
async fn prepare(
    case: &mut Case,
    broker: &Broker,
    month_start: DateTime<Utc>,
    n: usize,
    month: &str,
    out: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    let (name, d, store) = (&case.name, case.d, &case.store);
    out.insert("stats.backend".into(), json!(if store.backend() == Backend::Sqlite { "sqlite" } else { "postgres" }));
    progress(format!("stats {name}: registering {n} cars, their units and drivers"));
    register_vehicles(store, n).await?;
    for u in 0..n.div_ceil(CARS_PER_UNIT) {
        let unit = NewUnit {
            id: None,
            name: format!("Bench unit {u}"),
            monthly_energy_budget_kwh: 5_000.0,
            auto_approve: true,
            ..Default::default()
        };
        store.units().create(&unit_id(u * CARS_PER_UNIT), &unit).await?;
    }
    for car in 0..n {
        let driver =
            NewDriver { id: None, name: format!("Bench driver {car}"), phone: "13800000000".into(), vehicle_vin: None };
        store.drivers().create(&driver_id(car), &driver, Some(&bench_vin(car))).await?;
    }

    let t = Instant::now();
    progress(format!("stats {name}: {} orders the trips served", n * ORDER_TRIPS));
    futures_util::stream::iter(0..n)
        .map(|car| async move {
            book_orders(store, car, month_start).await.with_context(|| format!("the orders of car {car}"))
        })
        .buffer_unordered(concurrency(store))
        .try_for_each(|()| async { Ok(()) })
        .await?;
    progress(format!("stats {name}: orders stored in {:.1} s", t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let samples = insert_samples(store, name, month_start, n, d).await?;
    let insert_s = t.elapsed().as_secs_f64();
    progress(format!("stats {name}: {samples} samples stored in {insert_s:.1} s ({:.0}/s)", samples as f64 / insert_s));

    let t = Instant::now();
    let fleetd = Fleetd::spawn(&case.db.url, &broker.url, &case.client_id).await?;
    progress(format!("stats {name}: fleetd (pid {:?}) deriving trips", fleetd.pid()));
    case.fleetd = Some(fleetd);
    let (trips, sessions) = wait_for_derivation(store, month, n).await?;
    let derive_s = t.elapsed().as_secs_f64();
    progress(format!("stats {name}: {trips} trips, {sessions} charging sessions derived in {derive_s:.1} s"));
    out.insert(format!("stats.samples_{n}_{d}x_count"), json!(samples));
    out.insert(format!("stats.samples_{n}_{d}x_insert_per_s"), json!((samples as f64 / insert_s).round()));
    out.insert(format!("stats.derive_{n}_{d}x_s"), json!(round_to(derive_s, 1)));
    out.insert(format!("stats.trips_{n}_count"), json!(trips));
    Ok(())
}

/// The history of every order car `car`'s trips served: booked two hours ahead, assigned a
/// minute later, accepted, picked up at the trip's start, completed at its end.
async fn book_orders(store: &Store, car: usize, month_start: DateTime<Utc>) -> anyhow::Result<()> {
    let vin: Vin = bench_vin(car);
    let m = CarMonth::new(vin.clone(), car, month_start);
    let booker = Actor { name: format!("unit-{}", unit_id(car)), user_id: None, on_behalf: false, driver_id: None };
    let driver = Actor { name: driver_id(car), user_id: None, on_behalf: false, driver_id: None };
    let dispatch = Actor::dispatch();
    for k in 0..ORDER_TRIPS {
        let trip = m.trip(k);
        let new = m.order(k, &unit_id(car));
        let id = format!("o-bench-{car}-{k}");
        let booked = trip.start - chrono::Duration::hours(2);
        let window = (trip.start - chrono::Duration::minutes(10), trip.end + chrono::Duration::minutes(10));
        store
            .orders()
            .create(&id, &new, trip.start, OrderStatus::Approved, window, &booker, Some("auto_approve"), booked)
            .await?;
        let steps = [
            (OrderAction::Assign, &dispatch, booked + chrono::Duration::minutes(1)),
            (OrderAction::Accept, &driver, booked + chrono::Duration::minutes(2)),
            (OrderAction::Pickup, &driver, trip.start),
            (OrderAction::Complete, &driver, trip.end),
        ];
        for (action, actor, at) in steps {
            let car = (action == OrderAction::Assign).then(|| (vin.clone(), Some(driver_id(car))));
            let act = Act { action, actor, reason: None, car, expected_version: None };
            store.orders().act(&id, &act, at).await?.with_context(|| format!("order {id} vanished"))?;
        }
    }
    Ok(())
}

/// Writes every car's month at density `d`, [`SAMPLES_PER_COMMIT`] samples a commit; gives
/// how many.
async fn insert_samples(
    store: &Store,
    name: &str,
    month_start: DateTime<Utc>,
    n: usize,
    d: usize,
) -> anyhow::Result<u64> {
    let per_commit = (SAMPLES_PER_COMMIT / (SAMPLES_1X * d)).max(1);
    let chunks: Vec<std::ops::Range<usize>> = (0..n).step_by(per_commit).map(|a| a..(a + per_commit).min(n)).collect();
    let total = chunks.len();
    let mut stored = 0u64;
    let mut done = 0;
    let mut commits = futures_util::stream::iter(chunks)
        .map(|cars| async move {
            let samples: Vec<_> =
                cars.flat_map(|car| CarMonth::new(bench_vin(car), car, month_start).samples(d)).collect();
            let outcome = store.telemetry().commit(&samples, &[]).await?;
            anyhow::ensure!(
                outcome.inserted == samples.len() as u64,
                "{} of {} samples stored",
                outcome.inserted,
                samples.len()
            );
            Ok(outcome.inserted)
        })
        .buffer_unordered(concurrency(store));
    while let Some(inserted) = commits.try_next().await? {
        stored += inserted;
        done += 1;
        if done % (total / 10).max(1) == 0 {
            progress(format!("stats {name}: {stored} samples stored"));
        }
    }
    Ok(stored)
}

/// Waits until the deriver has every car's trips and session of `month`; gives their counts.
async fn wait_for_derivation(store: &Store, month: &str, n: usize) -> anyhow::Result<(i64, i64)> {
    let (want_trips, want_sessions) = ((n * TRIPS) as i64, n as i64);
    let deadline = Instant::now() + DERIVE_TIMEOUT;
    let mut last = (-1, -1);
    loop {
        let trips: i64 = store.derived().trip_totals(month, TripGroup::Vehicle).await?.iter().map(|t| t.trips).sum();
        let sessions: i64 = store.derived().charge_totals(month).await?.iter().map(|c| c.sessions).sum();
        if trips >= want_trips && sessions >= want_sessions {
            anyhow::ensure!(
                (trips, sessions) == (want_trips, want_sessions),
                "derived {trips} trips and {sessions} sessions, planned {want_trips} and {want_sessions}"
            );
            return Ok((trips, sessions));
        }
        if (trips, sessions) != last {
            progress(format!("stats: {trips} of {want_trips} trips derived"));
            last = (trips, sessions);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {trips} of {want_trips} trips derived after {} s",
            DERIVE_TIMEOUT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_month_wraps_at_new_year_in_shanghai() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(last_month(at("2026-11-26T12:00:00Z")), "2026-10");
        // 2027-01-01 03:00 in Shanghai is still 2026 in UTC.
        assert_eq!(last_month(at("2026-12-31T19:00:00Z")), "2026-12");
        assert_eq!(last_month(at("2026-12-31T15:00:00Z")), "2026-11");
        assert_eq!(month_start("2026-10").unwrap(), at("2026-09-30T16:00:00Z"));
        assert_eq!(month_start("2026/10"), None);
    }
}
