//! `fleetd bench …`: measurements against a baseline taken in the same run (contract §7).
//! Progress goes to stderr; the last line of stdout is one JSON object of figures whose keys
//! carry their unit as a suffix.

mod child;
mod db;
mod dispatch;
mod ingest;
mod load;

use clap::{Args, Subcommand};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchKind,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchKind {
    /// Durable MQTT ingest rate vs the raw broker rate (JSON and GB/T 32960), and fleetd's peak RSS.
    Ingest(ingest::IngestArgs),
    /// The dispatch matching engine: single-order search latency with 100,000 cars, batch
    /// quality vs greedy and an independent optimum, a 1,000 × 5,000 batch's time.
    Dispatch(dispatch::DispatchArgs),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let figures = match args.which {
        BenchKind::Ingest(a) => ingest::run(a).await?,
        BenchKind::Dispatch(a) => dispatch::run(a).await?,
    };
    println!("{}", serde_json::to_string(&figures)?);
    Ok(())
}

/// Progress line on stderr.
fn progress(msg: impl AsRef<str>) {
    eprintln!("bench: {}", msg.as_ref());
}
