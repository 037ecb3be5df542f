//! Faults (issue 8): PostgreSQL stopped for 30 s in the middle of ingest. fleetd keeps
//! running, acknowledges nothing it could not commit, retries with capped backoff and answers
//! 503 naming the database meanwhile; once the database is back it stores every message
//! exactly once, the dispatch leader (whose advisory-lock session died) is elected again and
//! the live feed follows the cars again. On a private PostgreSQL: the shared one on :5432 serves
//! the other tests.

mod private_pg;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use fleet_domain::NewVehicle;
use fleet_storage::Store;
use fleet_tests::live::LiveClient;
use fleet_tests::{ADMIN_PASSWORD, Publisher, random_vin};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Broker, start_configured, wait_health};
use private_pg::PrivatePg;

/// How long the database stays down (issue 8).
const OUTAGE: Duration = Duration::from_secs(30);
/// Cars publishing, and how often one of them sends a message (50 a second in all).
const CARS: usize = 8;
const PUBLISH_EVERY: Duration = Duration::from_millis(20);
/// Failed commits fleetd may count during the outage: each in-flight batch is retried with
/// capped backoff, a handful of times in 30 s; retrying without backoff would fail hundreds.
const MAX_COMMIT_ERRORS: f64 = 60.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_s_database_outage_pauses_ingest_and_loses_nothing() -> anyhow::Result<()> {
    let pg = PrivatePg::start();
    let log = pg.dir().join("fleetd.log");
    outage(&pg, &log).await.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\n--- fleetd's log (end) ---\n{}\n--- PostgreSQL's log (end) ---\n{}",
            private_pg::tail(&log, 40),
            pg.log_tail()
        )
    })
}

