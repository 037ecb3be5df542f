//! (d) of `fleetd bench dispatch`: from an order becoming due to its driver being told, through
//! the whole system — a `fleetd run` child on a fresh database, cars reporting over MQTT,
//! drivers on the live feed.
//!
//! `--notify-cars` cars around Zhoushan's towns report a fresh position and charge every
//! [`REFRESH_EVERY`] (so they stay online), each bound to a driver with a driver login and a
//! live-feed WebSocket. An auto-approving unit (budget out of reach) then books
//! `--notify-orders` orders, `--notify-order-rate` a second on average (Poisson arrivals), all
//! due at once (no `pickup_at`). Each is timed from the answer to its creation (from then on it is due) to the
//! first `{"type":"order"…"status":"assigned"}` message for it on its driver's socket; once
//! assigned it is cancelled, which frees the car. The wait for the next batch is inside the
//! figure — an order created just after a batch waits almost a whole interval — hence the
//! target: p99 ≤ batch interval + 100 ms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Args;
use fleet_domain::SecretUrl;
use futures_util::{StreamExt, TryStreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{WebSocketStream, client_async};
use tokio_util::sync::CancellationToken;

use super::workload::{car_position, dropoff, rush_pickup};
use super::{ms, percentile};
use crate::child::{Fleetd, summary_quantile};
use crate::db::{BenchDb, register_vehicles};
use crate::load::{Broker, Message, forget_session, publish_all};
use crate::{TargetArgs, bench_vin, progress, round_to};

#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// (d): cars, each with its driver on the live feed.
    #[arg(long, default_value_t = 200)]
    pub notify_cars: usize,
    /// (d): orders booked and timed.
    #[arg(long, default_value_t = 300)]
    pub notify_orders: usize,
    /// (d): orders booked a second, on average (Poisson arrivals).
    #[arg(long, default_value_t = 4.0)]
    pub notify_order_rate: f64,
    /// (d): fleetd's batch interval, milliseconds (given to the fleetd it starts).
    #[arg(long, env = "FLEET_DISPATCH_BATCH_INTERVAL_MS", default_value_t = 2000)]
    pub batch_interval_ms: u64,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// The target's allowance over one batch interval.
const TARGET_OVER_INTERVAL: Duration = Duration::from_millis(100);
/// Cars report this often: well inside the 120 s after which a car is offline.
const REFRESH_EVERY: Duration = Duration::from_secs(20);
/// Driver accounts and live-feed connections set up at once.
const SETUP_CONCURRENCY: usize = 4;
/// Every order must be assigned within this time of the last one's creation.
const ASSIGN_TIMEOUT: Duration = Duration::from_secs(60);
/// Password of every bench driver.
const DRIVER_PASSWORD: &str = "bench-driver";
/// The bench's auto-approving unit.
const UNIT_ID: &str = "bench-notify";

fn driver_id(i: usize) -> String {
    format!("bd{i:05}")
}

/// What the drivers' sockets saw: the first `assigned` message of each order.
#[derive(Default)]
struct Seen {
    assigned: HashMap<String, Instant>,
    /// `assigned` messages of an order assigned to someone else (the feed must not send any).
    foreign: u64,
}

pub(crate) async fn run(args: &NotifyArgs, seed: u64, out: &mut Map<String, Value>) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.notify_cars > 0 && args.notify_orders > 0 && args.notify_order_rate > 0.0,
        "cars, orders and the rate must be positive"
    );
    let broker = Broker::start(args.target.mqtt_url.as_ref().map(SecretUrl::expose))?;
    let db = BenchDb::create(args.target.database_url.expose()).await?;
    let result = measure(args, seed, &broker, &db, out).await;
    db.cleanup().await;
    result
}

async fn measure(
    args: &NotifyArgs,
    seed: u64,
    broker: &Broker,
    db: &BenchDb,
    out: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    let store = db.store().await?;
    let n = args.notify_cars;
    progress(format!("dispatch (d): registering {n} cars"));
    register_vehicles(&store, n).await?;
    let client_id = format!("fleetd-bench-notify-{}", std::process::id());
    let interval = Duration::from_millis(args.batch_interval_ms);
    let env = [("FLEET_DISPATCH_BATCH_INTERVAL_MS", args.batch_interval_ms.to_string())];
    let fleetd = Arc::new(Fleetd::spawn_with(&db.url, &broker.url, &client_id, &env).await?);
    progress(format!(
        "dispatch (d): fleetd (pid {:?}) on {}, batches every {} ms",
        fleetd.pid(),
        fleetd.http,
        args.batch_interval_ms
    ));
    let result = with_fleetd(args, seed, broker, &store, &fleetd, interval, out).await;
    store.close().await;
    // After a run every task that shared it has ended; after a failure one may still hold
    // it, and fleetd is killed when that lets go.
    if let Ok(fleetd) = Arc::try_unwrap(fleetd) {
        fleetd.stop().await?;
        forget_session(&broker.host, broker.port, &client_id).await?;
    }
    result
}

