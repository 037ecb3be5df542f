//! fleetd's own broker session over TLS (`FLEET_MQTT_URL=mqtts://…`) against the private
//! Mosquitto's TLS listener: with the broker's CA it ingests what vehicles and `fleetd
//! simulate` publish over TLS; with another CA, or without the client certificate a broker
//! asks for, it stays up, says TLS once in its log and answers `/healthz` 503; unusable TLS
//! settings are configuration errors (exit 64) naming the variable.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use fleet_broker::MqttTls;
use fleet_tests::{Db, TestApp};
use fleetd::config::MqttTarget;
use reqwest::StatusCode;
use tokio::time::Instant;

use super::broker::{
    Broker, DEADLINE, FLEETD_PASSWORD, FLEETD_USER, login_until, make_certs, make_client_cert, random_tag,
};
use super::{fleetd_bin, issue_secret, sample, telemetry};

/// What fleetd logs, once, when TLS to the broker fails.
const TLS_FAILURE: &str = "TLS to the MQTT broker failed";

/// A fleetd (test app) on the broker's TLS listener; it has connected when this returns.
async fn app_over_tls(broker: &Broker, db: Db, tls: MqttTls) -> TestApp {
    let url = broker.fleetd_tls_url();
    TestApp::spawn_with(db, move |s| {
        s.mqtt = MqttTarget::External(url);
        s.mqtt_tls = Some(tls);
    })
    .await
}

/// A vehicle's QoS 1 publish over TLS, as a terminal that trusts the broker's CA makes it.
async fn publish_over_tls(broker: &Broker, vin: &str, secret: &str, ts_ms: i64) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.tls_port.to_string(), "-q", "1", "-u", vin, "-P", secret])
        .args(["-t", &telemetry(vin), "-m", &String::from_utf8(sample(ts_ms))?])
        .arg("--cafile")
        .arg(broker.ca())
        .output()
        .await
        .context("running mosquitto_pub (Debian package mosquitto-clients)")?;
    anyhow::ensure!(out.status.success(), "publish over TLS: {out:?}");
    Ok(())
}

