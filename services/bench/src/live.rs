//! `fleetd bench live`: how long a car's report takes from its MQTT publish to the live
//! feed's WebSocket clients, against how long it takes to reach a plain MQTT subscriber of
//! the same broker in the same run; whether ingest lost anything; what fleetd spent.
//!
//! A fleet of `--vehicles` cars reports every `--interval-s`, spread evenly, each sample
//! stamped with its publishing time (epoch ms). After `--warmup-s`, samples published during
//! `--duration-s` are measured: each client times every car in every message it receives
//! (receipt time − sample time, first receipt of a sample only), the baseline subscriber
//! every message. Then publishing stops, the bench waits for the drain and counts the rows.

mod feed;
// The soak bench reads the feed the same way.
pub(super) mod histogram;
mod publisher;
pub(super) mod scan;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use fleet_domain::SecretUrl;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::feed::{ClientReport, FeedClient};
use self::histogram::{Histogram, median};
use self::publisher::{Counter, Published, Schedule};
use super::child::{Fleetd, cpu_seconds_of, machine_busy_seconds, summary_quantile};
use super::db::{BenchDb, register_vehicles};
use super::load::{Broker, CountingSubscriber, forget_session};
use super::{TargetArgs, bench_vin, progress, round_to};

#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Vehicles registered and reporting.
    #[arg(long, default_value_t = 10_000)]
    pub vehicles: usize,
    /// Seconds between two reports of one vehicle; the fleet's reports are spread evenly over it.
    #[arg(long, default_value_t = 5.0)]
    pub interval_s: f64,
    /// WebSocket clients on the live feed, each logged in as admin (the full, unfiltered view).
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Seconds of measuring: samples published in this window are timed.
    #[arg(long, default_value_t = 60.0)]
    pub duration_s: f64,
    /// Seconds of publishing before the window, not measured (every car gets a state first).
    #[arg(long, default_value_t = 5.0)]
    pub warmup_s: f64,
    /// Publishing connections.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Target of the issue: the feed's p99 at most this much above the baseline's p99.
const TARGET_P99_OVER_BASELINE_MS: u64 = 300;
/// Target of the issue: fleetd uses at most this many cores.
const TARGET_FLEETD_CORES: f64 = 1.0;
/// Live-feed connections opened at once (each receives a snapshot of the whole fleet).
const CONNECT_CONCURRENCY: usize = 8;
/// After the last publish, fleetd must have committed everything within this time.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);
/// Once everything is committed, the clients get this long to receive the rest; a client
/// still missing samples then has lost them (reported as `ws_missed_count`).
const DELIVERY_GRACE: Duration = Duration::from_secs(10);
/// Progress on stderr this often while publishing.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Wall-clock time in epoch milliseconds, the unit of the samples' `ts`.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The measuring window in epoch milliseconds, `[start, end)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    start: i64,
    end: i64,
}

impl Window {
    fn contains(&self, ts: i64) -> bool {
        (self.start..self.end).contains(&ts)
    }
}

pub(crate) async fn run(args: LiveArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(
        args.vehicles > 0 && args.clients > 0 && args.publishers > 0,
        "vehicles, clients and publishers must be positive"
    );
    anyhow::ensure!(
        args.interval_s > 0.0 && args.duration_s > 0.0 && args.warmup_s >= 0.0,
        "the interval and the duration must be positive, the warm-up not negative"
    );
    let broker = Broker::start(args.target.mqtt_url.as_ref().map(SecretUrl::expose))?;
    let db = BenchDb::create(args.target.database_url.expose()).await?;
    let result = measure(&args, &broker, &db).await;
    db.cleanup().await;
    result
}

/// CPU counters at one instant.
struct CpuMark {
    at: Instant,
    fleetd: Option<f64>,
    bench: Option<f64>,
    machine: Option<f64>,
}

impl CpuMark {
    fn take(fleetd: &Fleetd) -> Self {
        Self {
            at: Instant::now(),
            fleetd: fleetd.cpu_seconds(),
            bench: cpu_seconds_of("self"),
            machine: machine_busy_seconds(),
        }
    }

    /// Cores used between two marks: (fleetd, this bench, the whole machine).
    fn cores_since(&self, earlier: &Self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let wall = (self.at - earlier.at).as_secs_f64().max(1e-9);
        let rate = |a: Option<f64>, b: Option<f64>| Some((a? - b?) / wall);
        (rate(self.fleetd, earlier.fleetd), rate(self.bench, earlier.bench), rate(self.machine, earlier.machine))
    }
}

