//! Black-box test harness: `TestApp::spawn` starts the real fleetd `App` on 127.0.0.1:0
//! against the real Mosquitto on this machine and a fresh database (a temporary SQLite file,
//! or a new PostgreSQL database per test), and talks to it over real sockets.
//!
//! A service that is not running makes the test fail loudly with what to start; nothing is
//! skipped. `tests/run` starts (or installs) the services first.

pub mod browser;
pub mod live;
pub mod openapi;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use fleet_storage::Store;
use fleetd::App;
pub use fleetd::Settings;
use fleetd::config::{MqttTarget, MqttUrl};
use rand::Rng;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::time::Instant;

/// Password of the `admin` user in every test app.
pub const ADMIN_PASSWORD: &str = "admin-pass";
/// The Mosquitto the tests use (started by `tests/run`).
pub const MQTT_HOST: &str = "127.0.0.1";
pub const MQTT_PORT: u16 = 1883;
/// A PostgreSQL database to connect to when creating and dropping per-test databases.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long `wait_until` polls before failing.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);

/// Which back end a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Defines one test per back end: `both!(name, |app: TestApp| async move { …; Ok(()) });`
#[macro_export]
macro_rules! both {
    ($name:ident, |$app:ident : TestApp| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::TestApp::spawn($crate::Db::Sqlite).await;
                let r: anyhow::Result<()> = $body.await;
                r.unwrap();
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::TestApp::spawn($crate::Db::Postgres).await;
                let r: anyhow::Result<()> = $body.await;
                r.unwrap();
            }
        }
    };
}

/// Like `both!`, with the settings adjusted by a closure `|s: &mut Settings| …` first.
#[macro_export]
macro_rules! both_with {
    ($name:ident, $settings:expr, |$app:ident : TestApp| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::TestApp::spawn_with($crate::Db::Sqlite, $settings).await;
                let r: anyhow::Result<()> = $body.await;
                r.unwrap();
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::TestApp::spawn_with($crate::Db::Postgres, $settings).await;
                let r: anyhow::Result<()> = $body.await;
                r.unwrap();
            }
        }
    };
}

/// A fresh database for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    sqlite_dir: Option<PathBuf>,
}

fn random_tag() -> String {
    let mut rng = rand::rng();
    (0..12).map(|_| (b'a' + rng.random_range(0..26)) as char).collect()
}

