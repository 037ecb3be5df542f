//! `fleetd bench gateway`: terminals over TCP (GB/T 32960.3 and JT/T 808, each on its own
//! connection) against fleetd's gateways, against the durable rate of the same fleetd over
//! MQTT (JSON) in the same run.
//!
//! One `fleetd run` child with both gateways on loopback. First the baseline: `bench
//! ingest`'s durable JSON run over the broker. Then the most the gateways take: every
//! terminal reports far more often than fleetd can store (10,000 at 0.1 s offer 100,000
//! reports a second), and once all are logged in fleetd's committed samples are counted over
//! a window; fleetd's RSS is read throughout while all are logged in. Then reply latency at
//! half that rate: fresh terminals, one report each every `terminals / (rate / 2)` seconds,
//! their latencies (report written → answer read) over a window after a warm-up. After each
//! phase the rows stored are checked against fleetd's count and the terminals'.
//!
//! Reports are stamped to the second, so each report moves its car's clock at least a
//! second; the phases' clocks start days apart in the past, so no two phases (and not the
//! baseline) stamp a car's samples alike.

mod phase;
mod terminals;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use clap::Args;
use fleet_domain::SecretUrl;
use serde_json::{Map, Value, json};

use self::phase::{PhasePlan, PhaseResult};
use self::terminals::{BATTERY_KWH, CONSUMPTION_KWH_PER_100KM, Fleet, phone};
use super::child::Fleetd;
use super::db::{BenchCar, BenchDb, register_cars};
use super::ingest::{build_messages, durable_run, wait_until_subscribed};
use super::load::{Broker, forget_session};
use super::{TargetArgs, progress, round_to};

#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Simulated terminals, each on a TCP connection of its own. The bench holds one socket
    /// per terminal and fleetd another: the open-file limit (`ulimit -n`) must leave room.
    #[arg(long, default_value_t = 10_000)]
    pub terminals: usize,
    /// Share of the terminals speaking JT/T 808 (half of them with 2019 headers, the rest
    /// 2013); the others speak GB/T 32960.3 (half 2016, half 2025 edition).
    #[arg(long, default_value_t = 0.5)]
    pub jt808_share: f64,
    /// Seconds between two reports of one terminal while the most the gateways take is
    /// measured: more than fleetd can store (10,000 terminals at 0.1 s offer 100,000 a second).
    #[arg(long, default_value_t = 0.1)]
    pub interval_s: f64,
    /// Seconds over which the most the gateways take is measured.
    #[arg(long, default_value_t = 30.0)]
    pub window_s: f64,
    /// Seconds over which reply latencies are measured at half that rate.
    #[arg(long, default_value_t = 30.0)]
    pub half_rate_s: f64,
    /// Seconds between every terminal being logged in and a phase's measurement.
    #[arg(long, default_value_t = 5.0)]
    pub warmup_s: f64,
    /// Longest wait for every terminal to log in.
    #[arg(long, default_value_t = 120.0)]
    pub connect_timeout_s: f64,
    /// Cars publishing in the baseline (the durable JSON run over MQTT, as `bench ingest`'s).
    #[arg(long, default_value_t = 1000)]
    pub baseline_vehicles: usize,
    /// Messages of the baseline (one sample each).
    #[arg(long, default_value_t = 200_000)]
    pub baseline_messages: usize,
    /// Publishing connections of the baseline.
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Open files the bench needs besides its terminals' sockets (the broker and database
/// connections, the runtime, fleetd's pipes), with room to spare.
const SPARE_FILES: u64 = 256;

/// The gateways count as saturated (the rate measured is the most they take, not what the
/// terminals offered) when fleetd stores less than this share of the offer.
const SATURATED_BELOW: f64 = 0.95;

