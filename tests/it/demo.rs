//! `fleetd run --demo` as a new user starts it: its cars report through every way in — JSON
//! and GB/T 32960 over its broker, GB/T 32960 and JT/T 808 over its TCP gateways.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// The demo's start loads a month of history; in a debug build that takes a while.
const DEADLINE: Duration = Duration::from_secs(180);

fn metric(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_reports_through_the_broker_and_both_gateways() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("fleet-demo-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let bin = exe.parent().and_then(|d| d.parent()).expect("target dir").join("fleetd");
    anyhow::ensure!(bin.exists(), "{} is missing: build it with `cargo build -p fleetd`", bin.display());
    let mut child = Command::new(bin)
        .args(["run", "--demo", "--http-addr", "127.0.0.1:0"])
        .env("FLEET_DATABASE_URL", format!("sqlite://{}/demo.db", dir.display()))
        .env("FLEET_EMBEDDED_MQTT_ADDR", "127.0.0.1:0")
        .env("FLEET_GBT32960_ADDR", "127.0.0.1:0")
        .env("FLEET_JT808_ADDR", "127.0.0.1:0")
        .env("FLEET_DEMO_INTERVAL_S", "1")
        .env("FLEET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            let done = line.starts_with("jt808 listening on ");
            seen.push(line);
            if done {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        seen
    })
    .await?;
    let result = async {
        let http = lines
            .iter()
            .find_map(|l| l.strip_prefix("http listening on "))
            .ok_or_else(|| anyhow::anyhow!("no http line in {lines:?}"))?;
        for gateway in ["gbt32960 listening on ", "jt808 listening on "] {
            anyhow::ensure!(lines.iter().any(|l| l.starts_with(gateway)), "no `{gateway}` line in {lines:?}");
        }
        // Every way in carries reports within the deadline.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = reqwest::get(format!("{http}/metrics")).await?.text().await?;
            let gbt = metric(&text, "fleet_gateway_reports_durable_total{listener=\"gbt32960\"}");
            let jt = metric(&text, "fleet_gateway_reports_durable_total{listener=\"jt808\"}");
            let mqtt = metric(&text, "fleet_ingest_acks_written_total");
            if gbt > 0.0 && jt > 0.0 && mqtt > 0.0 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "within {DEADLINE:?}: {gbt} GB/T 32960 reports over TCP, {jt} JT/T 808, {mqtt} over MQTT"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::Ok(())
    }
    .await;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait()?;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    assert!(status.success(), "the demo stops cleanly on SIGTERM: {status}");
    Ok(())
}