/// fleetd on `mqtts://` with the broker's CA stores a sample a vehicle publishes over TLS, then
/// those `fleetd simulate --mqtt-url mqtts://…` publishes over TLS as that vehicle.
async fn fleetd_and_the_simulator_speak_tls(db: Db) -> anyhow::Result<()> {
    let broker = Broker::start().await?;
    let app = app_over_tls(&broker, db, MqttTls::load(Some(&broker.ca()), None)?).await;
    // The simulator's first generated car, registered so that fleetd stores its samples.
    let vin = fleet_sim::sim_vins(1)[0].to_string();
    app.register_vehicle(&vin).await?;
    let (_, secret) = issue_secret(&app, &vin).await?;
    broker.apply_registry(&app).await?;
    login_until(broker.port, (&vin, &secret), "the vehicle's secret works", Result::is_ok).await?;
    publish_over_tls(&broker, &vin, &secret, chrono::Utc::now().timestamp_millis() - 60_000).await?;
    app.wait_for_samples(&vin, 1).await?;

    // The issued secret is URL-safe base64: it goes into the URL as it is.
    let url = format!("mqtts://{vin}:{secret}@127.0.0.1:{}", broker.tls_port);
    let out = tokio::process::Command::new(fleetd_bin())
        .args(["simulate", "--vehicles", "1", "--interval-s", "0.2", "--duration-s", "2", "--gbt32960-share", "0"])
        .arg("--mqtt-url")
        .arg(&url)
        .arg("--mqtt-ca-file")
        .arg(broker.ca())
        .env_remove("FLEET_MQTT_URL")
        .env_remove("FLEET_SIM_DATABASE_URL")
        .env_remove("FLEET_MQTT_CLIENT_CERT")
        .env_remove("FLEET_MQTT_CLIENT_KEY")
        .output()
        .await
        .context("running fleetd simulate")?;
    assert!(out.status.success(), "fleetd simulate over TLS: {out:?}");
    app.wait_until("the simulator's samples", || async { Ok(app.store.telemetry().count(Some(&vin)).await? > 1) })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetd_and_the_simulator_speak_tls_sqlite() {
    fleetd_and_the_simulator_speak_tls(Db::Sqlite).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetd_and_the_simulator_speak_tls_postgres() {
    fleetd_and_the_simulator_speak_tls(Db::Postgres).await.unwrap();
}

/// A `fleetd run` process, killed on drop.
struct Fleetd {
    child: Child,
    http: String,
    log: PathBuf,
}

impl Fleetd {
    /// `fleetd run` on the broker's TLS listener as fleetd's account, with `tls` (variable,
    /// file) set; its log goes to a file in the broker's folder.
    fn start(broker: &Broker, tls: &[(&str, &Path)]) -> anyhow::Result<Self> {
        let log = broker.dir.join(format!("fleetd-{}.log", random_tag()));
        let url = format!("mqtts://{FLEETD_USER}:{FLEETD_PASSWORD}@127.0.0.1:{}", broker.tls_port);
        let mut cmd = Command::new(fleetd_bin());
        cmd.args(["run", "--http-addr", "127.0.0.1:0"])
            .env("FLEET_DATABASE_URL", format!("sqlite://{}/fleetd-{}.db", broker.dir.display(), random_tag()))
            .env("FLEET_MQTT_URL", url)
            .env("FLEET_MQTT_CLIENT_ID", format!("fleetd-tls-{}", random_tag()));
        for var in ["FLEET_MQTT_CA_FILE", "FLEET_MQTT_CLIENT_CERT", "FLEET_MQTT_CLIENT_KEY", "FLEET_ADMIN_PASSWORD"] {
            cmd.env_remove(var);
        }
        for (var, file) in tls {
            cmd.env(var, file);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(&log)?).spawn()?;
        let stdout = child.stdout.take().context("fleetd's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads stdout to its end, so that fleetd never writes to a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("http listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let mut me = Self { child, http: String::new(), log };
        me.http = rx.recv_timeout(DEADLINE).with_context(|| format!("no http listening line: {}", me.log()))?;
        Ok(me)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// fleetd stays up, logs the TLS failure once however often it retries, and `/healthz`
    /// answers 503 with the broker down.
    async fn stays_down_on_tls(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        while !self.log().contains(TLS_FAILURE) {
            anyhow::ensure!(self.child.try_wait()?.is_none(), "fleetd exited: {}", self.log());
            anyhow::ensure!(Instant::now() < deadline, "no TLS failure logged: {}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Several retries (100 ms, 200 ms, 400 ms, …) later: still up, still one line.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        anyhow::ensure!(self.child.try_wait()?.is_none(), "fleetd stays up: {}", self.log());
        let r = reqwest::get(format!("{}/healthz", self.http)).await?;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = r.json().await?;
        assert_eq!(body["mqtt"], "down", "{body}");
        let log = self.log();
        assert_eq!(log.matches(TLS_FAILURE).count(), 1, "one line for a failure that repeats: {log}");
        Ok(())
    }
}

impl Drop for Fleetd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A broker certificate that does not chain to FLEET_MQTT_CA_FILE: fleetd stays up and down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_from_another_ca_keeps_fleetd_down_saying_tls() {
    let r: anyhow::Result<()> = async {
        let broker = Broker::start().await?;
        let other = broker.dir.join("other-ca");
        make_certs(&other, "someone else's CA")?;
        let mut fleetd = Fleetd::start(&broker, &[("FLEET_MQTT_CA_FILE", &other.join("ca.crt"))])?;
        fleetd.stays_down_on_tls().await?;
        assert!(fleetd.log().contains("UnknownIssuer"), "the log says why: {}", fleetd.log());
        Ok(())
    }
    .await;
    r.unwrap();
}

/// A TLS listener with `require_certificate true`: fleetd with a client certificate of the
/// broker's CA connects; without one it stays down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_asking_for_a_client_certificate_takes_fleetds() {
    let r: anyhow::Result<()> = async {
        let broker = Broker::start_with(true).await?;
        let certs = broker.dir.join("certs");
        make_client_cert(&certs, "fleetd")?;
        let (cert, key) = (certs.join("client.crt"), certs.join("client.key"));
        let tls = MqttTls::load(Some(&broker.ca()), Some((&cert, &key)))?;
        let app = app_over_tls(&broker, Db::Sqlite, tls).await;
        let health = app.http.get(app.url("/healthz")).send().await?.status();
        assert_eq!(health, StatusCode::OK, "connected with the client certificate");

        let mut fleetd = Fleetd::start(&broker, &[("FLEET_MQTT_CA_FILE", &broker.ca())])?;
        fleetd.stays_down_on_tls().await?;
        Ok(())
    }
    .await;
    r.unwrap();
}

/// Runs `fleetd ARGS` with an `mqtts://` URL and the given variables; answers the exit code and
/// stderr.
fn fleetd_with(args: &[&str], env: &[(&str, &Path)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(fleetd_bin());
    cmd.args(args).env("FLEET_MQTT_URL", "mqtts://fleetd:secret@127.0.0.1:1");
    for var in ["FLEET_DATABASE_URL", "FLEET_MQTT_CA_FILE", "FLEET_MQTT_CLIENT_CERT", "FLEET_MQTT_CLIENT_KEY"] {
        cmd.env_remove(var);
    }
    for (var, file) in env {
        cmd.env(var, file);
    }
    let out = cmd.output().expect("running fleetd");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Unusable TLS settings stop `run` and `simulate` at start: exit 64, one line naming the
/// variable.
#[test]
fn unusable_tls_settings_exit_64_naming_the_variable() {
    let dir = std::env::temp_dir().join(format!("fleet-tls-config-{}", random_tag()));
    make_certs(&dir, "fleet test CA").unwrap();
    let (ca, missing, garbage) = (dir.join("ca.crt"), dir.join("missing.pem"), dir.join("garbage.pem"));
    std::fs::write(&garbage, "not PEM at all\n").unwrap();
    let cases: [(&[(&str, &Path)], &str); 5] = [
        (&[("FLEET_MQTT_CA_FILE", &ca), ("FLEET_MQTT_CLIENT_CERT", &ca)], "FLEET_MQTT_CLIENT_KEY"),
        (&[("FLEET_MQTT_CLIENT_KEY", &ca)], "FLEET_MQTT_CLIENT_CERT"),
        (&[("FLEET_MQTT_CA_FILE", &missing)], "FLEET_MQTT_CA_FILE"),
        (&[("FLEET_MQTT_CA_FILE", &garbage)], "FLEET_MQTT_CA_FILE"),
        (
            &[("FLEET_MQTT_CA_FILE", &ca), ("FLEET_MQTT_CLIENT_CERT", &ca), ("FLEET_MQTT_CLIENT_KEY", &garbage)],
            "FLEET_MQTT_CLIENT_KEY",
        ),
    ];
    for (command, args) in [("run", &["run", "--http-addr", "127.0.0.1:0"][..]), ("simulate", &["simulate"][..])] {
        for (env, variable) in cases {
            let (code, stderr) = fleetd_with(args, env);
            assert_eq!(code, Some(64), "{command} {env:?}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(variable), "{command} {env:?} names {variable}: {stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
