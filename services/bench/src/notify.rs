//! `fleetd bench notify`: how long `--alarms` new alarms take to reach a webhook receiver on
//! loopback through the outbox (fleet-notify's notifier, as `fleetd run` runs it: polling
//! every 500 ms, 16 deliveries at once, each claimed and recorded in the database), against a
//! baseline measured in the same run: the same number of POSTs sent straight to the same
//! receiver, 16 at once, with no database in between. The target: 1,000 alarms at the
//! receiver within 10 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use clap::Args;
use fleet_domain::alarm::{AlarmKind, NewAlarm};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::db::{BenchDb, register_vehicles};
use super::{TargetArgs, bench_vin, progress, round_to};

#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// Alarms raised at once.
    #[arg(long, default_value_t = 1000)]
    pub alarms: usize,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The target for 1,000 alarms.
const TARGET_MS: f64 = 10_000.0;

/// A receiver answering 200 to every POST; counts them.
async fn receiver() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                // Keep-alive: one request after another on the connection.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < at + 4 + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..at + 4 + len);
                    seen.fetch_add(1, Ordering::Relaxed);
                    if sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, count))
}

async fn wait_for(count: &AtomicUsize, n: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while count.load(Ordering::Relaxed) < n {
        anyhow::ensure!(Instant::now() < deadline, "only {} of {n} arrived", count.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

pub async fn run(args: NotifyArgs) -> anyhow::Result<Value> {
    let n = args.alarms.max(1);
    let db = BenchDb::create(args.target.database_url.expose()).await?;
    let result = measure(&db, n).await;
    db.cleanup().await;
    result
}

async fn measure(db: &BenchDb, n: usize) -> anyhow::Result<Value> {
    let store = db.store().await?;
    register_vehicles(&store, 1).await?;
    let (url, count) = receiver().await?;
    let body = json!({"id": 0, "kind": "zone_entered", "detail": {}}).to_string();

    // Baseline: the same POSTs straight to the receiver.
    let http = reqwest::Client::builder().timeout(fleet_notify::SEND_TIMEOUT).build()?;
    let started = Instant::now();
    futures_util::stream::iter(0..n)
        .for_each_concurrent(fleet_notify::CONCURRENCY, |_| {
            let (http, url, body) = (&http, &url, &body);
            async move {
                let _ = http.post(url).header("content-type", "application/json").body(body.clone()).send().await;
            }
        })
        .await;
    wait_for(&count, n, Duration::from_secs(120)).await?;
    let baseline_ms = started.elapsed().as_secs_f64() * 1000.0;
    progress(format!("baseline: {n} direct POSTs in {baseline_ms:.0} ms"));

    // Through the outbox.
    count.store(0, Ordering::Relaxed);
    store.webhooks().create(&url, &[AlarmKind::ZoneEntered], "bench-secret-0123456789").await?;
    let stop = CancellationToken::new();
    let notifier = fleet_notify::Notifier::new(store.clone(), fleet_notify::DEFAULT_POLL)?;
    let task = tokio::spawn(notifier.run(stop.clone()));
    let vin = bench_vin(0);
    let started = Instant::now();
    let now = Utc::now();
    for i in 0..n {
        let alarm = NewAlarm {
            kind: AlarmKind::ZoneEntered,
            vin: Some(vin.clone()),
            unit_id: None,
            ts: now,
            key: format!("bench:{i}"),
            detail: json!({"geofence_id": 1, "geofence": "bench", "lat": 30.0, "lon": 122.1}),
        };
        store.alarms().raise(&alarm).await?;
    }
    let raised_ms = started.elapsed().as_secs_f64() * 1000.0;
    wait_for(&count, n, Duration::from_secs(300)).await?;
    let delivered_ms = started.elapsed().as_secs_f64() * 1000.0;
    stop.cancel();
    let _ = task.await;
    let (delivered, pending, gave_up) = store.webhooks().counts().await?;
    anyhow::ensure!(
        usize::try_from(delivered).unwrap_or(0) == n && pending == 0 && gave_up == 0,
        "outbox after the run: {delivered} delivered, {pending} pending, {gave_up} given up"
    );
    progress(format!("{n} alarms raised in {raised_ms:.0} ms, all at the receiver after {delivered_ms:.0} ms"));
    Ok(json!({
        "alarms": n,
        "baseline_ms": round_to(baseline_ms, 1),
        "raised_ms": round_to(raised_ms, 1),
        "delivered_ms": round_to(delivered_ms, 1),
        "vs_baseline": round_to(delivered_ms / baseline_ms.max(1e-9), 2),
        "target_ms": TARGET_MS,
        "received_twice": count.load(Ordering::Relaxed).saturating_sub(n),
    }))
}
