//! `fleetd bench ingest`: how fast telemetry becomes durable, against how fast the same broker
//! moves the same messages to a plain subscriber.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use clap::Args;
use fleet_domain::{Sample, SampleSource, SecretUrl, Vin};
use fleet_gbt32960::Edition;
use fleet_sim::terminal;
use fleet_storage::Store;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::child::Fleetd;
use super::db::{BenchDb, register_vehicles};
use super::load::{Broker, CountingSubscriber, Message, forget_session, publish_all, publish_paced};
use super::{TargetArgs, bench_vin, progress};

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Vehicles publishing in the throughput runs.
    #[arg(long, default_value_t = 1000)]
    pub vehicles: usize,
    /// Messages per run (one sample each), per format.
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    /// Vehicles registered and reporting in the memory run (fleetd's peak RSS).
    #[arg(long, default_value_t = 10_000)]
    pub rss_vehicles: usize,
    /// Messages per vehicle in the memory run.
    #[arg(long, default_value_t = 10)]
    pub rss_messages_per_vehicle: usize,
    /// Seconds between two reports of one vehicle in the memory run.
    #[arg(long, default_value_t = 5.0)]
    pub rss_interval_s: f64,
    /// Publishing connections.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

fn bench_sample(vin: &Vin, i: usize, k: usize, base: DateTime<Utc>, source: SampleSource) -> Sample {
    let t = base + chrono::Duration::seconds(k as i64);
    let angle = (i as f64 * 0.37 + k as f64 * 0.01) % std::f64::consts::TAU;
    let mut s = Sample::at(vin.clone(), t, 30.0 + 0.02 * angle.sin(), 122.1 + 0.03 * angle.cos(), source);
    s.speed_kmh = Some(30.0 + (k % 40) as f64);
    s.soc_pct = Some(90.0 - (k % 50) as f64 * 0.5);
    s.odometer_km = Some(10_000.0 + k as f64 * 0.1);
    s.charging = Some(false);
    s.ignition = Some(true);
    s.battery_voltage_v = Some(380.0);
    s.battery_current_a = Some(25.0);
    s
}

fn json_payload(s: &Sample) -> Vec<u8> {
    let v: Value = json!({
        "ts": s.ts.to_rfc3339(), "lat": s.lat, "lon": s.lon, "speed_kmh": s.speed_kmh, "heading_deg": 90.0,
        "soc_pct": s.soc_pct, "odometer_km": s.odometer_km, "charging": s.charging, "ignition": s.ignition,
        "battery_voltage_v": s.battery_voltage_v, "battery_current_a": s.battery_current_a,
    });
    serde_json::to_vec(&v).expect("a JSON value serializes")
}

/// Builds `messages` messages spread round-robin over `vehicles` cars, starting at `base`.
pub(crate) fn build_messages(vehicles: usize, messages: usize, base: DateTime<Utc>, gbt: bool) -> Vec<Message> {
    (0..messages)
        .map(|n| {
            let (i, k) = (n % vehicles, n / vehicles);
            let vin = bench_vin(i);
            if gbt {
                let edition = if i % 2 == 0 { Edition::V2016 } else { Edition::V2025 };
                let source = if i % 2 == 0 { SampleSource::Gbt2016 } else { SampleSource::Gbt2025 };
                let s = bench_sample(&vin, i, k, base, source);
                Message {
                    topic: format!("fleet/v1/vehicles/{vin}/gbt32960"),
                    payload: terminal::encode_sample(edition, false, &s),
                }
            } else {
                let s = bench_sample(&vin, i, k, base, SampleSource::Json);
                Message { topic: format!("fleet/v1/vehicles/{vin}/telemetry"), payload: json_payload(&s) }
            }
        })
        .collect()
}

/// Messages per second over an interval.
fn rate(n: usize, from: Instant, to: Instant) -> f64 {
    n as f64 / (to - from).as_secs_f64().max(1e-9)
}

pub(crate) async fn run(args: IngestArgs) -> anyhow::Result<Value> {
    anyhow::ensure!(
        args.vehicles > 0 && args.messages > 0 && args.publishers > 0 && args.rss_interval_s > 0.0,
        "vehicles, messages, publishers and the report interval must be positive"
    );
    let broker = Broker::start(args.target.mqtt_url.as_ref().map(SecretUrl::expose))?;
    let db = BenchDb::create(args.target.database_url.expose()).await?;
    let result = measure(&args, &broker, &db).await;
    db.cleanup().await;
    result
}

/// How often fleetd's progress is read during a durable run: fine enough for the rate, rare
/// enough not to load fleetd (each read renders its metrics, histogram quantiles included).
const PROGRESS_POLL: Duration = Duration::from_millis(10);

