//! One phase of `bench gateway`: every terminal connects and reports at one interval; once
//! all are logged in and a warm-up has passed, a window is measured (fleetd's committed
//! samples, the terminals' acknowledgements and reply latencies, CPU, fleetd's RSS); then
//! the terminals stop, fleetd settles, and the rows stored are checked against fleetd's own
//! count and the terminals'.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use fleet_sim::tcp::{LatencySummary, TcpCounts};
use fleet_storage::Store;
use tokio::time::Instant;

use super::super::child::{self, Fleetd};
use super::super::progress;
use super::terminals::{Fleet, Terminals};

/// How often fleetd's RSS is read while every terminal is connected.
const RSS_EVERY: Duration = Duration::from_millis(500);
/// How often progress is printed during a window.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Longest wait, after the terminals stopped, for fleetd to commit what it still holds.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// What a phase is.
pub(super) struct PhasePlan<'a> {
    /// For the progress lines.
    pub name: &'a str,
    pub fleet: &'a Fleet,
    /// Between two reports of one terminal.
    pub interval: Duration,
    /// Where the cars' clocks start; each report moves a car's clock a step (at least a
    /// second, as reports are stamped to the second).
    pub clock_start: DateTime<Utc>,
    pub connect_timeout: Duration,
    pub warmup: Duration,
    pub window: Duration,
}

/// What a phase measured.
pub(super) struct PhaseResult {
    /// How long it took every terminal to log in.
    pub connect_all: Duration,
    /// Samples fleetd committed per second over the window.
    pub durable_per_s: f64,
    /// Samples the terminals saw acknowledged per second over the window.
    pub acked_per_s: f64,
    /// CPU over the window, in cores: fleetd, the bench (the terminals), the whole machine.
    pub fleetd_cpu: f64,
    pub bench_cpu: f64,
    pub machine_busy: f64,
    /// Reply latencies of the window.
    pub latency: LatencySummary,
    /// Reconnections during the window (0 when every connection held).
    pub window_reconnects: u64,
    /// The largest RSS of fleetd read while every terminal was logged in, in MiB.
    pub rss_connected_mib: f64,
    /// The terminals' counters over the whole phase.
    pub counts: TcpCounts,
    /// Rows the phase added to the store.
    pub rows: i64,
    /// fleetd's counters over the whole phase: samples it found stored already, dead letters,
    /// frames its gateways refused.
    pub duplicates: u64,
    pub dead_letters: u64,
    pub rejected: u64,
}

/// fleetd's ingest counters from one read of `/metrics`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Totals {
    pub stored: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    pub rejected: u64,
    pub in_hand: u64,
    /// What fleetd's allocator says the program holds, and keeps in RAM (NaN when it does not
    /// publish them): tells live data from pages the allocator has not given back yet.
    pub heap_allocated_mib: f64,
    pub heap_resident_mib: f64,
}

impl Totals {
    pub(super) async fn read(fleetd: &Fleetd) -> anyhow::Result<Self> {
        let body = fleetd.metrics().await?;
        let sum = |name: &str| -> anyhow::Result<u64> { Ok(child::metric_sum(&body, name)? as u64) };
        let mib = |name: &str| match child::metric_value(&body, name) {
            Ok(Some(b)) => b / (1024.0 * 1024.0),
            _ => f64::NAN,
        };
        Ok(Self {
            stored: sum("fleet_ingest_samples_stored_total")?,
            duplicates: sum("fleet_ingest_samples_duplicate_total")?,
            dead_letters: sum("fleet_ingest_dead_letters_total")?,
            rejected: sum("fleet_gateway_rejected_total")?,
            in_hand: sum("fleet_ingest_messages_in_hand")?,
            heap_allocated_mib: mib("fleet_memory_heap_allocated_bytes"),
            heap_resident_mib: mib("fleet_memory_heap_resident_bytes"),
        })
    }
}

/// CPU times at one moment: fleetd's, the bench's, the machine's busy time.
struct Cpu {
    fleetd: Option<f64>,
    bench: Option<f64>,
    machine: Option<f64>,
}

impl Cpu {
    fn now(fleetd: &Fleetd) -> Self {
        Self {
            fleetd: fleetd.cpu_seconds(),
            bench: child::cpu_seconds_of("self"),
            machine: child::machine_busy_seconds(),
        }
    }

    /// Cores used on average from `self` to `later` over `secs`.
    fn cores(&self, later: &Self, secs: f64) -> (f64, f64, f64) {
        let per = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (b - a) / secs,
            _ => f64::NAN,
        };
        (per(self.fleetd, later.fleetd), per(self.bench, later.bench), per(self.machine, later.machine))
    }
}

