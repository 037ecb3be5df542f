//! `fleetd bench soak`: fleetd under a city's steady load for a long time — does its memory
//! stay flat, does the live feed stay fast, is any sample lost?
//!
//! A `fleetd run` child on a fresh database and the configured broker; a simulated fleet
//! ([`fleet_sim`]: cars driving around Zhoushan, a share speaking GB/T 32960, dead
//! spots and backlog uploads) publishing QoS 1; live-feed clients ([`clients`]); a trickle of
//! orders that drivers accept, pick up and complete ([`orders`]). Every 10 s the bench reads
//! fleetd's RSS and CPU time; every minute it prints a progress line. At the end it stops the
//! fleet, waits until the store holds every distinct sample the broker carried ([`tap`]),
//! and prints the figures ([`memory`] says how RSS growth is measured).

mod clients;
mod fleet;
mod memory;
mod orders;
mod tap;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use fleet_domain::SecretUrl;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::clients::{FeedCounts, Timing};
use self::memory::RssPoint;
use self::orders::{OrderCounts, OrderLoad};
use self::tap::Tap;
use super::child::{Fleetd, cpu_seconds_of, machine_busy_seconds};
use super::db::BenchDb;
use super::live::histogram::Histogram;
use super::load::{Broker, forget_session, publish_all};
use super::{TargetArgs, bench_vin, progress, round_to};
use fleet_sim::{self as simulate, SimStats};

/// The figures, for `fleetd bench soak --help`.
pub const AFTER_HELP: &str = "\
Prints a progress line a minute on stderr and one JSON object on the last line of stdout:
  soak.rss_after_warmup_mib, soak.rss_end_mib   median RSS of the first and of the last window after
                                                the warm-up (5 min each, or half of what follows the
                                                warm-up if shorter); warm-up = the first 10 % of the
                                                run, at least 1 minute
  soak.rss_growth_ratio                         rss_end / rss_after_warmup - 1 (target <= 0.10)
  soak.rss_slope_mib_per_h                      least-squares slope of RSS after the warm-up, and
  soak.rss_slope_second_half_mib_per_h          of its second half alone (near 0: settled, not leaking)
  soak.rss_by_minute_mib, soak.fleetd_cpu_by_minute_cores   fleetd at the end of each minute
  soak.rss_anon_by_minute_mib                   the part of it that is fleetd's own allocations
  soak.heap_allocated_by_minute_mib             what fleetd's heap holds (jemalloc's count), and
  soak.heap_resident_by_minute_mib              what the allocator keeps in RAM for it (freed pages
                                                not yet given back included)
  soak.feed_p50_by_minute_ms, soak.feed_p99_by_minute_ms    a JSON car's sample time to its receipt
                                                on a live client, by the minute of the sample
  soak.samples_published_count                  distinct (car, ts) samples the broker carried
  soak.samples_stored_count, soak.samples_lost_count   rows stored, and published minus stored (target 0)
  soak.orders_completed_count                   orders created, dispatched, accepted, picked up, completed
  soak.target_met                               growth <= 0.10, nothing lost, the sample count complete";

#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Minutes of load; the first 10 % (at least one minute) is warm-up.
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    /// Vehicles registered and reporting.
    #[arg(long, default_value_t = 2000)]
    pub vehicles: usize,
    /// Seconds between two reports of one vehicle.
    #[arg(long, default_value_t = 5.0)]
    pub interval_s: f64,
    /// Share of the vehicles speaking GB/T 32960 (half each edition); the rest speak JSON.
    #[arg(long, default_value_t = fleet_sim::demo::DEMO_GBT32960_SHARE)]
    pub gbt32960_share: f64,
    /// Live-feed WebSocket clients (as admin); of every ten, one filters on a unit and one
    /// on an area, the rest see the whole fleet.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Orders booked a minute, each carried through to completion by its driver.
    #[arg(long, default_value_t = 6.0)]
    pub orders_per_min: f64,
    /// Drivers (each bound to a car, logged in, taking the orders).
    #[arg(long, default_value_t = 50)]
    pub drivers: usize,
    /// Seed of the simulated fleet and the orders.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Target of the issue: RSS at the end at most this much above RSS after the warm-up.