async fn outage(pg: &PrivatePg, log: &Path) -> anyhow::Result<()> {
    let store = Store::connect(&pg.url()).await?;
    store.migrate().await?;
    let vins: Vec<String> = (0..CARS).map(|_| random_vin()).collect();
    // A car of its own for the probe below, kept out of the counts.
    let probe = random_vin();
    for (i, vin) in vins.iter().chain([&probe]).enumerate() {
        let v = NewVehicle {
            vin: vin.clone(),
            plate: format!("浙LD7{i:04}"),
            model: "BYD e6".into(),
            seats: 5,
            battery_kwh: 71.7,
            consumption_kwh_per_100km: 17.0,
            unit_id: None,
            terminal_phone: None,
            ..Default::default()
        };
        store.vehicles().create(&v.validate()?, &v).await?;
    }
    let broker = Broker::start();
    let client_id = format!("fleetd-faults-pg-{}", rand::random::<u32>());
    let log_file = std::fs::File::create(log)?;
    let (mut child, http) = start_configured(&pg.url(), &client_id, broker.port, |c| {
        // The leader checks its lock session every batch: it notices the outage soon.
        c.env("FLEET_DISPATCH_BATCH_INTERVAL_MS", "200").stderr(log_file);
    });
    wait_health(&http, 200).await?;

    // The subscription follows the connection: probe until a message gets through, so the
    // stream below starts with fleetd subscribed.
    let t0 = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).context("now")?;
    let sample = |ts: DateTime<Utc>, i: usize| json!({"ts": ts.to_rfc3339(), "lat": 30.0 + i as f64 * 1e-5, "lon": 122.1, "soc_pct": 70.0, "speed_kmh": 30.0});
    let mut p = Publisher::connect_to("127.0.0.1", broker.port).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for k in 0usize.. {
        p.json(&probe, &sample(t0 + chrono::Duration::milliseconds(k as i64), k)).await?;
        if store.telemetry().count(Some(&probe)).await? > 0 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "no message reached fleetd's subscription");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A dispatcher's live feed, read throughout: the newest time it has shown of each car.
    let token = login(&http).await?;
    let mut feed =
        LiveClient::connect(&format!("{}/api/v1/live?token={token}", http.replacen("http://", "ws://", 1))).await?;
    feed.snapshot().await?;
    let shown: Arc<Mutex<HashMap<String, DateTime<Utc>>>> = Arc::default();
    let reader = tokio::spawn(follow(feed, shown.clone()));
    until("the dispatch leader elected", Duration::from_secs(20), || async {
        Ok(metric(&http, "fleet_dispatch_leader").await? == 1.0)
    })
    .await?;

    // A steady stream, one (VIN, ts) per message.
    let stop_publishing = CancellationToken::new();
    let publisher = tokio::spawn({
        let (vins, stop) = (vins.clone(), stop_publishing.clone());
        async move {
            let mut published = Vec::new();
            let mut tick = tokio::time::interval(PUBLISH_EVERY);
            for i in 0usize.. {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let vin = &vins[i % vins.len()];
                let ts = t0 + chrono::Duration::milliseconds(20 * i as i64);
                p.json(vin, &sample(ts, i)).await?;
                published.push((vin.clone(), ts));
            }
            anyhow::Ok(published)
        }
    });
    // The stream's samples (a probe sent last may still land).
    let stored =
        || async { anyhow::Ok(store.telemetry().count(None).await? - store.telemetry().count(Some(&probe)).await?) };
    until("100 samples stored before the outage", Duration::from_secs(30), || async { Ok(stored().await? >= 100) })
        .await?;

    // The database goes away.
    let down_at = Instant::now();
    tokio::task::block_in_place(|| pg.stop());
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        match health(&http).await {
            (503, body) => break body,
            (status, _) => anyhow::ensure!(Instant::now() < deadline, "/healthz still {status} 15 s into the outage"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    anyhow::ensure!(
        body["database"] == "down" && body["mqtt"] == "ok",
        "/healthz names the database as what is down: {body}"
    );
    // Its lock session ended with the server: the leader steps down.
    until("the dispatch leader steps down", Duration::from_secs(25), || async {
        Ok(metric(&http, "fleet_dispatch_leader").await? == 0.0)
    })
    .await?;
    let before = metrics(&http).await?;
    tokio::time::sleep_until(down_at + OUTAGE - Duration::from_secs(4)).await;
    let (status, body) = health(&http).await;
    anyhow::ensure!(
        status == 503 && body["database"] == "down",
        "/healthz still 503 late in the outage: {status} {body}"
    );
    let during = metrics(&http).await?;
    let (committed, received, in_hand, errors) = (
        "fleet_ingest_messages_committed_total",
        "fleet_ingest_messages_received_total",
        "fleet_ingest_messages_in_hand",
        "fleet_ingest_commit_errors_total",
    );
    let arrived = get(&during, received) - get(&before, received);
    anyhow::ensure!(arrived > 0.0, "messages kept reaching fleetd during the outage");
    // Acks go out only for committed messages (counted together): none while it is down, and
    // what arrives stays in hand (a few may be counted between the two figures' updates).
    anyhow::ensure!(
        get(&during, committed) == get(&before, committed),
        "fleetd acknowledged messages while the database was down"
    );
    let held = get(&during, in_hand) - get(&before, in_hand);
    anyhow::ensure!(
        held + 10.0 >= arrived,
        "{arrived} messages arrived during the outage but only {held} more are in hand"
    );
    let n = get(&during, errors);
    anyhow::ensure!(
        (1.0..=MAX_COMMIT_ERRORS).contains(&n),
        "{n} failed commits during the outage: retried with capped backoff, not spinning"
    );
    anyhow::ensure!(child.running(), "fleetd exited during the outage");
    tokio::time::sleep_until(down_at + OUTAGE).await;
    tokio::task::block_in_place(|| pg.resume());
    anyhow::ensure!(down_at.elapsed() >= OUTAGE, "the outage lasted {:?}", down_at.elapsed());

    // It comes back: health, a leader again, and every message stored exactly once.
    wait_health(&http, 200).await?;
    until("the dispatch leader elected again", Duration::from_secs(20), || async {
        Ok(metric(&http, "fleet_dispatch_leader").await? == 1.0)
    })
    .await?;
    stop_publishing.cancel();
    let published = publisher.await??;
    let total = i64::try_from(published.len())?;
    until("every published sample stored", Duration::from_secs(60), || async {
        let n = stored().await?;
        anyhow::ensure!(n <= total, "{n} samples stored for {total} published");
        Ok(n == total)
    })
    .await?;
    let want: HashSet<(String, i64)> = published.iter().map(|(v, ts)| (v.clone(), ts.timestamp_millis())).collect();
    anyhow::ensure!(want.len() == published.len(), "the test published a (VIN, ts) twice");
    let mut rows: HashMap<(String, i64), usize> = HashMap::new();
    let last = published.last().map(|(_, ts)| *ts).context("something published")?;
    for vin in &vins {
        for s in store
            .telemetry()
            .track(vin, t0 - chrono::Duration::seconds(1), last + chrono::Duration::seconds(1), 1_000_000)
            .await?
        {
            *rows.entry((vin.clone(), s.ts.timestamp_millis())).or_default() += 1;
        }
    }
    let missing = want.iter().filter(|k| !rows.contains_key(*k)).count();
    let doubled = rows.values().filter(|n| **n > 1).count();
    let unknown = rows.keys().filter(|k| !want.contains(*k)).count();
    anyhow::ensure!(
        (missing, doubled, unknown) == (0, 0, 0),
        "of {total} published: {missing} missing, {doubled} stored twice, {unknown} never published"
    );
    let dead = store.dead_letters().count().await?;
    anyhow::ensure!(dead == 0, "{dead} dead letters for good messages");

    // The live feed opened before the outage shows each car's newest sample.
    let newest: HashMap<&String, DateTime<Utc>> = published.iter().map(|(v, ts)| (v, *ts)).collect();
    until("the live feed shows every car's newest sample", Duration::from_secs(20), || async {
        anyhow::ensure!(!reader.is_finished(), "the live feed connection ended");
        let shown = shown.lock().unwrap_or_else(|e| e.into_inner());
        Ok(newest.iter().all(|(vin, ts)| shown.get(*vin) == Some(ts)))
    })
    .await?;
    reader.abort();
    // So does the stored state, written behind the samples: a write that failed during the
    // outage was retried after it, with a growing wait rather than every 250 ms.
    until("each car's stored state at its newest sample", Duration::from_secs(20), || async {
        for (vin, ts) in &newest {
            if store.telemetry().state(vin).await?.map(|s| s.ts) != Some(*ts) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    let state_errors = metric(&http, "fleet_ingest_state_write_errors_total").await?;
    anyhow::ensure!(state_errors <= 12.0, "{state_errors} failed state writes in a 30-s outage: not backing off");

    anyhow::ensure!(child.running(), "fleetd exited");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "fleetd's clean stop after the outage: {status}");
    store.close().await;
    drop(broker);
    Ok(())
}

/// Reads the live feed until it ends, keeping the newest time shown of each car.
async fn follow(mut feed: LiveClient, shown: Arc<Mutex<HashMap<String, DateTime<Utc>>>>) -> anyhow::Result<()> {
    while let Some(msg) = feed.next(Duration::from_secs(3600)).await? {
        for v in msg["vehicles"].as_array().into_iter().flatten() {
            let (Some(vin), Some(ts)) = (v["vin"].as_str(), v["ts"].as_str()) else { continue };
            let ts = DateTime::parse_from_rfc3339(ts)?.with_timezone(&Utc);
            let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
            let e = shown.entry(vin.to_owned()).or_insert(ts);
            *e = (*e).max(ts);
        }
    }
    Ok(())
}

/// Polls `check` until it answers true, failing after `within`.
async fn until<F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + within;
    while !check().await? {
        anyhow::ensure!(Instant::now() < deadline, "timed out after {within:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn health(http: &str) -> (u16, Value) {
    match reqwest::get(format!("{http}/healthz")).await {
        Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
        Err(_) => (0, Value::Null),
    }
}

async fn login(http: &str) -> anyhow::Result<String> {
    let body = json!({"username": "admin", "password": ADMIN_PASSWORD});
    let r: Value = reqwest::Client::new()
        .post(format!("{http}/api/v1/auth/login"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    r["token"].as_str().map(str::to_owned).context("the login answer has a token")
}

/// `/metrics` as name → value, the series of a name (its labels) summed.
async fn metrics(http: &str) -> anyhow::Result<HashMap<String, f64>> {
    let text = reqwest::get(format!("{http}/metrics")).await?.error_for_status()?.text().await?;
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        if let Ok(v) = value.parse::<f64>() {
            *out.entry(series.split('{').next().unwrap_or(series).to_owned()).or_default() += v;
        }
    }
    Ok(out)
}

/// A metric's value; 0 when it has not been recorded yet.
fn get(m: &HashMap<String, f64>, name: &str) -> f64 {
    m.get(name).copied().unwrap_or(0.0)
}

async fn metric(http: &str, name: &str) -> anyhow::Result<f64> {
    Ok(get(&metrics(http).await?, name))
}