/// Runs one phase. See the module documentation.
pub(super) async fn run(plan: &PhasePlan<'_>, fleetd: &Fleetd, store: &Store) -> anyhow::Result<PhaseResult> {
    let name = plan.name;
    let rows0 = store.telemetry().count(None).await?;
    let totals0 = Totals::read(fleetd).await?;
    let step = plan.interval.max(Duration::from_secs(1));
    progress(format!(
        "{name}: {} terminals reporting every {:.3} s ({:.0} reports/s offered)",
        plan.fleet.terminals,
        plan.interval.as_secs_f64(),
        plan.fleet.terminals as f64 / plan.interval.as_secs_f64()
    ));
    let mut terminals = Terminals::start(plan.fleet, plan.interval, step, plan.clock_start);
    let stats = Arc::clone(&terminals.stats);
    let measured = measure(plan, fleetd, &mut terminals).await;
    // Stopped whatever happened, so that no terminal outlives its phase.
    let stopped = terminals.stop().await;
    let (connect_all, window) = measured?;
    stopped?;
    let counts = stats.counts();
    let totals = settle(fleetd).await.with_context(|| format!("{name}: after the terminals stopped"))?;
    let rows = store.telemetry().count(None).await? - rows0;
    let committed = totals.stored - totals0.stored;
    progress(format!(
        "{name}: {rows} rows stored; terminals sent {} (again {}), acknowledged {}, refused {}, dropped {}, gave up {}, left unanswered {}; {} reconnections",
        counts.sent,
        counts.resent,
        counts.acked,
        counts.refused,
        counts.dropped,
        counts.given_up,
        counts.abandoned,
        counts.reconnects
    ));
    anyhow::ensure!(
        u64::try_from(rows).ok() == Some(committed),
        "{name}: {rows} rows stored but fleetd counted {committed} committed"
    );
    // Each answered sample is stored; a sample answered twice was sent again at least once.
    let answered_at_least = counts.acked.saturating_sub(counts.resent);
    anyhow::ensure!(
        rows as u64 >= answered_at_least,
        "{name}: lost samples: {rows} rows stored, but at least {answered_at_least} samples were acknowledged"
    );
    anyhow::ensure!(
        rows as u64 <= counts.sent,
        "{name}: {rows} rows stored, more than the {} samples the terminals sent",
        counts.sent
    );
    Ok(PhaseResult {
        connect_all,
        durable_per_s: window.durable_per_s,
        acked_per_s: window.acked_per_s,
        fleetd_cpu: window.cpu.0,
        bench_cpu: window.cpu.1,
        machine_busy: window.cpu.2,
        latency: window.latency,
        window_reconnects: window.reconnects,
        rss_connected_mib: window.rss_connected_mib,
        counts,
        rows,
        duplicates: totals.duplicates - totals0.duplicates,
        dead_letters: totals.dead_letters - totals0.dead_letters,
        rejected: totals.rejected - totals0.rejected,
    })
}

/// What the window saw.
struct Window {
    durable_per_s: f64,
    acked_per_s: f64,
    cpu: (f64, f64, f64),
    latency: LatencySummary,
    reconnects: u64,
    rss_connected_mib: f64,
}

/// Waits for every terminal, warms up and measures the window.
async fn measure(
    plan: &PhasePlan<'_>,
    fleetd: &Fleetd,
    terminals: &mut Terminals,
) -> anyhow::Result<(Duration, Window)> {
    let name = plan.name;
    let connect_all = terminals.wait_connected(plan.connect_timeout).await?;
    progress(format!(
        "{name}: all {} terminals logged in after {:.1} s; fleetd RSS {:.1} MiB",
        plan.fleet.terminals,
        connect_all.as_secs_f64(),
        fleetd.rss_mib().unwrap_or(f64::NAN)
    ));
    let mut rss_connected_mib = 0.0f64;
    watch(fleetd, terminals, plan.warmup, &mut rss_connected_mib).await;

    terminals.stats.reset_latencies();
    let c0 = terminals.stats.counts();
    let stored0 = Totals::read(fleetd).await?.stored;
    let inside0 = ReportTime::read(fleetd).await;
    let cpu0 = Cpu::now(fleetd);
    let t0 = Instant::now();
    let end = t0 + plan.window;
    let mut last = (t0, stored0);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        watch(fleetd, terminals, (last.0 + PROGRESS_EVERY).min(end) - now, &mut rss_connected_mib).await;
        let now = Instant::now();
        if now < end {
            let totals = Totals::read(fleetd).await?;
            let stored = totals.stored;
            let rate = (stored - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
            progress(format!(
                "{name}: {:.0} s, {rate:.0} samples/s committed, {} logged in, {} in hand, fleetd RSS {:.1} MiB \
                 (heap: {:.1} MiB allocated, {:.1} MiB resident)",
                (now - t0).as_secs_f64(),
                terminals.stats.counts().connected,
                totals.in_hand,
                fleetd.rss_mib().unwrap_or(f64::NAN),
                totals.heap_allocated_mib,
                totals.heap_resident_mib,
            ));
            last = (now, stored);
        }
    }
    let stored1 = Totals::read(fleetd).await?.stored;
    let t1 = Instant::now();
    let cpu1 = Cpu::now(fleetd);
    let c1 = terminals.stats.counts();
    let latency = terminals.stats.latencies();
    let inside = ReportTime::read(fleetd).await.mean_ms_since(&inside0);
    progress(format!(
        "{name}: inside fleetd over the window, a report until its answer is due: mean {inside:.1} ms; {}",
        pipeline_quantiles(fleetd).await
    ));
    let secs = (t1 - t0).as_secs_f64();
    let window = Window {
        durable_per_s: (stored1 - stored0) as f64 / secs,
        acked_per_s: (c1.acked - c0.acked) as f64 / secs,
        cpu: cpu0.cores(&cpu1, secs),
        latency,
        reconnects: c1.reconnects - c0.reconnects,
        rss_connected_mib,
    };
    Ok((connect_all, window))
}