async fn measure(args: &IngestArgs, broker: &Broker, db: &BenchDb) -> anyhow::Result<Value> {
    let store = db.store().await?;
    let registered = args.vehicles.max(args.rss_vehicles);
    progress(format!("registering {registered} vehicles"));
    register_vehicles(&store, registered).await?;
    // Distinct times per run so that every message is a new sample.
    let day =
        |d: i64| Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).single().expect("valid date") + chrono::Duration::days(d);
    let runs = [("json", false, day(0)), ("gbt32960", true, day(10))];

    // Baselines first, before fleetd has a session on the broker.
    let mut out = serde_json::Map::new();
    let mut baselines = Vec::new();
    for (name, gbt, base) in runs {
        let messages = Arc::new(build_messages(args.vehicles, args.messages, base - chrono::Duration::days(5), gbt));
        let filter = if gbt { "fleet/v1/vehicles/+/gbt32960" } else { "fleet/v1/vehicles/+/telemetry" };
        let sub = CountingSubscriber::start(&broker.host, broker.port, filter, "bench-baseline").await?;
        progress(format!("baseline {name}: publishing {} messages", messages.len()));
        let t0 = Instant::now();
        publish_all(&broker.host, broker.port, messages.clone(), args.publishers, "bench-baseline").await?;
        let t1 = sub.wait_for(messages.len() as u64, Duration::from_secs(600)).await?;
        sub.stop();
        let r = rate(messages.len(), t0, t1);
        progress(format!("baseline {name}: {r:.0} msg/s"));
        out.insert(format!("ingest.baseline_{name}_per_s"), json!(r.round()));
        baselines.push(r);
    }

    let client_id = format!("fleetd-bench-{}", std::process::id());
    let fleetd = Fleetd::spawn(&db.url, &broker.url, &client_id).await?;
    progress(format!("fleetd (pid {:?}) listening on {}", fleetd.pid(), fleetd.http));
    wait_until_subscribed(&store, broker, day(-20)).await?;

    for ((name, gbt, base), baseline) in runs.into_iter().zip(baselines) {
        let messages = Arc::new(build_messages(args.vehicles, args.messages, base, gbt));
        progress(format!("durable {name}: publishing {} messages", messages.len()));
        let run = durable_run(&fleetd, &store, broker, messages, args.publishers).await?;
        let r = run.per_s;
        progress(format!(
            "durable {name}: {r:.0} msg/s ({:.2}x baseline), fleetd CPU {:.2} cores",
            r / baseline,
            run.fleetd_cpu
        ));
        out.insert(format!("ingest.durable_{name}_per_s"), json!(r.round()));
        out.insert(format!("ingest.durable_{name}_ratio"), json!((r / baseline * 1000.0).round() / 1000.0));
        out.insert(format!("ingest.durable_{name}_fleetd_cpu_ratio"), json!((run.fleetd_cpu * 100.0).round() / 100.0));
        // Bounded by the broker's in-flight window for fleetd's session (deploy/mosquitto:
        // 10,000): the most fleetd holds in memory at once.
        out.insert(format!("ingest.durable_{name}_peak_in_hand"), json!(run.peak_in_hand));
    }

    let burst_rss = fleetd.peak_rss_mib().context("reading fleetd's peak RSS")?;
    progress(format!("fleetd peak RSS after the bursts {burst_rss:.1} MiB"));
    out.insert("ingest.burst_fleetd_peak_rss_mib".into(), json!((burst_rss * 10.0).round() / 10.0));
    store.close().await;
    fleetd.stop().await?;
    forget_session(&broker.host, broker.port, &client_id).await?;

    // Memory: a fresh fleetd while every registered car reports on its schedule (one sample
    // every `rss_interval_s`), as a fleet does.
    let rss_client_id = format!("{client_id}-rss");
    let fleetd = Fleetd::spawn(&db.url, &broker.url, &rss_client_id).await?;
    let store = db.store().await?;
    wait_until_subscribed(&store, broker, day(-21)).await?;
    let per = args.rss_messages_per_vehicle;
    let messages = Arc::new(build_messages(args.rss_vehicles, args.rss_vehicles * per, day(20), false));
    let expected = store.telemetry().count(None).await? + messages.len() as i64;
    let rate = args.rss_vehicles as f64 / args.rss_interval_s;
    progress(format!(
        "memory: {} vehicles reporting every {} s, {} messages",
        args.rss_vehicles,
        args.rss_interval_s,
        messages.len()
    ));
    publish_paced(&broker.host, broker.port, messages.clone(), args.publishers, "bench-rss", rate).await?;
    let deadline = Instant::now() + Duration::from_secs(900);
    while store.telemetry().count(None).await? < expected {
        anyhow::ensure!(Instant::now() < deadline, "memory run: samples not all stored after 15 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss = fleetd.peak_rss_mib().context("reading fleetd's peak RSS")?;
    progress(format!("fleetd peak RSS with {} vehicles {rss:.1} MiB", args.rss_vehicles));
    out.insert("ingest.fleetd_peak_rss_mib".into(), json!((rss * 10.0).round() / 10.0));
    out.insert("ingest.rss_vehicles".into(), json!(args.rss_vehicles));
    out.insert("ingest.vehicles".into(), json!(args.vehicles));
    out.insert("ingest.messages".into(), json!(args.messages));
    out.insert("ingest.backend".into(), json!(if db.url.starts_with("sqlite") { "sqlite" } else { "postgres" }));
    out.insert("ingest.broker".into(), json!(if args.target.mqtt_url.is_some() { "external" } else { "embedded" }));
    store.close().await;
    fleetd.stop().await?;
    forget_session(&broker.host, broker.port, &rss_client_id).await?;
    Ok(Value::Object(out))
}

/// What one durable run over MQTT measured.
pub(crate) struct DurableRun {
    /// Samples made durable per second, from the first publish to the last commit.
    pub per_s: f64,
    /// fleetd's CPU over the run, in cores.
    pub fleetd_cpu: f64,
    /// The most messages fleetd held at once (received, not yet committed).
    pub peak_in_hand: u64,
}

/// Publishes `messages` (each a new sample of a registered car) to the broker over
/// `publishers` connections and watches `fleetd` commit them all; then checks by counting
/// the rows that every one is stored exactly once.
pub(crate) async fn durable_run(
    fleetd: &Fleetd,
    store: &Store,
    broker: &Broker,
    messages: Arc<Vec<Message>>,
    publishers: usize,
) -> anyhow::Result<DurableRun> {
    let expected = store.telemetry().count(None).await? + messages.len() as i64;
    let committed0 = fleetd.samples_stored().await?;
    let cpu0 = fleetd.cpu_seconds();
    let t0 = Instant::now();
    // Watch fleetd's own count of committed samples (cheap) while publishing and after,
    // then verify by counting the rows: a COUNT(*) every few milliseconds would load the
    // database we are measuring. The same reads give the most messages fleetd held.
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(900);
        let mut peak_in_hand = 0;
        loop {
            let (committed, in_hand) = fleetd.ingest_progress().await?;
            let committed = committed - committed0;
            peak_in_hand = peak_in_hand.max(in_hand);
            if committed >= messages.len() as u64 {
                return anyhow::Ok((Instant::now(), peak_in_hand));
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {committed} of {} samples committed after 15 minutes",
                messages.len()
            );
            tokio::time::sleep(PROGRESS_POLL).await;
        }
    };
    let ((), (t1, peak_in_hand)) =
        tokio::try_join!(publish_all(&broker.host, broker.port, messages.clone(), publishers, "bench-durable"), watch)?;
    let stored = store.telemetry().count(None).await?;
    anyhow::ensure!(stored == expected, "{stored} rows stored, expected exactly {expected}");
    let fleetd_cpu = match (cpu0, fleetd.cpu_seconds()) {
        (Some(a), Some(b)) => (b - a) / (t1 - t0).as_secs_f64(),
        _ => f64::NAN,
    };
    Ok(DurableRun { per_s: rate(messages.len(), t0, t1), fleetd_cpu, peak_in_hand })
}

/// Publishes a probe sample stamped `at` until fleetd has stored it: its subscription is then
/// in place. A broker drops what is published to a topic nobody has subscribed to yet, and a
/// fresh client id has no session to queue it in (a memory run once ended 2 messages short,
/// most likely this way).
pub(crate) async fn wait_until_subscribed(store: &Store, broker: &Broker, at: DateTime<Utc>) -> anyhow::Result<()> {
    let probe = Arc::new(vec![Message {
        topic: format!("fleet/v1/vehicles/{}/telemetry", bench_vin(0)),
        payload: json_payload(&bench_sample(&bench_vin(0), 0, 0, at, SampleSource::Json)),
    }]);
    let before = store.telemetry().count(None).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.telemetry().count(None).await? <= before {
        publish_all(&broker.host, broker.port, probe.clone(), 1, "bench-probe").await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        anyhow::ensure!(Instant::now() < deadline, "fleetd stored nothing within 30 s");
    }
    Ok(())
}