const TARGET_RSS_GROWTH_RATIO: f64 = 0.10;
/// Warm-up: this share of the run, and at least [`MIN_WARMUP_S`].
const WARMUP_SHARE: f64 = 0.1;
const MIN_WARMUP_S: f64 = 60.0;
/// fleetd's RSS and CPU are read this often.
const SAMPLE_EVERY_S: u64 = 10;
/// After the fleet stops, the store must hold every sample within this time.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// Once everything is stored, the live clients get this long to receive the last positions.
const DELIVERY_GRACE: Duration = Duration::from_secs(3);

/// Wall-clock time in epoch milliseconds, the unit of the samples' `ts`.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(args.minutes >= 2, "--minutes must be at least 2 (one of warm-up, one measured)");
    anyhow::ensure!((1..=200_000).contains(&args.vehicles), "--vehicles must be 1 to 200000");
    anyhow::ensure!((0.1..=3600.0).contains(&args.interval_s), "--interval-s must be 0.1 to 3600");
    anyhow::ensure!((0.0..=1.0).contains(&args.gbt32960_share), "--gbt32960-share must be between 0 and 1");
    anyhow::ensure!(args.orders_per_min >= 0.0 && args.orders_per_min <= 600.0, "--orders-per-min must be 0 to 600");
    anyhow::ensure!(args.drivers <= args.vehicles, "--drivers must be at most --vehicles");
    anyhow::ensure!(args.orders_per_min == 0.0 || args.drivers > 0, "orders need at least one driver");
    let broker = Broker::start(args.target.mqtt_url.as_ref().map(SecretUrl::expose))?;
    let db = BenchDb::create(args.target.database_url.expose()).await?;
    let result = soak(&args, &broker, &db).await;
    db.cleanup().await;
    result
}

async fn soak(args: &SoakArgs, broker: &Broker, db: &BenchDb) -> anyhow::Result<Value> {
    let store = db.store().await?;
    progress(format!("soak: registering {} vehicles and {} drivers", args.vehicles, args.drivers));
    let registered = fleet::register(&store, args.vehicles, args.drivers).await?;

    let client_id = format!("fleetd-bench-soak-{}", std::process::id());
    let fleetd = Arc::new(Fleetd::spawn(&db.url, &broker.url, &client_id).await?);
    progress(format!("soak: fleetd (pid {:?}) listening on {}", fleetd.pid(), fleetd.http));
    // Everything started from here stops when this guard goes, on success or error.
    let root = CancellationToken::new();
    let _stop_all = root.clone().drop_guard();
    let result = with_fleetd(args, broker, &store, &fleetd, &registered, &root).await;
    root.cancel();
    store.close().await;
    let stopped = match Arc::try_unwrap(fleetd) {
        Ok(fleetd) => match fleetd.stop().await {
            Ok(()) => forget_session(&broker.host, broker.port, &client_id).await,
            Err(e) => Err(e),
        },
        // A task still holds it after a failure: fleetd is killed when that lets go.
        Err(_) => Err(anyhow::anyhow!("fleetd still in use; it is killed on exit")),
    };
    match (result, stopped) {
        (Ok(figures), Ok(())) => Ok(figures),
        (Ok(_), Err(e)) => Err(e),
        // The run's own error says more than the stop's.
        (Err(e), stopped) => {
            if let Err(s) = stopped {
                progress(format!("soak: {s:#}"));
            }
            Err(e)
        }
    }
}