pub(crate) async fn run(args: GatewayArgs) -> anyhow::Result<Value> {
    let positive = [args.interval_s, args.window_s, args.half_rate_s, args.connect_timeout_s];
    anyhow::ensure!(
        args.terminals > 0 && args.baseline_vehicles > 0 && args.baseline_messages > 0 && args.publishers > 0,
        "terminals, baseline vehicles, baseline messages and publishers must be positive"
    );
    anyhow::ensure!(
        positive.iter().all(|s| s.is_finite() && *s > 0.0) && args.warmup_s.is_finite() && args.warmup_s >= 0.0,
        "the interval, the windows and the connection timeout must be positive, the warm-up not negative"
    );
    anyhow::ensure!((0.0..=1.0).contains(&args.jt808_share), "the JT/T 808 share must be between 0 and 1");
    check_open_files(args.terminals as u64 + SPARE_FILES)?;
    let broker = Broker::start(args.target.mqtt_url.as_ref().map(SecretUrl::expose))?;
    let db = BenchDb::create(args.target.database_url.expose()).await?;
    let result = measure(&args, &broker, &db).await;
    db.cleanup().await;
    result
}

/// Fails early, saying what to do, when this process may not open `needed` files (fleetd,
/// its child, inherits the same limit and needs about as many).
fn check_open_files(needed: u64) -> anyhow::Result<()> {
    let Some(limit) = open_files_limit() else {
        progress("cannot read the open-file limit; going on");
        return Ok(());
    };
    anyhow::ensure!(
        limit >= needed,
        "the open-file limit is {limit}, the bench needs {needed} (one socket per terminal, and as many in \
         fleetd): raise it (`ulimit -n {needed}`) or run fewer terminals"
    );
    Ok(())
}

/// The soft limit of open files of this process (`Max open files` in /proc/self/limits).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.trim_start_matches("Max open files").split_whitespace().next()?;
    if soft == "unlimited" { Some(u64::MAX) } else { soft.parse().ok() }
}

/// A loopback address with a port free now, for one of fleetd's gateways.
fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

async fn measure(args: &GatewayArgs, broker: &Broker, db: &BenchDb) -> anyhow::Result<Value> {
    let store = db.store().await?;
    let cars = args.terminals.max(args.baseline_vehicles);
    progress(format!("registering {cars} vehicles, each with a terminal phone"));
    register_cars(&store, cars, |i| BenchCar {
        model: "Bench EV",
        battery_kwh: BATTERY_KWH,
        consumption_kwh_per_100km: CONSUMPTION_KWH_PER_100KM,
        unit_id: None,
        terminal_phone: Some(phone(i)),
    })
    .await?;
    let jt808 = ((args.terminals as f64 * args.jt808_share).round() as usize).min(args.terminals);
    let fleet = Fleet {
        gbt32960: args.terminals - jt808,
        terminals: args.terminals,
        gbt32960_addr: free_loopback_port()?,
        jt808_addr: free_loopback_port()?,
    };
    let client_id = format!("fleetd-bench-gateway-{}", std::process::id());
    let env =
        [("FLEET_GBT32960_ADDR", fleet.gbt32960_addr.to_string()), ("FLEET_JT808_ADDR", fleet.jt808_addr.to_string())];
    let fleetd = Fleetd::spawn_with(&db.url, &broker.url, &client_id, &env).await?;
    progress(format!(
        "fleetd (pid {:?}) listening on {}, gbt32960 on {}, jt808 on {}",
        fleetd.pid(),
        fleetd.http,
        fleet.gbt32960_addr,
        fleet.jt808_addr
    ));
    let mut out = Map::new();
    phases(args, &fleet, &fleetd, &store, broker, &mut out).await?;
    out.insert("gateway.backend".into(), json!(if db.url.starts_with("sqlite") { "sqlite" } else { "postgres" }));
    out.insert("gateway.broker".into(), json!(if args.target.mqtt_url.is_some() { "external" } else { "embedded" }));
    store.close().await;
    fleetd.stop().await?;
    forget_session(&broker.host, broker.port, &client_id).await?;
    Ok(Value::Object(out))
}

