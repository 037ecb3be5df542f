//! Scale-out (issue 8): three instances on one PostgreSQL and one broker split the work —
//! A runs ingest and web (in this process), B ingest and dispatch, C everything (both child
//! processes). Ingest is shared through the `$share` group, every web instance's live feed
//! shows what any instance committed or changed, and one instance leads dispatch. Then the
//! leader is killed with SIGKILL: another leads, a survivor drains the dead instance's MQTT
//! session, the live feeds stay complete, and every published message is stored exactly
//! once; the instance comes back and takes its session back.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use fleet_tests::live::LiveClient;
use fleet_tests::{Db, Publisher, TestApp};
use fleetd::config::{MqttTarget, MqttUrl, Services};
use serde_json::{Value, json};

use super::{Broker, start_configured};
use crate::orders::{get, order_body, post, world};

/// Lowest number of samples a car gets in one phase (all from the same place but the last).
const PER_CAR: usize = 24;

/// The value of an unlabelled Prometheus sample of `name` at `base`, 0 when absent.
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<f64> {
    let text = http.get(format!("{base}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0))
}

/// Whether two maps of latitudes agree (the JSON parser may round the last bit differently).
fn same(a: &HashMap<String, f64>, b: &HashMap<String, f64>) -> bool {
    a.len() == b.len() && a.iter().all(|(vin, x)| b.get(vin).is_some_and(|y| (x - y).abs() < 1e-6))
}

/// A live client's view of every car's latitude, kept up to date from its messages.
struct View {
    client: LiveClient,
    lat: HashMap<String, f64>,
    orders: Vec<Value>,
}

impl View {
    async fn open(url: &str) -> anyhow::Result<Self> {
        let mut client = LiveClient::connect(url).await?;
        let mut lat = HashMap::new();
        for v in client.snapshot().await? {
            if let (Some(vin), Some(l)) = (v["vin"].as_str(), v["lat"].as_f64()) {
                lat.insert(vin.to_owned(), l);
            }
        }
        Ok(Self { client, lat, orders: Vec::new() })
    }

    /// Reads messages until `done` holds for the view (or the deadline passes).
    async fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + fleet_tests::DEFAULT_DEADLINE;
        while !done(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            anyhow::ensure!(!left.is_zero(), "timed out waiting for {what}");
            let Ok(Some(msg)) = self.client.next(left.min(Duration::from_secs(1))).await else { continue };
            match msg["type"].as_str() {
                Some("snapshot" | "positions") => {
                    for v in msg["vehicles"].as_array().into_iter().flatten() {
                        if let (Some(vin), Some(l)) = (v["vin"].as_str(), v["lat"].as_f64()) {
                            self.lat.insert(vin.to_owned(), l);
                        }
                    }
                }
                Some("order") => self.orders.push(msg["order"].clone()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Waits until every car in `want` shows the latitude given there.
    async fn shows(&mut self, who: &str, want: &HashMap<String, f64>) -> anyhow::Result<()> {
        let r = self
            .until(&format!("{who}'s live feed to show every car's committed position"), |v| {
                want.iter().all(|(vin, l)| v.lat.get(vin).is_some_and(|x| (x - l).abs() < 1e-6))
            })
            .await;
        r.map_err(|e| e.context(format!("wanted {want:?}, shown {:?}", self.lat)))
    }
}

/// Each car's latitude in the committed state, as A's API answers it.
async fn committed(a: &TestApp, token: &str, vins: &[String]) -> anyhow::Result<HashMap<String, f64>> {
    let mut out = HashMap::new();
    for vin in vins {
        let (_, v) = get(a, token, &format!("/api/v1/vehicles/{vin}")).await?;
        out.insert(vin.clone(), v["state"]["lat"].as_f64().ok_or_else(|| anyhow::anyhow!("{vin} has no state: {v}"))?);
    }
    Ok(out)
}

/// Publishes `PER_CAR` samples to each car, starting `start` seconds ago, one second apart;
/// answers each car's last latitude.
async fn publish(port: u16, vins: &[String], phase: usize) -> anyhow::Result<HashMap<String, f64>> {
    let mut p = Publisher::connect_to("127.0.0.1", port).await?;
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(60);
    let mut last = HashMap::new();
    for i in 0..PER_CAR {
        for (c, vin) in vins.iter().enumerate() {
            let lat = 30.0 + phase as f64 * 0.01 + c as f64 * 0.001 + i as f64 * 1e-5;
            let ts = t0 + chrono::Duration::milliseconds((i * 1000 + c) as i64);
            p.json(vin, &json!({"ts": ts.to_rfc3339(), "lat": lat, "lon": 122.1034, "soc_pct": 90.0, "speed_kmh": 0.0, "charging": false})).await?;
            last.insert(vin.clone(), lat);
        }
    }
    Ok(last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_work_and_lose_nothing_when_one_is_killed() -> anyhow::Result<()> {
    let broker = Broker::start();
    let group = format!("cl{}", rand::random::<u32>());
    let port = broker.port;
    let share = group.clone();
    let a = TestApp::spawn_with(Db::Postgres, move |s| {
        s.services = Services { ingest: true, dispatch: false, web: true };
        s.mqtt = MqttTarget::External(MqttUrl {
            host: "127.0.0.1".into(),
            port,
            username: None,
            password: None,
            tls: false,
        });
        s.mqtt_share_group = Some(share);
    })
    .await;
    let child = |name: &str, args: &[&str]| {
        let group = group.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        start_configured(&a.db.url, &format!("{name}-{group}"), port, move |c| {
            c.args(&args).env("FLEET_MQTT_SHARE_GROUP", &group).env("FLEET_DISPATCH_BATCH_INTERVAL_MS", "200");
        })
    };
    // B first, so that it leads dispatch; C joins as the standby.
    let (mut b, b_base) = child("b", &["--services", "ingest,dispatch"]);
    a.wait_until("B leads dispatch", || async { Ok(metric(&a.http, &b_base, "fleet_dispatch_leader").await? == 1.0) })
        .await?;
    let (mut c, c_base) = child("c", &["--cluster"]);

    // B serves no API, only the operations routes; its health counts its broker connection.
    let r = a.http.get(format!("{b_base}/api/v1/units")).send().await?;
    assert_eq!(r.status(), 404, "an instance without web serves no API");
    a.wait_until("B connected to the broker", || async {
        Ok(a.http.get(format!("{b_base}/healthz")).send().await?.status() == 200)
    })
    .await?;
    let health: Value = a.http.get(format!("{b_base}/healthz")).send().await?.json().await?;
    assert_eq!(health["mqtt"], "ok", "{health}");

    let w = world(&a, 4).await?;
    let vins: Vec<String> = w.cars.iter().map(|c| c.0.clone()).collect();
    let live = |base: &str| format!("{}/api/v1/live?token={}", base.replacen("http://", "ws://", 1), w.admin);
    let mut view_a = View::open(&live(&a.base)).await?;
    let mut view_c = View::open(&live(&c_base)).await?;

    // Phase 1: every instance ingests a share, and both web instances show every car.
    let sent = publish(port, &vins, 1).await?;
    let total = (PER_CAR * vins.len()) as i64;
    a.wait_until("phase 1 stored", || async { Ok(a.store.telemetry().count(None).await? == total) }).await?;
    let (by_b, by_c) = (
        metric(&a.http, &b_base, "fleet_ingest_messages_committed_total").await?,
        metric(&a.http, &c_base, "fleet_ingest_messages_committed_total").await?,
    );
    assert!(
        by_b > 0.0 && by_c > 0.0 && by_b + by_c < total as f64,
        "the stream is shared: B {by_b}, C {by_c} of {total}"
    );
    // The stored state is written a moment after the samples.
    let _ = a
        .wait_until("the stored state at the newest samples", || async {
            Ok(committed(&a, &w.admin, &vins).await.is_ok_and(|now| same(&now, &sent)))
        })
        .await;
    let now = committed(&a, &w.admin, &vins).await?;
    assert!(same(&now, &sent), "the newest samples are the committed state: {now:?} for {sent:?}");
    view_a.shows("A", &sent).await?;
    view_c.shows("C", &sent).await?;
    assert_eq!(metric(&a.http, &c_base, "fleet_dispatch_leader").await?, 0.0, "one leader");

    // The leader dies in the middle of things.
    Command::new("kill").args(["-KILL", &b.id().to_string()]).status()?;
    b.wait()?;

    // Phase 2: C takes over dispatch; an order made on A is assigned by C and A's feed hears
    // of it; what A and C commit shows on both feeds.
    let sent2 = publish(port, &vins, 2).await?;
    let (status, order) = post(&a, &w.unit2, "/api/v1/orders", order_body("u2", 2)).await?;
    anyhow::ensure!(status == 201, "creating an order: {status} {order}");
    let id = order["id"].as_str().unwrap().to_owned();
    a.wait_until("C leads dispatch", || async { Ok(metric(&a.http, &c_base, "fleet_dispatch_leader").await? == 1.0) })
        .await?;
    a.wait_until("the order assigned by the new leader", || async {
        let (_, o) = get(&a, &w.admin, &format!("/api/v1/orders/{id}")).await?;
        Ok(o["status"] == "assigned")
    })
    .await?;
    view_a
        .until("the assignment on A's feed", |v| {
            v.orders.iter().any(|o| o["id"] == id.as_str() && o["status"] == "assigned")
        })
        .await?;
    view_c
        .until("the assignment on C's feed", |v| {
            v.orders.iter().any(|o| o["id"] == id.as_str() && o["status"] == "assigned")
        })
        .await?;
    // B's share of phase 2 went to its session, which the broker holds for it: a survivor
    // drains it, so everything lands without B, exactly once.
    a.wait_until("phase 2 stored without B", || async { Ok(a.store.telemetry().count(None).await? >= 2 * total) })
        .await?;
    assert_eq!(a.store.telemetry().count(None).await?, 2 * total, "nothing doubled");
    // The stored state is written a moment after the samples.
    let _ = a
        .wait_until("the stored state at the newest samples", || async {
            Ok(committed(&a, &w.admin, &vins).await.is_ok_and(|now| same(&now, &sent2)))
        })
        .await;
    let now = committed(&a, &w.admin, &vins).await?;
    assert!(same(&now, &sent2), "the newest samples are the committed state: {now:?} for {sent2:?}");
    view_a.shows("A", &sent2).await?;
    view_c.shows("C", &sent2).await?;

    // B comes back under its own client id, asks for its session back and ingests its share
    // of phase 3 itself.
    let (b2, b2_base) = child("b", &["--services", "ingest,dispatch"]);
    a.wait_until("B holds its own session again", || async {
        let r = a.http.get(format!("{b2_base}/healthz")).send().await?;
        Ok(r.status() == 200)
    })
    .await?;
    let sent3 = publish(port, &vins, 3).await?;
    a.wait_until("phase 3 stored", || async { Ok(a.store.telemetry().count(None).await? >= 3 * total) }).await?;
    assert_eq!(a.store.telemetry().count(None).await?, 3 * total, "nothing doubled");
    assert!(
        metric(&a.http, &b2_base, "fleet_ingest_messages_committed_total").await? > 0.0,
        "B ingests its share again"
    );
    view_a.shows("A", &sent3).await?;
    view_c.shows("C", &sent3).await?;
    assert!(c.running(), "C kept running");
    drop((b2, c));
    Ok(())
}
