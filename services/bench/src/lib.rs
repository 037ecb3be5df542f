//! `fleet-bench`: the measurements behind `fleetd bench …`, each against a baseline taken in
//! the same run (README "Benchmark"). The benches start fleetd as a child process (the
//! running executable, [`child`]) on a fresh database of their own on the configured
//! server, and use the configured broker (an embedded one when `FLEET_MQTT_URL` is unset);
//! they own their command-line arguments, which fleetd's CLI embeds. Progress goes to stderr; the last line
//! of stdout is one JSON object of figures whose keys carry their unit as a suffix.

mod child;
mod db;
mod dispatch;
mod gateway;
mod ingest;
mod live;
mod load;
mod notify;
mod soak;
mod stats;

use clap::{Args, Subcommand};
use fleet_domain::{SecretUrl, Vin};

/// `fleetd bench`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchKind,
}

/// Which bench to run.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchKind {
    /// Durable MQTT ingest rate vs the raw broker rate (JSON and GB/T 32960), and fleetd's peak RSS.
    Ingest(ingest::IngestArgs),
    /// Terminals over TCP (GB/T 32960.3 and JT/T 808, one connection each) against fleetd's
    /// gateways: the durable rate vs the durable MQTT JSON rate of the same run, fleetd's RSS
    /// with every terminal connected, reply latency at half the rate.
    Gateway(gateway::GatewayArgs),
    /// Latency from MQTT publish to live-feed WebSocket receipt vs a plain MQTT subscriber,
    /// ingest loss, fleetd's CPU and peak RSS, with a fleet reporting on its schedule.
    Live(live::LiveArgs),
    /// The dispatch matching engine: single-order search latency with 100,000 cars, batch
    /// quality vs greedy and an independent optimum, a 1,000 × 5,000 batch's time.
    Dispatch(dispatch::DispatchArgs),
    /// One month's statistics report for 60 and 1,000 cars, with 1× and 10× the raw samples.
    Stats(stats::StatsArgs),
    /// New alarms to a webhook receiver on loopback through the outbox, vs the same POSTs
    /// sent straight.
    Notify(notify::NotifyArgs),
    /// An hour (by default) of a simulated fleet, live clients and orders: fleetd's RSS and
    /// live-feed latency over time, and whether every published sample is stored.
    #[command(after_help = soak::AFTER_HELP)]
    Soak(soak::SoakArgs),
}

/// Where a bench runs: the database server and the broker.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Database server to measure on; the bench makes a fresh database there and removes it.
    #[arg(long, env = "FLEET_DATABASE_URL", hide_env_values = true, default_value = fleet_storage::DEFAULT_DATABASE_URL)]
    pub database_url: SecretUrl,
    /// Broker to measure on; unset: an embedded broker started by the bench.
    #[arg(long, env = "FLEET_MQTT_URL", hide_env_values = true)]
    pub mqtt_url: Option<SecretUrl>,
}

/// Runs one bench and prints its figures as the last line of stdout.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let figures = match args.which {
        BenchKind::Ingest(a) => ingest::run(a).await?,
        BenchKind::Gateway(a) => gateway::run(a).await?,
        BenchKind::Live(a) => live::run(a).await?,
        BenchKind::Dispatch(a) => dispatch::run(a).await?,
        BenchKind::Stats(a) => stats::run(a).await?,
        BenchKind::Notify(a) => notify::run(a).await?,
        BenchKind::Soak(a) => soak::run(a).await?,
    };
    println!("{}", serde_json::to_string(&figures)?);
    Ok(())
}

/// Progress line on stderr.
fn progress(msg: impl AsRef<str>) {
    eprintln!("bench: {}", msg.as_ref());
}

/// Prefix of every bench car's VIN.
const BENCH_VIN_PREFIX: &str = "LFBENCH";

/// Deterministic VIN of bench car `i` (17 valid characters).
fn bench_vin(i: usize) -> Vin {
    Vin::parse(&format!("{BENCH_VIN_PREFIX}{i:010}")).expect("bench VINs are valid")
}

/// The number of bench car `vin`, if it is one.
fn bench_index(vin: &str) -> Option<usize> {
    let digits = vin.strip_prefix(BENCH_VIN_PREFIX)?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// Rounds to `decimals` places for the figures.
fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_vin_gives_back_its_number_and_other_vins_none() {
        assert_eq!(bench_index(bench_vin(0).as_str()), Some(0));
        assert_eq!(bench_index(bench_vin(9_876).as_str()), Some(9_876));
        assert_eq!(bench_index("LSVAU2180N2183294"), None);
        assert_eq!(bench_index("LFBENCH00000000x1"), None);
        assert_eq!(bench_index("LFBENCH0000001"), None);
    }

    #[test]
    fn the_target_never_shows_its_passwords_in_debug() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            target: TargetArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "bench",
            "--database-url",
            "postgres://fleet:db-pass-1@db/fleet",
            "--mqtt-url",
            "mqtt://fleet:mq-pass-2@broker:1883",
        ])
        .expect("the arguments parse");
        let shown = format!("{:?}", cli.target);
        assert!(!shown.contains("db-pass-1") && !shown.contains("mq-pass-2"), "{shown}");
        assert!(shown.contains("db/fleet") && shown.contains("broker:1883"), "{shown}");
        assert_eq!(cli.target.database_url.expose(), "postgres://fleet:db-pass-1@db/fleet");
        assert_eq!(cli.target.mqtt_url.as_ref().map(SecretUrl::expose), Some("mqtt://fleet:mq-pass-2@broker:1883"));
    }
}