/// The baseline and the two gateway phases, their figures into `out`.
async fn phases(
    args: &GatewayArgs,
    fleet: &Fleet,
    fleetd: &Fleetd,
    store: &fleet_storage::Store,
    broker: &Broker,
    out: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    let now = Utc::now().duration_trunc(TimeDelta::seconds(1)).context("truncating the time")?;
    let days_ago = |d: i64| -> DateTime<Utc> { now - TimeDelta::days(d) };

    wait_until_subscribed(store, broker, days_ago(30)).await?;
    let messages = Arc::new(build_messages(args.baseline_vehicles, args.baseline_messages, days_ago(20), false));
    progress(format!("baseline: durable JSON over MQTT, publishing {} messages", messages.len()));
    let baseline = durable_run(fleetd, store, broker, messages, args.publishers).await?;
    progress(format!("baseline: {:.0} samples/s durable, fleetd CPU {:.2} cores", baseline.per_s, baseline.fleetd_cpu));
    out.insert("gateway.baseline_mqtt_json_per_s".into(), json!(baseline.per_s.round()));
    out.insert("gateway.baseline_fleetd_cpu_ratio".into(), json!(round_to(baseline.fleetd_cpu, 2)));
    if let Some(peak) = fleetd.peak_rss_mib() {
        out.insert("gateway.baseline_fleetd_peak_rss_mib".into(), json!(round_to(peak, 1)));
    }
    let peak_reset = fleetd.reset_peak_rss();
    if !peak_reset {
        progress("cannot reset fleetd's peak RSS: the gateways' peak includes the baseline's");
    }

    let secs = Duration::from_secs_f64;
    let most = phase::run(
        &PhasePlan {
            name: "most",
            fleet,
            interval: secs(args.interval_s),
            clock_start: days_ago(10),
            connect_timeout: secs(args.connect_timeout_s),
            warmup: secs(args.warmup_s),
            window: secs(args.window_s),
        },
        fleetd,
        store,
    )
    .await?;
    let ratio = most.durable_per_s / baseline.per_s;
    progress(format!(
        "most: {:.0} samples/s durable through the gateways ({ratio:.2}x the MQTT baseline), fleetd CPU {:.2} cores, bench {:.2}",
        most.durable_per_s, most.fleetd_cpu, most.bench_cpu
    ));
    anyhow::ensure!(most.durable_per_s > 0.0, "nothing was stored through the gateways in the window");
    let offered = fleet.terminals as f64 / args.interval_s;
    // Terminals offering no more than fleetd stores measure the offer, not the gateways.
    let saturated = most.durable_per_s < SATURATED_BELOW * offered;
    if !saturated {
        progress(format!(
            "most: fleetd stored nearly all the {offered:.0} reports/s offered: the gateways take at least this much; \
             a shorter --interval-s offers more"
        ));
    }

    let half_rate = most.durable_per_s / 2.0;
    let half_interval = args.terminals as f64 / half_rate;
    let half = phase::run(
        &PhasePlan {
            name: "half rate",
            fleet,
            interval: secs(half_interval),
            clock_start: days_ago(5),
            connect_timeout: secs(args.connect_timeout_s),
            warmup: secs(args.warmup_s),
            window: secs(args.half_rate_s),
        },
        fleetd,
        store,
    )
    .await?;
    let l = half.latency;
    progress(format!(
        "half rate: {:.0} samples/s durable (target {half_rate:.0}); reply p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} replies",
        half.durable_per_s,
        ms(l.p50),
        ms(l.p99),
        ms(l.max),
        l.count
    ));
    let peak = fleetd.peak_rss_mib().context("reading fleetd's peak RSS")?;
    let rss_connected = most.rss_connected_mib.max(half.rss_connected_mib);
    progress(format!("fleetd RSS with every terminal connected at most {rss_connected:.1} MiB, peak {peak:.1} MiB"));

    let f = |v: f64, d: i32| json!(round_to(v, d));
    out.insert("gateway.terminals".into(), json!(fleet.terminals));
    out.insert("gateway.gbt32960_terminals".into(), json!(fleet.gbt32960));
    out.insert("gateway.jt808_terminals".into(), json!(fleet.jt808()));
    out.insert("gateway.interval_s".into(), json!(args.interval_s));
    out.insert("gateway.offered_per_s".into(), f(offered, 0));
    out.insert("gateway.saturated".into(), json!(saturated));
    out.insert("gateway.durable_per_s".into(), f(most.durable_per_s, 0));
    out.insert("gateway.acked_per_s".into(), f(most.acked_per_s, 0));
    out.insert("gateway.durable_ratio".into(), f(ratio, 3));
    out.insert("gateway.fleetd_cpu_ratio".into(), f(most.fleetd_cpu, 2));
    out.insert("gateway.bench_cpu_ratio".into(), f(most.bench_cpu, 2));
    out.insert("gateway.machine_busy_ratio".into(), f(most.machine_busy, 2));
    out.insert("gateway.connect_all_s".into(), f(most.connect_all.as_secs_f64(), 1));
    out.insert("gateway.most_reply_p50_ms".into(), f(ms(most.latency.p50), 1));
    out.insert("gateway.most_reply_p99_ms".into(), f(ms(most.latency.p99), 1));
    out.insert("gateway.fleetd_rss_connected_mib".into(), f(rss_connected, 1));
    out.insert("gateway.most_fleetd_rss_connected_mib".into(), f(most.rss_connected_mib, 1));
    out.insert("gateway.half_rate_fleetd_rss_connected_mib".into(), f(half.rss_connected_mib, 1));
    out.insert("gateway.fleetd_peak_rss_mib".into(), f(peak, 1));
    out.insert("gateway.fleetd_peak_rss_includes_baseline".into(), json!(!peak_reset));
    out.insert("gateway.half_rate_per_s".into(), f(half_rate, 0));
    out.insert("gateway.half_rate_interval_s".into(), f(half_interval, 3));
    out.insert("gateway.half_rate_durable_per_s".into(), f(half.durable_per_s, 0));
    out.insert("gateway.half_rate_fleetd_cpu_ratio".into(), f(half.fleetd_cpu, 2));
    out.insert("gateway.reply_p50_ms".into(), f(ms(l.p50), 1));
    out.insert("gateway.reply_p90_ms".into(), f(ms(l.p90), 1));
    out.insert("gateway.reply_p99_ms".into(), f(ms(l.p99), 1));
    out.insert("gateway.reply_max_ms".into(), f(ms(l.max), 1));
    out.insert("gateway.replies".into(), json!(l.count));
    insert_counts(out, &most, &half);
    Ok(())
}