async fn with_fleetd(
    args: &NotifyArgs,
    seed: u64,
    broker: &Broker,
    store: &fleet_storage::Store,
    fleetd: &Arc<Fleetd>,
    interval: Duration,
    out: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    let n = args.notify_cars;
    let admin = fleetd.admin_token().await?;
    let unit =
        json!({"id": UNIT_ID, "name": "Bench unit", "monthly_energy_budget_kwh": 10_000_000.0, "auto_approve": true});
    fleetd.call("POST", "/api/v1/units", &admin, Some(&unit), 201).await?;
    progress(format!("dispatch (d): {n} drivers, their logins and live feeds"));
    let sockets: Vec<(String, WebSocketStream<TcpStream>)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let admin = admin.as_str();
            async move {
                let id = driver_id(i);
                let driver = json!({"id": id, "name": format!("Bench driver {i}"), "phone": "13800000000", "vehicle_vin": bench_vin(i).as_str()});
                fleetd.call("POST", "/api/v1/drivers", admin, Some(&driver), 201).await?;
                let user = json!({"username": id, "password": DRIVER_PASSWORD, "role": "driver", "driver_id": id});
                fleetd.call("POST", "/api/v1/users", admin, Some(&user), 201).await?;
                let token = fleetd.login(&id, DRIVER_PASSWORD).await?;
                Ok::<_, anyhow::Error>((id, connect_feed(fleetd, &token).await?))
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;

    // Every car online and idle before the first order.
    let mut rng = StdRng::seed_from_u64(seed);
    let homes: Vec<(f64, f64)> = (0..n).map(|_| car_position(&mut rng)).map(|p| (p.lat, p.lon)).collect();
    let stop = CancellationToken::new();
    let first_report = Instant::now();
    report_positions(broker, &homes).await?;
    wait_until_online(store, broker, &homes).await?;
    progress(format!("dispatch (d): {n} cars online after {:.1} s", first_report.elapsed().as_secs_f64()));
    let refresher = tokio::spawn(keep_reporting(broker.host.clone(), broker.port, homes, stop.clone()));

    let seen = Arc::new(Mutex::new(Seen::default()));
    let (assigned_tx, assigned_rx) = mpsc::channel::<String>(args.notify_orders);
    let mut readers = JoinSet::new();
    for (id, ws) in sockets {
        readers.spawn(read_feed(ws, id, seen.clone(), assigned_tx.clone(), stop.clone()));
    }
    drop(assigned_tx);
    let canceller = tokio::spawn(cancel_assigned(fleetd.clone(), admin.clone(), assigned_rx));

    let batch0 = batch_seconds(fleetd).await;
    progress(format!("dispatch (d): booking {} orders, {} a second", args.notify_orders, args.notify_order_rate));
    let created = book_orders(args, &mut rng, fleetd, &admin).await?;
    let last_created = created.iter().map(|c| c.answered).max().unwrap_or_else(Instant::now);
    let deadline = last_created + ASSIGN_TIMEOUT;
    loop {
        let done = {
            let s = seen.lock().unwrap_or_else(|e| e.into_inner());
            created.iter().all(|c| s.assigned.contains_key(&c.id))
        };
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let batch1 = batch_seconds(fleetd).await;
    stop.cancel();
    let _ = refresher.await;
    while readers.join_next().await.is_some() {}
    let cancelled = canceller.await.context("the canceller panicked")??;

    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let mut from_answer = Vec::new();
    let mut from_request = Vec::new();
    let mut creation = Vec::new();
    let mut before_answer = 0;
    for c in &created {
        creation.push(c.answered - c.sent);
        if let Some(&at) = seen.assigned.get(&c.id) {
            if at < c.answered {
                before_answer += 1;
            }
            from_answer.push(at.saturating_duration_since(c.answered));
            from_request.push(at - c.sent);
        }
    }
    for v in [&mut from_answer, &mut from_request, &mut creation] {
        v.sort_unstable();
    }
    let missing = created.len() - from_answer.len();
    if let Some(c) = created.iter().find(|c| !seen.assigned.contains_key(&c.id)) {
        let order = fleetd.call("GET", &format!("/api/v1/orders/{}", c.id), &admin, None, 200).await?;
        progress(format!("dispatch (d): e.g. order {} was never seen assigned: {order}", c.id));
    }
    let p99 = percentile(&from_answer, 99.0);
    let target = interval + TARGET_OVER_INTERVAL;
    progress(format!(
        "dispatch (d): notified p50 {} ms, p99 {} ms, max {} ms (target {} ms); {missing} never assigned",
        ms(percentile(&from_answer, 50.0)),
        ms(p99),
        ms(from_answer.last().copied().unwrap_or_default()),
        ms(target)
    ));
    out.insert("dispatch.notify_p50_ms".into(), json!(ms(percentile(&from_answer, 50.0))));
    out.insert("dispatch.notify_p99_ms".into(), json!(ms(p99)));
    out.insert("dispatch.notify_max_ms".into(), json!(ms(from_answer.last().copied().unwrap_or_default())));
    out.insert("dispatch.notify_target_ms".into(), json!(ms(target)));
    out.insert("dispatch.notify_p99_within_target".into(), json!(missing == 0 && seen.foreign == 0 && p99 <= target));
    out.insert("dispatch.batch_interval_ms".into(), json!(args.batch_interval_ms));
    // From the request's sending instead: an upper bound, the creation's own time included.
    out.insert("dispatch.notify_from_request_p99_ms".into(), json!(ms(percentile(&from_request, 99.0))));
    out.insert("dispatch.notify_create_p50_ms".into(), json!(ms(percentile(&creation, 50.0))));
    out.insert("dispatch.notify_create_p99_ms".into(), json!(ms(percentile(&creation, 99.0))));
    if let (Some((s0, n0)), Some((s1, n1))) = (batch0, batch1)
        && n1 > n0
    {
        out.insert("dispatch.notify_batch_mean_ms".into(), json!(round_to((s1 - s0) / (n1 - n0) as f64 * 1e3, 2)));
    }
    if let Ok(metrics) = fleetd.metrics().await
        && let Some(p99) = summary_quantile(&metrics, "fleet_dispatch_batch_seconds", "0.99")
    {
        out.insert("dispatch.notify_batch_p99_ms".into(), json!(round_to(p99 * 1e3, 2)));
    }
    out.insert("dispatch.notify_orders".into(), json!(created.len()));
    out.insert("dispatch.notify_missing".into(), json!(missing));
    out.insert("dispatch.notify_before_answer".into(), json!(before_answer));
    out.insert("dispatch.notify_foreign".into(), json!(seen.foreign));
    out.insert("dispatch.notify_cancelled".into(), json!(cancelled));
    out.insert("dispatch.notify_cars".into(), json!(args.notify_cars));
    out.insert("dispatch.notify_order_rate_per_s".into(), json!(args.notify_order_rate));
    out.insert(
        "dispatch.notify_backend".into(),
        json!(if store.backend() == fleet_storage::Backend::Sqlite { "sqlite" } else { "postgres" }),
    );
    out.insert(
        "dispatch.notify_broker".into(),
        json!(if args.target.mqtt_url.is_some() { "external" } else { "embedded" }),
    );
    Ok(())
}

/// fleetd's batch count and their summed duration, from /metrics.
async fn batch_seconds(fleetd: &Fleetd) -> Option<(f64, u64)> {
    let metrics = fleetd.metrics().await.ok()?;
    let read = |name: &str| metrics.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok());
    Some((read("fleet_dispatch_batch_seconds_sum ")?, read("fleet_dispatch_batch_seconds_count ")? as u64))
}

/// Connects to the live feed as the holder of `token` and waits for the snapshot.
async fn connect_feed(fleetd: &Fleetd, token: &str) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let connect = async {
        let tcp = TcpStream::connect(fleetd.http).await.context("connecting to fleetd")?;
        tcp.set_nodelay(true)?;
        let (mut ws, _) = client_async(format!("ws://{}/api/v1/live?token={token}", fleetd.http), tcp)
            .await
            .context("live feed handshake")?;
        loop {
            match ws.next().await.context("the live feed closed before its snapshot")?? {
                WsMessage::Text(t) if t.contains("\"type\":\"snapshot\"") => return Ok(ws),
                WsMessage::Close(c) => anyhow::bail!("the live feed closed before its snapshot: {c:?}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), connect).await.context("no live snapshot within 30 s")?
}

/// Reads one driver's feed until `stop`: notes the first `assigned` message of each order
/// and hands the order to the canceller.
async fn read_feed(
    mut ws: WebSocketStream<TcpStream>,
    driver: String,
    seen: Arc<Mutex<Seen>>,
    assigned: mpsc::Sender<String>,
    stop: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            msg = ws.next() => msg,
        };
        let text = match msg {
            Some(Ok(WsMessage::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        };
        let at = Instant::now();
        // Cheap test first: the car's own position messages are most of the traffic.
        if !text.contains("\"type\":\"order\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
        let order = &v["order"];
        if v["type"] != "order" || order["status"] != "assigned" {
            continue;
        }
        let Some(id) = order["id"].as_str() else { continue };
        let first = {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            if order["driver_id"].as_str() != Some(driver.as_str()) {
                s.foreign += 1;
                false
            } else {
                s.assigned.insert(id.to_owned(), at).is_none()
            }
        };
        if first {
            // Capacity is one per order: never full.
            let _ = assigned.try_send(id.to_owned());
        }
    }
    let _ = ws.close(None).await;
}

/// Cancels each assigned order (as admin), which frees its car; gives how many.
async fn cancel_assigned(
    fleetd: Arc<Fleetd>,
    admin: String,
    mut assigned: mpsc::Receiver<String>,
) -> anyhow::Result<usize> {
    let body = json!({"reason": "bench: car released"});
    let mut n = 0;
    while let Some(id) = assigned.recv().await {
        fleetd.call("POST", &format!("/api/v1/orders/{id}/cancel"), &admin, Some(&body), 200).await?;
        n += 1;
    }
    Ok(n)
}

/// One booked order and when its creation was asked for and answered.
struct Created {
    id: String,
    sent: Instant,
    answered: Instant,
}

/// Books the orders at the configured mean rate, each in its own task so that a slow answer
/// does not hold up the next.
async fn book_orders(
    args: &NotifyArgs,
    rng: &mut StdRng,
    fleetd: &Arc<Fleetd>,
    admin: &str,
) -> anyhow::Result<Vec<Created>> {
    // Poisson arrivals: at a fixed pace every order would meet the batches at the same few
    // phases, and the figures would depend on that phase.
    let mut next = Instant::now();
    let mut tasks = JoinSet::new();
    for k in 0..args.notify_orders {
        let gap_s = -(1.0 - rng.random::<f64>()).ln() / args.notify_order_rate;
        next += Duration::from_secs_f64(gap_s);
        tokio::time::sleep_until(next).await;
        let (pickup, to) = (rush_pickup(rng), dropoff(rng));
        let body = json!({
            "unit_id": UNIT_ID,
            "passengers": rng.random_range(1..=4u32),
            "pickup": {"lat": pickup.lat, "lon": pickup.lon, "name": format!("Pickup {k}")},
            "dropoff": {"lat": to.lat, "lon": to.lon, "name": format!("Dropoff {k}")},
            "purpose": "bench: official visit",
        });
        let (fleetd, admin) = (fleetd.clone(), admin.to_owned());
        tasks.spawn(async move {
            let sent = Instant::now();
            let order = fleetd.call("POST", "/api/v1/orders", &admin, Some(&body), 201).await?;
            let answered = Instant::now();
            anyhow::ensure!(
                order["status"] == "approved",
                "a new order of an auto-approving unit is {}",
                order["status"]
            );
            let id = order["id"].as_str().context("an order without an id")?.to_owned();
            Ok::<_, anyhow::Error>(Created { id, sent, answered })
        });
        if (k + 1) % 50 == 0 {
            progress(format!("dispatch (d): {} orders booked", k + 1));
        }
    }
    let mut created = Vec::with_capacity(args.notify_orders);
    while let Some(r) = tasks.join_next().await {
        created.push(r.context("an order task panicked")??);
    }
    Ok(created)
}

/// Every car reports where it stands, parked with 80 % charge, stamped now.
async fn report_positions(broker: &Broker, homes: &[(f64, f64)]) -> anyhow::Result<()> {
    publish_all(&broker.host, broker.port, Arc::new(position_messages(homes)), 1, "bench-notify").await
}

fn position_messages(homes: &[(f64, f64)]) -> Vec<Message> {
    let ts = Utc::now().timestamp_millis();
    homes
        .iter()
        .enumerate()
        .map(|(i, (lat, lon))| {
            let payload = json!({"ts": ts, "lat": lat, "lon": lon, "speed_kmh": 0.0, "soc_pct": 80.0, "charging": false, "ignition": false});
            Message { topic: format!("fleet/v1/vehicles/{}/telemetry", bench_vin(i)), payload: payload.to_string().into_bytes() }
        })
        .collect()
}

/// Waits until every car's stored state is from the last few seconds, reporting again while
/// fleetd's subscription may not be in place yet.
async fn wait_until_online(store: &fleet_storage::Store, broker: &Broker, homes: &[(f64, f64)]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let fresh = Utc::now() - chrono::Duration::seconds(30);
        let online = store.telemetry().states().await?.iter().filter(|s| s.ts >= fresh).count();
        if online >= homes.len() {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {online} of {} cars online after 60 s", homes.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
        report_positions(broker, homes).await?;
    }
}

/// Reports every car again every [`REFRESH_EVERY`] until `stop`.
async fn keep_reporting(host: String, port: u16, homes: Vec<(f64, f64)>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(REFRESH_EVERY) => {}
        }
        if let Err(e) = publish_all(&host, port, Arc::new(position_messages(&homes)), 1, "bench-notify").await {
            progress(format!("dispatch (d): reporting positions failed: {e:#}"));
        }
    }
}
