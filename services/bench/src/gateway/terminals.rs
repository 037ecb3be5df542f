//! The bench's simulated terminals: fleet-sim's TCP terminals, part of the bench cars as
//! GB/T 32960.3 terminals on one gateway and the rest as JT/T 808 terminals on the other,
//! all counting into one [`TcpStats`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use fleet_sim::{SimConfig, SimError, SimStats, SimVehicle, TcpConfig, TcpProtocol, TcpStats, sim_phone};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::bench_vin;

/// Share of the JT/T 808 terminals with 2019 headers (the rest 2013), as `fleetd simulate`'s
/// default.
const JT808_2019_SHARE: f64 = 0.5;
/// Battery and consumption of every simulated car (what the bench registered).
pub(super) const BATTERY_KWH: f64 = 60.0;
pub(super) const CONSUMPTION_KWH_PER_100KM: f64 = 14.0;
/// Longest a stop may take: the terminals' own drain (3 s) and logout, with room to spare.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Which bench cars speak which protocol, and where the gateways are.
#[derive(Debug, Clone)]
pub(super) struct Fleet {
    /// Cars `0..gbt32960` are GB/T 32960 terminals; cars `gbt32960..terminals` JT/T 808 ones.
    pub gbt32960: usize,
    pub terminals: usize,
    pub gbt32960_addr: SocketAddr,
    pub jt808_addr: SocketAddr,
}

impl Fleet {
    pub(super) fn jt808(&self) -> usize {
        self.terminals - self.gbt32960
    }
}

/// The terminal phone of bench car `i` (every bench car gets one; only the JT/T 808 ones
/// use it).
pub(super) fn phone(i: usize) -> String {
    sim_phone(i)
}

/// One run of the whole fleet's terminals at one reporting interval.
pub(super) struct Terminals {
    pub stats: Arc<TcpStats>,
    stop: CancellationToken,
    runs: Vec<JoinHandle<Result<SimStats, SimError>>>,
    count: usize,
}

impl Terminals {
    /// Starts every terminal of `fleet`, each reporting every `interval`, with its car's
    /// clock starting at `clock_start` and moving `step` per report.
    pub(super) fn start(fleet: &Fleet, interval: Duration, step: Duration, clock_start: DateTime<Utc>) -> Self {
        let stats = Arc::new(TcpStats::new());
        let stop = CancellationToken::new();
        let plans = [
            (TcpProtocol::Gbt32960, fleet.gbt32960_addr, 0..fleet.gbt32960),
            (TcpProtocol::Jt808 { v2019_share: JT808_2019_SHARE }, fleet.jt808_addr, fleet.gbt32960..fleet.terminals),
        ];
        let mut runs = Vec::new();
        for (seed, (protocol, addr, cars)) in plans.into_iter().enumerate() {
            if cars.is_empty() {
                continue;
            }
            let mut tcp = TcpConfig::new(protocol, addr.to_string());
            tcp.stats = Arc::clone(&stats);
            tcp.sample_step = Some(step);
            tcp.clock_start = Some(clock_start);
            let vehicles = cars
                .map(|i| SimVehicle {
                    vin: bench_vin(i),
                    battery_kwh: BATTERY_KWH,
                    consumption_kwh_per_100km: CONSUMPTION_KWH_PER_100KM,
                    terminal_phone: Some(phone(i)),
                })
                .collect();
            let cfg = SimConfig::over_tcp(tcp, vehicles, interval, seed as u64 + 1);
            runs.push(tokio::spawn(fleet_sim::run(cfg, stop.clone())));
        }
        Self { stats, stop, runs, count: fleet.terminals }
    }

    /// Waits until every terminal is logged in; gives how long that took.
    pub(super) async fn wait_connected(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        loop {
            let c = self.stats.counts();
            if c.connected as usize >= self.count {
                return Ok(t0.elapsed());
            }
            if let Some(k) = self.runs.iter().position(JoinHandle::is_finished) {
                match self.runs.swap_remove(k).await.context("a simulator run panicked")? {
                    Err(e) => anyhow::bail!("the simulated terminals cannot run: {e}"),
                    Ok(_) => anyhow::bail!("a simulator run stopped by itself"),
                }
            }
            anyhow::ensure!(
                t0.elapsed() < timeout,
                "only {} of {} terminals logged in after {timeout:?} ({} connection or login failures, {} refused)",
                c.connected,
                self.count,
                c.connect_failures,
                c.login_refused
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether every terminal is logged in now.
    pub(super) fn all_connected(&self) -> bool {
        self.stats.counts().connected as usize >= self.count
    }

    /// Stops the terminals (each waits a moment for its last answers, then logs out) and
    /// waits for them.
    pub(super) async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        for run in self.runs {
            tokio::time::timeout(STOP_TIMEOUT, run)
                .await
                .context("the terminals did not stop within a minute")?
                .context("a simulator run panicked")?
                .context("a simulator run failed")?;
        }
        Ok(())
    }
}
