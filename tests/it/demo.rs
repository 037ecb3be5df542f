//! `fleetd run --demo` as a new user starts it: its cars report through every way in — JSON
//! and GB/T 32960 over its broker, GB/T 32960 and JT/T 808 over its TCP gateways — and it
//! runs the whole loop: its units place orders, dispatch assigns them, its drivers accept and
//! drive to the pickup and on to the drop-off, and the trips they drive carry the orders.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use fleet_domain::feasibility::GeoPoint;
use fleet_sim::geo::LatLon;
use fleet_sim::places::{PLACES, graph};
use serde_json::Value;
use tokio::time::Instant;

/// The demo's start loads a month of history; in a debug build that takes a while.
const DEADLINE: Duration = Duration::from_secs(180);
/// An order of the demo's units approved (up to a minute), assigned and accepted (up to 20 s).
const ACCEPTED_WITHIN: Duration = Duration::from_secs(240);
/// A short order driven from end to end: approval, the driver's answer, boarding (up to
/// 90 s) and a drive of a kilometre or two through town, in real time.
const COMPLETED_WITHIN: Duration = Duration::from_secs(600);
/// The trip derivation runs every 30 s.
const TRIP_WITHIN: Duration = Duration::from_secs(180);

fn metric(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_reports_through_every_way_in_and_runs_the_whole_loop() -> anyhow::Result<()> {
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
        // One a minute, more in the first two: orders come, and cars stay free for the test's.
        .env("FLEET_DEMO_ORDERS_PER_MIN", "1")
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
        whole_loop(http).await
    }
    .await;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait()?;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    assert!(status.success(), "the demo stops cleanly on SIGTERM: {status}");
    Ok(())
}