async fn with_fleetd(
    args: &SoakArgs,
    broker: &Broker,
    store: &fleet_storage::Store,
    fleetd: &Arc<Fleetd>,
    registered: &fleet::Registered,
    root: &CancellationToken,
) -> anyhow::Result<Value> {
    wait_for_subscription(fleetd, broker, store).await?;
    let rows0 = store.telemetry().count(None).await?;
    let admin = fleetd.admin_token().await?;
    progress(format!("soak: {} driver logins", registered.drivers.len()));
    let drivers = Arc::new(orders::driver_tokens(fleetd, &admin, &registered.drivers).await?);

    let credentials = fleet_broker::MqttUrl::parse(&broker.url)?;
    let tap = Tap::start(
        &broker.host,
        broker.port,
        credentials.username.zip(credentials.password.map(|p| p.expose().to_owned())),
    )
    .await?;

    // Minute 0 starts with the fleet; until then nothing is timed.
    let start_ms = Arc::new(AtomicI64::new(i64::MAX));
    let minutes = Arc::new(std::sync::Mutex::new(vec![Histogram::default(); args.minutes as usize]));
    let timing = Timing {
        start_ms: start_ms.clone(),
        timed: Arc::new((0..args.vehicles).map(|i| !fleet::is_gbt(i, args.gbt32960_share)).collect()),
        minutes: minutes.clone(),
    };
    let feed_counts = Arc::new(FeedCounts::default());
    let feed_stop = root.child_token();
    let queries = fleet::client_queries(args.clients, &registered.units);
    progress(format!(
        "soak: connecting {} live clients ({} filtered)",
        args.clients,
        queries.iter().filter(|q| !q.is_empty()).count()
    ));
    let mut readers =
        clients::spawn(fleetd.http, &admin, queries, timing, feed_counts.clone(), feed_stop.clone()).await?;

    let run_s = args.minutes * 60;
    let warmup_s = (run_s as f64 * WARMUP_SHARE).max(MIN_WARMUP_S);
    let interval = Duration::from_secs_f64(args.interval_s);
    let sim_stop = root.child_token();
    let t0 = Instant::now();
    start_ms.store(now_ms(), Ordering::Relaxed);
    let sims: Vec<_> = fleet::simulators(broker, args.vehicles, args.gbt32960_share, interval, args.seed)?
        .into_iter()
        .map(|cfg| tokio::spawn(simulate::run(cfg, sim_stop.clone())))
        .collect();
    let order_counts = Arc::new(OrderCounts::default());
    let (stop_booking, orders_stop) = (root.child_token(), root.child_token());
    let load = OrderLoad {
        fleetd: fleetd.clone(),
        admin: admin.clone(),
        drivers,
        units: registered.units.clone(),
        per_min: args.orders_per_min,
        seed: args.seed,
        counts: order_counts.clone(),
    };
    let order_task = tokio::spawn(load.run(stop_booking.clone(), orders_stop.clone()));
    progress(format!(
        "soak: {} vehicles every {} s ({:.0} msg/s, {:.0} % GB/T 32960), {} orders a minute, {} min ({:.1} warm-up)",
        args.vehicles,
        args.interval_s,
        args.vehicles as f64 / args.interval_s,
        args.gbt32960_share * 100.0,
        args.orders_per_min,
        args.minutes,
        warmup_s / 60.0
    ));

    // fleetd's samples_stored_total at the start, for the progress lines.
    let committed0 = fleetd.samples_stored().await?;
    let machine0 = (machine_busy_seconds(), cpu_seconds_of("self"));
    let mut rss = vec![RssPoint { t_s: 0.0, mib: fleetd.rss_mib().context("reading fleetd's RSS")? }];
    let mut cpu = vec![(0.0, fleetd.cpu_seconds().context("reading fleetd's CPU time")?)];
    let (mut rss_by_minute, mut cpu_by_minute, mut anon_by_minute) = (Vec::new(), Vec::new(), Vec::new());
    let (mut heap_allocated_by_minute, mut heap_resident_by_minute) = (Vec::new(), Vec::new());
    for k in 1..=run_s / SAMPLE_EVERY_S {
        let t_s = k * SAMPLE_EVERY_S;
        tokio::time::sleep_until(t0 + Duration::from_secs(t_s)).await;
        let (Some(mib), Some(cpu_s)) = (fleetd.rss_mib(), fleetd.cpu_seconds()) else {
            anyhow::bail!("fleetd (pid {:?}) is gone after {t_s} s", fleetd.pid());
        };
        anyhow::ensure!(!tap.failed(), "the tap's broker connection failed after {t_s} s");
        rss.push(RssPoint { t_s: t_s as f64, mib });
        cpu.push((t_s as f64, cpu_s));
        if t_s.is_multiple_of(60) {
            let m = (t_s / 60 - 1) as usize;
            let cores = (cpu_s - cpu[cpu.len() - 1 - (60 / SAMPLE_EVERY_S) as usize].1) / 60.0;
            rss_by_minute.push(round_to(mib, 1));
            anon_by_minute.push(fleetd.rss_anon_mib().map(|a| round_to(a, 1)));
            let heap = fleetd.heap_mib().await.ok();
            heap_allocated_by_minute.push(heap.map(|h| round_to(h.0, 1)));
            heap_resident_by_minute.push(heap.map(|h| round_to(h.1, 1)));
            cpu_by_minute.push(round_to(cores, 3));
            let (p50, p99) = {
                let h = minutes.lock().unwrap_or_else(|e| e.into_inner());
                (h[m].quantile(0.5), h[m].quantile(0.99))
            };
            let stored = fleetd.samples_stored().await.map(|s| s.saturating_sub(committed0)).unwrap_or(0);
            progress(format!(
                "soak: minute {}/{}: rss {mib:.1} MiB, fleetd {cores:.2} cores, feed p50 {} ms p99 {} ms, published {} stored {stored}, orders {} done of {}",
                m + 1,
                args.minutes,
                p50.map_or("-".into(), |v| v.to_string()),
                p99.map_or("-".into(), |v| v.to_string()),
                tap.counts().samples,
                order_counts.completed.load(Ordering::Relaxed),
                order_counts.created.load(Ordering::Relaxed),
            ));
        }
    }
    let machine1 = (machine_busy_seconds(), cpu_seconds_of("self"));

    // Stop the fleet and the booking; wait until every distinct sample is stored.
    stop_booking.cancel();
    sim_stop.cancel();
    let mut sim = SimStats::default();
    for s in sims {
        let s = s.await.context("a simulator panicked")??;
        sim.published += s.published;
        sim.errors += s.errors;
    }
    let stopped = Instant::now();
    progress(format!("soak: fleet stopped ({} messages acknowledged); draining", sim.published));
    let stored = loop {
        let c = tap.counts();
        let stored = u64::try_from(store.telemetry().count(None).await? - rows0).unwrap_or(0);
        if c.messages >= sim.published && stored >= c.samples {
            break stored;
        }
        if stopped.elapsed() >= DRAIN_TIMEOUT {
            progress(format!(
                "soak: drain timed out: {stored} stored of {} published, tap saw {} of {} messages",
                c.samples, c.messages, sim.published
            ));
            break stored;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let drain = stopped.elapsed();
    tokio::time::sleep(DELIVERY_GRACE).await;
    feed_stop.cancel();
    while readers.join_next().await.is_some() {}
    orders_stop.cancel();
    order_task.await.context("the order load panicked")?;
    let tapped = tap.counts();
    tap.stop();

    let dead_letters = store.dead_letters().count().await?;
    let trips = store
        .derived()
        .trips(
            None,
            chrono::Utc::now() - chrono::Duration::days(2),
            chrono::Utc::now() + chrono::Duration::days(1),
            i64::MAX,
        )
        .await?
        .len();
    let peak = fleetd.peak_rss_mib();

    // Figures.
    let rss_fig = memory::summarize(&rss, warmup_s, run_s as f64).context("no RSS readings after the warm-up")?;
    let cpu_at = |t: f64| cpu.iter().find(|(s, _)| *s >= t).copied();
    let fleetd_cores =
        cpu_at(warmup_s).zip(cpu.last().copied()).map(|((a, ca), (b, cb))| (cb - ca) / (b - a).max(1e-9));
    let wall = run_s as f64;
    let rate = |a: Option<f64>, b: Option<f64>| Some(round_to((b? - a?) / wall, 3));
    let minutes = std::mem::take(&mut *minutes.lock().unwrap_or_else(|e| e.into_inner()));
    let mut after = Histogram::default();
    for (m, h) in minutes.iter().enumerate() {
        if (m * 60) as f64 >= warmup_s {
            after.merge(h);
        }
    }
    let lost = tapped.samples.saturating_sub(stored);
    let tap_complete = tapped.messages >= sim.published && tapped.unreadable == 0;
    let target_met = rss_fig.growth_ratio <= TARGET_RSS_GROWTH_RATIO && lost == 0 && tap_complete;
    let count = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (created, completed) = (count(&order_counts.created), count(&order_counts.completed));
    let (unmatched, failed) = (count(&order_counts.unmatched), count(&order_counts.failed));

    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(format!("soak.{k}"), v);
    };
    put("backend", json!(if store.backend() == fleet_storage::Backend::Sqlite { "sqlite" } else { "postgres" }));
    put("broker", json!(if args.target.mqtt_url.is_some() { "external" } else { "embedded" }));
    put("minutes", json!(args.minutes));
    put("warmup_min", json!(round_to(warmup_s / 60.0, 2)));
    put("vehicles_count", json!(args.vehicles));
    put(
        "gbt32960_vehicles_count",
        json!((0..args.vehicles).filter(|&i| fleet::is_gbt(i, args.gbt32960_share)).count()),
    );
    put("interval_s", json!(args.interval_s));
    put("clients_count", json!(args.clients));
    put("drivers_count", json!(args.drivers));
    put("orders_per_min", json!(args.orders_per_min));
    put("rss_after_warmup_mib", json!(round_to(rss_fig.after_warmup_mib, 1)));
    put("rss_end_mib", json!(round_to(rss_fig.end_mib, 1)));
    put("rss_max_mib", json!(round_to(rss_fig.max_mib, 1)));
    put("rss_growth_ratio", json!(round_to(rss_fig.growth_ratio, 4)));
    put("rss_slope_mib_per_h", json!(round_to(rss_fig.slope_mib_per_h, 2)));
    put("rss_slope_second_half_mib_per_h", json!(round_to(rss_fig.slope_second_half_mib_per_h, 2)));
    put("rss_window_s", json!(rss_fig.window_s));
    put("rss_by_minute_mib", json!(rss_by_minute));
    put("rss_anon_by_minute_mib", json!(anon_by_minute));
    put("heap_allocated_by_minute_mib", json!(heap_allocated_by_minute));
    put("heap_resident_by_minute_mib", json!(heap_resident_by_minute));
    put("fleetd_peak_rss_mib", json!(peak.map(|p| round_to(p, 1))));
    put("fleetd_cpu_cores", json!(fleetd_cores.map(|c| round_to(c, 3))));
    put("fleetd_cpu_by_minute_cores", json!(cpu_by_minute));
    put("samples_published_count", json!(tapped.samples));
    put("samples_stored_count", json!(stored));
    put("samples_lost_count", json!(lost));
    put("samples_invalid_count", json!(tapped.invalid));
    put("messages_acknowledged_count", json!(sim.published));
    put("messages_tapped_count", json!(tapped.messages));
    put("messages_unreadable_count", json!(tapped.unreadable));
    put("tap_complete", json!(tap_complete));
    put("simulator_errors_count", json!(sim.errors));
    put("dead_letters_count", json!(dead_letters));
    put("drain_ms", json!(drain.as_millis() as u64));
    put("feed_p50_by_minute_ms", json!(minutes.iter().map(|h| h.quantile(0.5)).collect::<Vec<_>>()));
    put("feed_p99_by_minute_ms", json!(minutes.iter().map(|h| h.quantile(0.99)).collect::<Vec<_>>()));
    put("feed_p50_ms", json!(after.quantile(0.5)));
    put("feed_p99_ms", json!(after.quantile(0.99)));
    put("feed_max_ms", json!(after.max()));
    put("feed_timed_count", json!(after.count()));
    put("ws_resyncs_count", json!(count(&feed_counts.resyncs)));
    put("ws_reconnects_count", json!(count(&feed_counts.reconnects)));
    put("ws_order_events_count", json!(count(&feed_counts.order_events)));
    put("ws_unreadable_count", json!(count(&feed_counts.unreadable)));
    put("orders_created_count", json!(created));
    put("orders_completed_count", json!(completed));
    put("orders_unmatched_count", json!(unmatched));
    put("orders_failed_count", json!(failed));
    put("orders_open_at_end_count", json!(created.saturating_sub(completed + unmatched + failed)));
    put("trips_derived_count", json!(trips));
    put("bench_cpu_cores", json!(rate(machine0.1, machine1.1)));
    put("machine_cpu_busy_cores", json!(rate(machine0.0, machine1.0)));
    put("target_met", json!(target_met));
    progress(format!(
        "soak: rss {:.1} → {:.1} MiB ({:+.1} %), published {} stored {stored} lost {lost}, feed p99 {:?} ms, {completed} orders completed",
        rss_fig.after_warmup_mib,
        rss_fig.end_mib,
        rss_fig.growth_ratio * 100.0,
        tapped.samples,
        after.quantile(0.99)
    ));
    Ok(Value::Object(out))
}

/// Waits until fleetd's subscription is in place: a probe sample (a day old, outside every
/// minute of the run) must be stored. Until then the broker would not hand fleetd what the
/// fleet publishes.
async fn wait_for_subscription(fleetd: &Fleetd, broker: &Broker, store: &fleet_storage::Store) -> anyhow::Result<()> {
    let ts = now_ms() - 86_400_000;
    let probe = Arc::new(vec![super::load::Message {
        topic: format!("fleet/v1/vehicles/{}/telemetry", bench_vin(0)),
        payload: format!("{{\"ts\":{ts},\"lat\":30.0,\"lon\":122.1}}").into_bytes(),
    }]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.telemetry().count(None).await? < 1 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "fleetd (pid {:?}) stored no probe sample within 30 s",
            fleetd.pid()
        );
        publish_all(&broker.host, broker.port, probe.clone(), 1, "bench-soak-probe").await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