impl TestDb {
    pub async fn create(db: Db) -> Self {
        match db {
            Db::Sqlite => {
                let dir = std::env::temp_dir().join(format!("fleet-test-{}", random_tag()));
                std::fs::create_dir_all(&dir).expect("creating a temporary directory");
                Self { url: format!("sqlite://{}/fleet.db", dir.display()), pg_name: None, sqlite_dir: Some(dir) }
            }
            Db::Postgres => {
                let name = format!("fleet_test_{}", random_tag());
                let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is required at {PG_ADMIN_URL} ({e}); run tests/run, which starts it")
                });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("creating the test database");
                Self {
                    url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    pg_name: Some(name),
                    sqlite_dir: None,
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.pg_name.take() {
            // Drop runs inside the test's runtime: do the async work on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

/// A running fleetd for one test.
pub struct TestApp {
    pub http: reqwest::Client,
    pub base: String,
    pub store: Store,
    pub settings: Settings,
    pub client_id: String,
    pub db: TestDb,
    app: Option<App>,
}

/// Settings for a test app: free HTTP port, the given database, the test broker, a client id
/// of its own.
pub fn test_settings(db_url: &str, client_id: &str) -> Settings {
    let mqtt = MqttTarget::External(MqttUrl {
        host: MQTT_HOST.into(),
        port: MQTT_PORT,
        username: None,
        password: None,
        tls: false,
    });
    let mut s = Settings::new("127.0.0.1:0".parse().expect("valid address"), db_url, mqtt);
    s.mqtt_client_id = client_id.to_owned();
    s.admin_password = Some(ADMIN_PASSWORD.into());
    s.shutdown_grace = Duration::from_secs(10);
    s
}

/// Fails loudly when the broker is not there.
fn require_broker() {
    let addr: SocketAddr = format!("{MQTT_HOST}:{MQTT_PORT}").parse().expect("valid address");
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        panic!("Mosquitto is required at {addr}; run tests/run, which starts it");
    }
}

impl TestApp {
    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    /// Spawns with settings adjusted by `f`.
    pub async fn spawn_with(db: Db, f: impl FnOnce(&mut Settings)) -> Self {
        require_broker();
        let db = TestDb::create(db).await;
        let client_id = format!("fleetd-test-{}", random_tag());
        let mut settings = test_settings(&db.url, &client_id);
        f(&mut settings);
        let app = App::start(settings.clone()).await.expect("starting fleetd");
        let base = format!("http://{}", app.http_addr());
        let store = app.store().clone();
        let me = Self { http: reqwest::Client::new(), base, store, settings, client_id, db, app: Some(app) };
        me.wait_until("MQTT connected", || async { Ok(me.health_ok().await) })
            .await
            .expect("fleetd connects to the broker");
        me
    }

    /// The running app's event bus.
    pub fn bus(&self) -> &fleet_bus::Bus {
        self.app.as_ref().expect("fleetd is running").bus()
    }

    /// The broker address fleetd reports: the embedded broker's public address when it
    /// runs one.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.app.as_ref().expect("fleetd is running").mqtt_addr()
    }

    /// The live feed's WebSocket URL with a token and extra query (`&bbox=…`).
    pub fn live_url(&self, token: &str, query: &str) -> String {
        format!("{}/api/v1/live?token={token}{query}", self.base.replacen("http://", "ws://", 1))
    }

    /// Another fleetd on this app's database (another instance of a cluster): its own HTTP
    /// port and MQTT client id, the same settings otherwise. The database stays owned by
    /// `self`.
    pub async fn sibling(&self) -> Self {
        let client_id = format!("fleetd-test-{}", random_tag());
        let mut settings = self.settings.clone();
        settings.mqtt_client_id = client_id.clone();
        settings.http_addr = "127.0.0.1:0".parse().expect("valid address");
        let app = App::start(settings.clone()).await.expect("starting a sibling fleetd");
        let base = format!("http://{}", app.http_addr());
        let store = app.store().clone();
        let db = TestDb { url: self.db.url.clone(), pg_name: None, sqlite_dir: None };
        let me = Self { http: reqwest::Client::new(), base, store, settings, client_id, db, app: Some(app) };
        me.wait_until("MQTT connected", || async { Ok(me.health_ok().await) })
            .await
            .expect("the sibling connects to the broker");
        me
    }

    /// Where the GB/T 32960 gateway listens, when the settings turn it on.
    pub fn gbt32960_addr(&self) -> Option<SocketAddr> {
        self.app.as_ref().and_then(App::gbt32960_addr)
    }

    /// Where the JT/T 808 gateway listens, when the settings turn it on.
    pub fn jt808_addr(&self) -> Option<SocketAddr> {
        self.app.as_ref().and_then(App::jt808_addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Where `/metrics` has a listener of its own, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.app.as_ref().and_then(|a| a.metrics_addr())
    }

    async fn health_ok(&self) -> bool {
        matches!(self.http.get(self.url("/healthz")).send().await, Ok(r) if r.status() == 200)
    }

    /// Stops fleetd gracefully (signals, waits for in-flight work).
    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await.expect("fleetd stops cleanly within its grace period");
        }
    }

    /// Starts fleetd again on the same database and MQTT session.
    pub async fn restart(&mut self) {
        self.stop().await;
        let app = App::start(self.settings.clone()).await.expect("restarting fleetd");
        self.base = format!("http://{}", app.http_addr());
        self.store = app.store().clone();
        self.app = Some(app);
        self.wait_until("MQTT connected", || async { Ok(self.health_ok().await) }).await.expect("fleetd reconnects");
    }

    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let r = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "login as {username}: {}", r.status());
        let body: Value = r.json().await?;
        body["token"].as_str().map(str::to_owned).context("login answer has a token")
    }

    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await.expect("admin logs in")
    }

    /// Registers a vehicle through the API (as admin); answers the created vehicle.
    pub async fn register_vehicle(&self, vin: &str) -> anyhow::Result<Value> {
        self.register_vehicle_with(vin, json!({})).await
    }

    /// Registers a vehicle with `extra` fields besides the usual ones (e.g. a `terminal_phone`).
    pub async fn register_vehicle_with(&self, vin: &str, extra: Value) -> anyhow::Result<Value> {
        let token = self.admin_token().await;
        let plate = format!("浙L{}", random_plate_tail());
        let mut body = json!({"vin": vin, "plate": plate, "model": "BYD Han EV", "seats": 5, "battery_kwh": 76.9, "consumption_kwh_per_100km": 15.0});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let r = self.http.post(self.url("/api/v1/vehicles")).bearer_auth(token).json(&body).send().await?;
        anyhow::ensure!(
            r.status() == 201 || r.status() == 200,
            "registering {vin}: {} {}",
            r.status(),
            r.text().await?
        );
        Ok(r.json().await?)
    }

    /// Polls `check` until it answers true or the deadline passes.
    pub async fn wait_until<F, Fut>(&self, what: &str, mut check: F) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        let deadline = Instant::now() + DEFAULT_DEADLINE;
        loop {
            if check().await? {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until exactly `n` samples of `vin` are stored (fails if more appear).
    pub async fn wait_for_samples(&self, vin: &str, n: i64) -> anyhow::Result<()> {
        self.wait_until(&format!("{n} samples of {vin}"), || async {
            let c = self.store.telemetry().count(Some(vin)).await?;
            anyhow::ensure!(c <= n, "{c} samples of {vin} stored, more than {n}");
            Ok(c == n)
        })
        .await
    }

    /// Waits until the stored state of `vin` passes `check`, and answers it. The state is
    /// written a moment after its samples (ingest's state writer), so a test polls for it.
    pub async fn wait_for_state(
        &self,
        vin: &str,
        what: &str,
        check: impl Fn(&fleet_domain::VehicleState) -> bool,
    ) -> anyhow::Result<fleet_domain::VehicleState> {
        let seen = std::sync::Mutex::new(None);
        let waited = self
            .wait_until(&format!("the state of {vin}: {what}"), || async {
                let state = self.store.telemetry().state(vin).await?;
                let ok = state.as_ref().is_some_and(&check);
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = state;
                Ok(ok)
            })
            .await;
        let last = seen.into_inner().unwrap_or_else(|e| e.into_inner());
        waited.with_context(|| format!("last state seen: {last:?}"))?;
        last.context("a state was seen")
    }

    /// The dead letters of one VIN, newest first.
    pub async fn dead_letters_of(&self, vin: &str) -> anyhow::Result<Vec<fleet_domain::DeadLetter>> {
        let all = self.store.dead_letters().recent(100_000, None).await?;
        Ok(all.into_iter().filter(|d| d.vin.as_deref() == Some(vin)).collect())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown_token().cancel();
        }
        // Forget fleetd's persistent session so the broker stops queueing for it.
        let id = self.client_id.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), clear_session(&id)).await.ok() })
        })
        .join();
    }
}