async fn login(http: &str, user: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "username": user, "password": "demo" });
    let resp: Value = reqwest::Client::new()
        .post(format!("{http}/api/v1/auth/login"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(resp["token"].as_str().unwrap_or_default().to_owned())
}

async fn get(http: &str, token: &str, path: &str) -> anyhow::Result<Value> {
    let resp = reqwest::Client::new().get(format!("{http}{path}")).bearer_auth(token).send().await?;
    Ok(resp.error_for_status()?.json().await?)
}

/// Polls `GET path` every 2 s until `done` holds for its answer, within `within` (an error
/// from `done` ends the wait at once); answers it.
async fn poll(
    http: &str,
    token: &str,
    path: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> anyhow::Result<bool>,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let v = get(http, token, path).await?;
        if done(&v)? {
            return Ok(v);
        }
        anyhow::ensure!(Instant::now() < deadline, "no {what} within {within:?}; last seen {v}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn at(v: &Value) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default())?.to_utc())
}

fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    fleet_domain::feasibility::haversine_m(GeoPoint::new(a.0, a.1), GeoPoint::new(b.0, b.1))
}

/// Where the car was at `ts`: its sample nearest in time.
async fn position_at(http: &str, token: &str, vin: &str, ts: DateTime<Utc>) -> anyhow::Result<(f64, f64)> {
    let (from, to) = (ts - chrono::Duration::seconds(20), ts + chrono::Duration::seconds(20));
    let path = format!(
        "/api/v1/vehicles/{vin}/track?from={}&to={}",
        from.to_rfc3339_opts(SecondsFormat::Millis, true),
        to.to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    let track = get(http, token, &path).await?;
    let samples = track["samples"].as_array().or_else(|| track.as_array()).cloned().unwrap_or_default();
    let nearest = samples
        .iter()
        .filter_map(|s| Some((at(&s["ts"]).ok()?, s["lat"].as_f64()?, s["lon"].as_f64()?)))
        .min_by_key(|(t, _, _)| (*t - ts).num_milliseconds().abs())
        .ok_or_else(|| anyhow::anyhow!("no sample of {vin} around {ts}: {track}"))?;
    Ok((nearest.1, nearest.2))
}

async fn whole_loop(http: &str) -> anyhow::Result<()> {
    let started = Utc::now() - chrono::Duration::minutes(5);
    let since = started.to_rfc3339_opts(SecondsFormat::Secs, true);
    let token = login(http, "dispatcher").await?;

    // The demo's units place orders by themselves, and its drivers accept them.
    let path = format!("/api/v1/orders?status=accepted,picked_up,completed&from={since}");
    poll(http, &token, &path, ACCEPTED_WITHIN, "an accepted order of the demo's", |orders| {
        Ok(orders["orders"].as_array().into_iter().flatten().any(|o| o["vin"].is_string()))
    })
    .await?;

    // An order of our own, from where an idle car stands to the nearest place from there.
    let g = graph();
    let states = get(http, &token, "/api/v1/vehicles/states").await?;
    let (pickup, dropoff) = states["vehicles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["status"] == "idle")
        .filter_map(|v| {
            let here = g.nearest_stop(LatLon::new(v["lat"].as_f64()?, v["lon"].as_f64()?));
            let to = g
                .destinations()
                .iter()
                .copied()
                .filter(|&d| d != here)
                .min_by(|&a, &b| g.travel_s(here, a).total_cmp(&g.travel_s(here, b)))?;
            Some((here, to))
        })
        .min_by(|a, b| g.travel_s(a.0, a.1).total_cmp(&g.travel_s(b.0, b.1)))
        .ok_or_else(|| anyhow::anyhow!("no idle car: {states}"))?;
    let units = get(http, &token, "/api/v1/units").await?;
    let unit = units["units"][0]["id"].as_str().unwrap_or_default().to_owned();
    let place = |i: usize| serde_json::json!({ "lat": PLACES[i].lat, "lon": PLACES[i].lon, "name": PLACES[i].name_zh });
    let body = serde_json::json!({
        "unit_id": unit, "passengers": 1, "pickup": place(pickup), "dropoff": place(dropoff), "purpose": "送文件",
    });
    let order: Value = reqwest::Client::new()
        .post(format!("{http}/api/v1/orders"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = order["id"].as_str().unwrap_or_default().to_owned();

    // Approved, assigned, accepted, picked up and completed by the demo's people and cars.
    let what = format!("order {id} completed");
    let detail = poll(http, &token, &format!("/api/v1/orders/{id}"), COMPLETED_WITHIN, &what, |detail| {
        match detail["status"].as_str() {
            Some("completed") => Ok(true),
            Some("rejected" | "canceled") => anyhow::bail!("the order ended {}: {detail}", detail["status"]),
            _ => Ok(false),
        }
    })
    .await?;
    let vin = detail["vin"].as_str().unwrap_or_default().to_owned();
    let events = detail["events"].as_array().cloned().unwrap_or_default();
    let when = |action: &str| {
        events
            .iter()
            .find(|e| e["to"] == action)
            .ok_or_else(|| anyhow::anyhow!("no `{action}` in the history: {detail}"))
            .and_then(|e| at(&e["ts"]))
    };
    let actions: Vec<&str> = events.iter().filter_map(|e| e["to"].as_str()).collect();
    for status in ["approved", "assigned", "accepted", "picked_up", "completed"] {
        anyhow::ensure!(actions.contains(&status), "the history lacks {status}: {actions:?}");
    }
    let (picked, done) = (when("picked_up")?, when("completed")?);
    let at_pickup = position_at(http, &token, &vin, picked).await?;
    let at_dropoff = position_at(http, &token, &vin, done).await?;
    let (p, d) = (&PLACES[pickup], &PLACES[dropoff]);
    anyhow::ensure!(metres(at_pickup, (p.lat, p.lon)) < 100.0, "picked up at {at_pickup:?}, not at {}", p.name_zh);
    anyhow::ensure!(metres(at_dropoff, (d.lat, d.lon)) < 100.0, "completed at {at_dropoff:?}, not at {}", d.name_zh);

    // The trip the car drove for it carries the order.
    let what = format!("a trip of {vin} carrying order {id}");
    poll(http, &token, &format!("/api/v1/trips?vin={vin}&from={since}"), TRIP_WITHIN, &what, |trips| {
        Ok(trips["trips"].as_array().into_iter().flatten().any(|t| t["order_id"] == id.as_str()))
    })
    .await?;
    Ok(())
}