/// Lets `span` pass, reading fleetd's RSS every [`RSS_EVERY`] while every terminal is
/// logged in and keeping the largest in `rss_max`.
async fn watch(fleetd: &Fleetd, terminals: &Terminals, span: Duration, rss_max: &mut f64) {
    let end = Instant::now() + span;
    loop {
        if terminals.all_connected()
            && let Some(rss) = fleetd.rss_mib()
        {
            *rss_max = rss_max.max(rss);
        }
        let now = Instant::now();
        if now >= end {
            return;
        }
        tokio::time::sleep((end - now).min(RSS_EVERY)).await;
    }
}

/// Waits until fleetd holds nothing and has committed nothing more for a second; gives its
/// counters then.
async fn settle(fleetd: &Fleetd) -> anyhow::Result<Totals> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last: Option<u64> = None;
    loop {
        let totals = Totals::read(fleetd).await?;
        if totals.in_hand == 0 && last == Some(totals.stored) {
            return Ok(totals);
        }
        last = Some(totals.stored);
        anyhow::ensure!(
            Instant::now() < deadline,
            "fleetd still held {} messages after {SETTLE_TIMEOUT:?}",
            totals.in_hand
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// fleetd's own account of where a report's time goes, from the summaries on `/metrics`
/// (their recent window): batch sizes, commit times, state writes.
async fn pipeline_quantiles(fleetd: &Fleetd) -> String {
    let Ok(body) = fleetd.metrics().await else { return "fleetd's /metrics unreadable".into() };
    let shown = |v: Option<f64>, scale: f64| v.map_or_else(|| "-".to_owned(), |v| format!("{:.0}", v * scale));
    let q = |name: &str, quantile: &str, scale: f64| shown(child::summary_quantile(&body, name, quantile), scale);
    // A report's time inside fleetd: from its frame taken off the connection to its answer due.
    let report = |listener: &str, quantile: &str| {
        let label = format!("listener=\"{listener}\"");
        shown(child::summary_quantile_with(&body, "fleet_gateway_report_seconds", &[&label], quantile), 1e3)
    };
    format!(
        "inside fleetd, a report until its answer is due: GB/T 32960 p50 {} / p99 {} ms, JT/T 808 p50 {} / p99 {} ms; \
         batches p50 {} / p99 {} messages; commits p50 {} / p99 {} / max {} ms; state writes p50 {} / p99 {} ms",
        report("gbt32960", "0.5"),
        report("gbt32960", "0.99"),
        report("jt808", "0.5"),
        report("jt808", "0.99"),
        q("fleet_ingest_batch_messages", "0.5", 1.0),
        q("fleet_ingest_batch_messages", "0.99", 1.0),
        q("fleet_ingest_commit_seconds", "0.5", 1e3),
        q("fleet_ingest_commit_seconds", "0.99", 1e3),
        q("fleet_ingest_commit_seconds", "1", 1e3),
        q("fleet_ingest_state_write_seconds", "0.5", 1e3),
        q("fleet_ingest_state_write_seconds", "0.99", 1e3),
    )
}

/// fleetd's running total of the time reports spent inside it (frame taken off the
/// connection to answer due) and their count, both gateways: the mean over a window comes from
/// two readings, where the summaries' quantiles on `/metrics` cover their own recent minute.
struct ReportTime {
    seconds: f64,
    count: f64,
}

impl ReportTime {
    async fn read(fleetd: &Fleetd) -> Self {
        let body = fleetd.metrics().await.unwrap_or_default();
        let sum = |name: &str| child::metric_sum(&body, name).unwrap_or(f64::NAN);
        Self { seconds: sum("fleet_gateway_report_seconds_sum"), count: sum("fleet_gateway_report_seconds_count") }
    }

    fn mean_ms_since(&self, before: &Self) -> f64 {
        (self.seconds - before.seconds) / (self.count - before.count) * 1e3
    }
}