/// Connects once with `client_id` and a clean session, which discards the broker's stored
/// session for it.
pub async fn clear_session(client_id: &str) {
    let mut o = MqttOptions::new(client_id, MQTT_HOST, MQTT_PORT);
    o.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(o, 10);
    while let Ok(ev) = eventloop.poll().await {
        if matches!(ev, Event::Incoming(Packet::ConnAck(_))) {
            let _ = client.disconnect().await;
            let _ = eventloop.poll().await;
            break;
        }
    }
}

/// A random valid VIN (tests share the broker: every test uses VINs of its own).
pub fn random_vin() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..14).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("LTS{tail}")
}

fn random_plate_tail() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("D{tail}")
}

/// An MQTT publisher for tests: QoS 1 publishes that return once the broker acknowledged them.
pub struct Publisher {
    client: AsyncClient,
    acks: tokio::sync::mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    pub async fn connect() -> anyhow::Result<Self> {
        require_broker();
        Self::connect_to(MQTT_HOST, MQTT_PORT).await
    }

    /// A publisher on another broker (a test's private one).
    pub async fn connect_to(host: &str, port: u16) -> anyhow::Result<Self> {
        let mut o = MqttOptions::new(format!("test-pub-{}", random_tag()), host, port);
        o.set_clean_session(true).set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(o, 1000);
        let (tx, acks) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Ok(Self { client, acks, task })
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK.
    pub async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.into()).await?;
        tokio::time::timeout(Duration::from_secs(10), self.acks.recv()).await.context("no PUBACK within 10 s")?;
        Ok(())
    }

    pub async fn json(&mut self, vin: &str, payload: &Value) -> anyhow::Result<()> {
        self.publish(&format!("fleet/v1/vehicles/{vin}/telemetry"), serde_json::to_vec(payload)?).await
    }

    pub async fn gbt(&mut self, vin: &str, frame: Vec<u8>) -> anyhow::Result<()> {
        self.publish(&format!("fleet/v1/vehicles/{vin}/gbt32960"), frame).await
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