async fn measure(args: &LiveArgs, broker: &Broker, db: &BenchDb) -> anyhow::Result<Value> {
    let store = db.store().await?;
    progress(format!("registering {} vehicles", args.vehicles));
    let t = Instant::now();
    register_vehicles(&store, args.vehicles).await?;
    progress(format!("registered in {:.1} s", t.elapsed().as_secs_f64()));

    let client_id = format!("fleetd-bench-live-{}", std::process::id());
    let fleetd = Fleetd::spawn(&db.url, &broker.url, &client_id).await?;
    progress(format!("fleetd (pid {:?}) listening on {}", fleetd.pid(), fleetd.http));
    wait_for_subscription(&fleetd, broker, &store).await?;
    let rows0 = store.telemetry().count(None).await?;
    let committed0 = fleetd.samples_stored().await?;

    let token = fleetd.admin_token().await?;
    progress(format!(
        "connecting {} live-feed clients; fleetd RSS {:.1} MiB",
        args.clients,
        fleetd.rss_mib().unwrap_or(f64::NAN)
    ));
    let clients: Vec<FeedClient> = futures_util::stream::iter(0..args.clients)
        .map(|_| FeedClient::connect(fleetd.http, &token))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    progress(format!("clients connected; fleetd RSS {:.1} MiB", fleetd.rss_mib().unwrap_or(f64::NAN)));

    // The timeline: publishing starts shortly, the window opens after the warm-up.
    let (i0, w0) = (Instant::now() + Duration::from_millis(500), now_ms() + 500);
    let warmup = Duration::from_secs_f64(args.warmup_s);
    let duration = Duration::from_secs_f64(args.duration_s);
    let window = Window { start: w0 + warmup.as_millis() as i64, end: w0 + (warmup + duration).as_millis() as i64 };
    let (window_open, window_close) = (i0 + warmup, i0 + warmup + duration);

    let baseline = Arc::new(Mutex::new(Histogram::default()));
    let sub = {
        let baseline = baseline.clone();
        CountingSubscriber::start_with(
            &broker.host,
            broker.port,
            "fleet/v1/vehicles/+/telemetry",
            "bench-live-baseline",
            move |p| {
                let now = now_ms();
                if let Some(ts) = scan::integer_ts(&p.payload)
                    && window.contains(ts)
                {
                    baseline.lock().unwrap_or_else(|e| e.into_inner()).record((now - ts).max(0) as u64);
                }
            },
        )
        .await?
    };

    let received = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let readers: Vec<_> =
        clients.into_iter().map(|c| c.spawn(window, args.vehicles, received.clone(), stop.clone())).collect();

    let schedule = Schedule {
        vehicles: args.vehicles,
        interval: Duration::from_secs_f64(args.interval_s),
        start: i0,
        until: window_close,
    };
    let counter = Arc::new(Counter::default());
    progress(format!(
        "publishing: {} vehicles every {} s ({:.0} msg/s), {} s warm-up, {} s measured",
        args.vehicles,
        args.interval_s,
        args.vehicles as f64 / args.interval_s,
        args.warmup_s,
        args.duration_s
    ));
    let monitor = async {
        tokio::time::sleep_until(window_open).await;
        let start = CpuMark::take(&fleetd);
        progress("window open");
        loop {
            let now = Instant::now();
            if now >= window_close {
                break;
            }
            tokio::time::sleep_until((now + PROGRESS_EVERY).min(window_close)).await;
            let (cores, _, _) = CpuMark::take(&fleetd).cores_since(&start);
            progress(format!(
                "published {}, baseline timed {}, clients timed {}, fleetd {:.2} cores so far, RSS {:.1} MiB",
                counter.total(),
                baseline.lock().unwrap_or_else(|e| e.into_inner()).count(),
                received.load(Ordering::Relaxed),
                cores.unwrap_or(f64::NAN),
                fleetd.rss_mib().unwrap_or(f64::NAN)
            ));
        }
        let end = CpuMark::take(&fleetd);
        // fleetd's summaries cover about the last minute: the window, near enough.
        let metrics = fleetd.metrics().await.unwrap_or_default();
        (start, end, metrics)
    };
    let (published, (cpu_start, cpu_end, metrics)) =
        tokio::join!(publisher::run(broker, schedule, args.publishers, window, counter.clone()), monitor);
    let published: Published = published?;
    let (fleetd_cores, bench_cores, machine_cores) = cpu_end.cores_since(&cpu_start);
    progress(format!("published {} ({} in the window); draining", published.total, published.in_window));

    // Drain: fleetd commits everything, the baseline has everything, then the clients.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let committed = fleetd.samples_stored().await?.saturating_sub(committed0);
        if committed >= published.total && sub.count() >= published.total {
            break;
        }
        if Instant::now() >= deadline {
            progress(format!(
                "drain timed out: fleetd committed {committed}, baseline got {} of {}",
                sub.count(),
                published.total
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected_receipts = published.in_window * args.clients as u64;
    let grace = Instant::now() + DELIVERY_GRACE;
    while received.load(Ordering::Relaxed) < expected_receipts && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let mut reports: Vec<ClientReport> = Vec::with_capacity(readers.len());
    for r in readers {
        reports.push(r.await.context("a live-feed client panicked")?);
    }
    sub.stop();
    let baseline = std::mem::take(&mut *baseline.lock().unwrap_or_else(|e| e.into_inner()));

    let rows = store.telemetry().count(None).await? - rows0;
    let stored = u64::try_from(rows).unwrap_or(0);
    let lost = published.total.saturating_sub(stored);
    let rss = fleetd.peak_rss_mib();
    store.close().await;
    fleetd.stop().await?;
    forget_session(&broker.host, broker.port, &client_id).await?;

    let mut all = Histogram::default();
    let mut freshest = Histogram::default();
    let mut client_p99s = Vec::with_capacity(reports.len());
    for r in &reports {
        all.merge(&r.latency);
        freshest.merge(&r.freshest);
        client_p99s.extend(r.latency.quantile(0.99));
    }
    let worst_client_p99 = client_p99s.iter().copied().max();
    let median_client_p99 = median(&mut client_p99s);
    let ws_p99 = all.quantile(0.99);
    let base_p99 = baseline.quantile(0.99);
    let over = ws_p99.zip(base_p99).map(|(w, b)| w as i64 - b as i64);
    let missed = expected_receipts.saturating_sub(all.count());
    let target_met = over.is_some_and(|o| o <= TARGET_P99_OVER_BASELINE_MS as i64)
        && lost == 0
        && fleetd_cores.is_some_and(|c| c <= TARGET_FLEETD_CORES);

    let commit_ms = |q| summary_quantile(&metrics, "fleet_ingest_commit_seconds", q).map(|s| round_to(s * 1000.0, 1));
    let batch = |q| summary_quantile(&metrics, "fleet_ingest_batch_messages", q);

    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(format!("live.{k}"), v);
    };
    put("backend", json!(if db.url.starts_with("sqlite") { "sqlite" } else { "postgres" }));
    put("broker", json!(if args.target.mqtt_url.is_some() { "external" } else { "embedded" }));
    put("vehicles_count", json!(args.vehicles));
    put("clients_count", json!(args.clients));
    put("interval_s", json!(args.interval_s));
    put("warmup_s", json!(args.warmup_s));
    put("duration_s", json!(args.duration_s));
    put("published_count", json!(published.total));
    put("published_in_window_count", json!(published.in_window));
    put("ws_p50_ms", json!(all.quantile(0.5)));
    put("ws_p99_ms", json!(ws_p99));
    put("ws_max_ms", json!(all.max()));
    put("ws_client_p99_worst_ms", json!(worst_client_p99));
    put("ws_client_p99_median_ms", json!(median_client_p99));
    put("ws_freshest_p50_ms", json!(freshest.quantile(0.5)));
    put("ws_freshest_p99_ms", json!(freshest.quantile(0.99)));
    put("ws_timed_count", json!(all.count()));
    put("ws_missed_count", json!(missed));
    put("ws_resyncs_count", json!(reports.iter().map(|r| r.resyncs).sum::<u64>()));
    put("ws_disconnects_count", json!(reports.iter().filter(|r| r.closed_early).count()));
    put("ws_unreadable_count", json!(reports.iter().map(|r| r.unreadable).sum::<u64>()));
    put("baseline_p50_ms", json!(baseline.quantile(0.5)));
    put("baseline_p99_ms", json!(base_p99));
    put("baseline_max_ms", json!(baseline.max()));
    put("baseline_timed_count", json!(baseline.count()));
    put("p99_over_baseline_ms", json!(over));
    put("samples_stored_count", json!(stored));
    put("samples_lost_count", json!(lost));
    put("fleetd_cpu_cores", json!(fleetd_cores.map(|c| round_to(c, 3))));
    put("fleetd_peak_rss_mib", json!(rss.map(|r| round_to(r, 1))));
    put("fleetd_commit_p50_ms", json!(commit_ms("0.5")));
    put("fleetd_commit_p99_ms", json!(commit_ms("0.99")));
    put("fleetd_batch_p50_count", json!(batch("0.5")));
    put("bench_cpu_cores", json!(bench_cores.map(|c| round_to(c, 3))));
    put("machine_cpu_busy_cores", json!(machine_cores.map(|c| round_to(c, 3))));
    put("target_met", json!(target_met));
    progress(format!(
        "feed p50/p99/max {:?}/{:?}/{} ms, baseline {:?}/{:?}/{} ms, lost {lost}, fleetd {:.2} cores",
        all.quantile(0.5),
        ws_p99,
        all.max(),
        baseline.quantile(0.5),
        base_p99,
        baseline.max(),
        fleetd_cores.unwrap_or(f64::NAN)
    ));
    Ok(Value::Object(out))
}

/// Waits until fleetd's subscription is in place: a probe sample (an hour old, so outside
/// any window) must be stored. Until then the broker would not hand fleetd what we publish.
async fn wait_for_subscription(fleetd: &Fleetd, broker: &Broker, store: &fleet_storage::Store) -> anyhow::Result<()> {
    let vin = bench_vin(0);
    let ts = now_ms() - 3_600_000;
    let probe = Arc::new(vec![super::load::Message {
        topic: format!("fleet/v1/vehicles/{vin}/telemetry"),
        payload: format!("{{\"ts\":{ts},\"lat\":30.0,\"lon\":122.1}}").into_bytes(),
    }]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.telemetry().count(None).await? < 1 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "fleetd (pid {:?}) stored no probe sample within 30 s",
            fleetd.pid()
        );
        super::load::publish_all(&broker.host, broker.port, probe.clone(), 1, "bench-live-probe").await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