/// What went wrong, if anything, over both phases: the terminals' counts and fleetd's.
fn insert_counts(out: &mut Map<String, Value>, most: &PhaseResult, half: &PhaseResult) {
    let (a, b) = (&most.counts, &half.counts);
    let sum = |x: u64, y: u64| json!(x + y);
    out.insert("gateway.reports_sent".into(), sum(a.sent, b.sent));
    out.insert("gateway.reports_acked".into(), sum(a.acked, b.acked));
    out.insert("gateway.reports_resent".into(), sum(a.resent, b.resent));
    out.insert("gateway.reports_refused".into(), sum(a.refused, b.refused));
    out.insert("gateway.reports_dropped".into(), sum(a.dropped, b.dropped));
    out.insert("gateway.reports_given_up".into(), sum(a.given_up, b.given_up));
    out.insert("gateway.reports_unanswered_at_stop".into(), sum(a.abandoned, b.abandoned));
    out.insert("gateway.reconnects".into(), sum(a.reconnects, b.reconnects));
    out.insert("gateway.window_reconnects".into(), sum(most.window_reconnects, half.window_reconnects));
    out.insert("gateway.connect_failures".into(), sum(a.connect_failures, b.connect_failures));
    out.insert("gateway.logins_refused".into(), sum(a.login_refused, b.login_refused));
    out.insert("gateway.rows_stored".into(), json!(most.rows + half.rows));
    out.insert("gateway.duplicates".into(), sum(most.duplicates, half.duplicates));
    out.insert("gateway.dead_letters".into(), sum(most.dead_letters, half.dead_letters));
    out.insert("gateway.frames_rejected".into(), sum(most.rejected, half.rejected));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_of_this_process_is_read() {
        let limit = open_files_limit().expect("Linux has /proc/self/limits");
        assert!(limit > 0);
    }
}
