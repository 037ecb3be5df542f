//! Simulated cars that report over TCP, the way real terminals reach a platform: GB/T 32960.3
//! vehicle terminals (both editions, half of the cars each) or JT/T 808 Beidou terminals
//! (a share of them with 2019 headers, the rest 2013), each car on a connection of its own to
//! a gateway ([`TcpConfig::gateway`]).
//!
//! Each car is one task (`driver`): it steps its car every interval, keeps the samples the
//! gateway has not acknowledged (`unanswered`), and reconnects with a jittered, capped
//! backoff (`backoff`) when the connection fails, sending again what was not answered.
//! What differs between the protocols is a `dialect` (`gbt`, `jt808`). Everything the
//! terminals do is counted in one shared [`TcpStats`] (reports sent, acknowledged and sent
//! again, reconnections, reply latencies), which the caller may read while the run goes on.
//!
//! Per car the task holds the car, a small queue and a socket: ten thousand terminals are a
//! few tens of MiB.

mod backoff;
mod dialect;
mod driver;
mod gbt;
mod jt808;
mod stats;
mod unanswered;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_gbt32960::Edition as GbtEdition;
use fleet_jt808::Edition as Jt808Edition;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::driver::{Shared, Terminal, Warnings};
pub use self::stats::{LATENCY_RESERVOIR, LatencySummary, TcpCounts, TcpStats};
use super::car::{Car, CarSpec};
use super::control::Driven;
use super::phones::{PHONE_DIGITS_2013, is_terminal_phone};
use super::{SimConfig, SimError, SimStats, car_seed, picks};

/// Samples a terminal keeps unanswered (an hour of reports at the default 5 s interval);
/// past this the oldest are dropped and counted.
pub const DEFAULT_MAX_UNANSWERED: usize = 720;

/// The cars report over TCP to a gateway instead of publishing to a broker.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    pub protocol: TcpProtocol,
    /// The gateway, `HOST:PORT` (resolved at every connection, as a terminal does).
    pub gateway: String,
    pub timing: TcpTiming,
    /// Samples each terminal keeps unanswered at most.
    pub max_unanswered: usize,
    /// Where the terminals count what they do; keep a clone to read it during the run.
    pub stats: Arc<TcpStats>,
    /// How far a car's clock moves from one of its samples to the next; `None`: the
    /// interval, so the clocks keep to the wall clock. Reports are stamped to the second
    /// (and a GB/T 32960 answer names its report by that stamp), so a run reporting more
    /// often than once a second (a benchmark's load) steps its cars by a second or more,
    /// and their clocks run ahead of the wall clock.
    pub sample_step: Option<Duration>,
    /// Where the cars' clocks start; `None`: now. A benchmark whose clocks run fast starts
    /// them in the past, and each of its runs somewhere else, so no two runs stamp a car's
    /// samples alike.
    pub clock_start: Option<DateTime<Utc>>,
}

impl TcpConfig {
    /// `protocol` to `gateway` with the default timing and bound, and fresh counters.
    pub fn new(protocol: TcpProtocol, gateway: impl Into<String>) -> Self {
        Self {
            protocol,
            gateway: gateway.into(),
            timing: TcpTiming::default(),
            max_unanswered: DEFAULT_MAX_UNANSWERED,
            stats: Arc::new(TcpStats::new()),
            sample_step: None,
            clock_start: None,
        }
    }
}

/// What the terminals speak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TcpProtocol {
    /// GB/T 32960.3 vehicle terminals, alternately of the 2016 and the 2025 edition.
    Gbt32960,
    /// JT/T 808 terminals, `v2019_share` (0..=1) of them with 2019 headers, the rest 2013,
    /// spread through the fleet; a phone number too long for a 2013 header (over 12 digits)
    /// makes its terminal a 2019 one. Every car needs a terminal phone.
    Jt808 { v2019_share: f64 },
}

/// The terminals' clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTiming {
    /// Longest wait for a TCP connection to open.
    pub connect_timeout: Duration,
    /// Longest wait for an answer (to a login, a report, a heartbeat); then the connection
    /// counts as broken and the terminal connects again.
    pub reply_timeout: Duration,
    /// A heartbeat goes when the terminal has written nothing for this long.
    pub heartbeat_every: Duration,
    /// The reconnection backoff: its first step and its cap.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// On stop, how long a terminal waits for the answers to what it has sent.
    pub drain_grace: Duration,
}

impl Default for TcpTiming {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(30),
            // Well inside the gateways' default idle timeout (180 s).
            heartbeat_every: Duration::from_secs(60),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            drain_grace: Duration::from_secs(3),
        }
    }
}

/// Runs `cfg`'s cars as TCP terminals until `shutdown`, then lets each finish (see
/// `driver`).
pub(super) async fn run(cfg: &SimConfig, tcp: &TcpConfig, shutdown: CancellationToken) -> Result<SimStats, SimError> {
    if let TcpProtocol::Jt808 { v2019_share } = tcp.protocol {
        if !(0.0..=1.0).contains(&v2019_share) {
            return Err(SimError::Jt808Share);
        }
        for v in &cfg.vehicles {
            match &v.terminal_phone {
                None => return Err(SimError::NoTerminalPhone(v.vin.clone())),
                Some(phone) if !is_terminal_phone(phone) => {
                    return Err(SimError::BadTerminalPhone(v.vin.clone(), phone.clone()));
                }
                Some(_) => {}
            }
        }
    }
    let n = cfg.vehicles.len();
    let step = tcp.sample_step.unwrap_or(cfg.interval);
    let shared = Arc::new(Shared {
        gateway: tcp.gateway.clone(),
        timing: tcp.timing,
        interval: cfg.interval,
        sample_step: step,
        max_unanswered: tcp.max_unanswered,
        stats: Arc::clone(&tcp.stats),
        warnings: Warnings::new(),
    });
    let start = tcp.clock_start.unwrap_or_else(Utc::now);
    let t0 = Instant::now();
    let tracker = TaskTracker::new();
    for (i, v) in cfg.vehicles.iter().enumerate() {
        // The cars' first connections and reports spread evenly over one interval.
        let offset = Duration::from_nanos((cfg.interval.as_nanos() * i as u128 / n as u128) as u64);
        // The same share of a step on the car's clock.
        let clock_offset = Duration::from_nanos((step.as_nanos() * i as u128 / n as u128) as u64);
        let seed = car_seed(cfg.seed, &v.vin);
        let spec = |source| CarSpec {
            vin: v.vin.clone(),
            battery_kwh: v.battery_kwh,
            consumption_kwh_per_100km: v.consumption_kwh_per_100km,
            source,
        };
        // A car's clock reads its first tick's time at its first step.
        let car = |source| {
            let car = Car::new(
                spec(source),
                start + TimeDelta::from_std(clock_offset).unwrap_or_default(),
                cfg.rhythm(),
                seed,
            );
            Driven::new(car, cfg.control.as_ref())
        };
        let task_seed = seed ^ 0x7C9_5EED;
        let connect_at = t0 + offset;
        match tcp.protocol {
            TcpProtocol::Gbt32960 => {
                let edition = if i % 2 == 0 { GbtEdition::V2016 } else { GbtEdition::V2025 };
                let dialect = gbt::Gbt32960::new(edition, v.vin.clone());
                let terminal = Terminal::new(car(edition.source()), dialect, task_seed, Arc::clone(&shared));
                tracker.spawn(terminal.run(connect_at, shutdown.clone()));
            }
            TcpProtocol::Jt808 { v2019_share } => {
                let phone = v.terminal_phone.clone().unwrap_or_default();
                let edition = if picks(i, v2019_share) || phone.len() > PHONE_DIGITS_2013 {
                    Jt808Edition::V2019
                } else {
                    Jt808Edition::V2013
                };
                let dialect = jt808::Jt808::new(edition, phone, v.vin.clone());
                let source = fleet_domain::SampleSource::Jt808;
                let terminal = Terminal::new(car(source), dialect, task_seed, Arc::clone(&shared));
                tracker.spawn(terminal.run(connect_at, shutdown.clone()));
            }
        }
    }
    tracing::info!(
        sim.vehicles = n,
        sim.interval_ms = cfg.interval.as_millis() as u64,
        sim.gateway = %tcp.gateway,
        sim.protocol = ?tcp.protocol,
        "simulator started"
    );
    tracker.close();
    tracker.wait().await;
    let c = tcp.stats.counts();
    let stats =
        SimStats { published: c.acked, errors: c.connect_failures + c.refused + c.dropped + c.given_up + c.abandoned };
    tracing::info!(
        sim.sent = c.sent,
        sim.acked = c.acked,
        sim.resent = c.resent,
        sim.reconnects = c.reconnects,
        sim.errors = stats.errors,
        "simulator stopped"
    );
    Ok(stats)
}

#[cfg(test)]
mod tests;
