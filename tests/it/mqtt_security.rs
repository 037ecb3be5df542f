//! MQTT security (issue 8, item 2) on a real Mosquitto running the shipped configuration
//! (`deploy/mosquitto/mosquitto.conf` and `acl`, ports and paths moved to a temporary folder):
//! vehicles log in with the secrets the API issues, through the password file `fleetd
//! mqtt-passwd` writes; a vehicle cannot publish as another; wrong, unknown and anonymous
//! logins are refused; a replaced secret stops working once the file is regenerated and the
//! broker reloaded; the TLS listener takes vehicles that trust its CA.
//!
//! The embedded broker is held to the same rules in `embedded` (issue 17, item 3).
//!
//! Vehicles' TLS is tested with `mosquitto_pub --cafile` (Debian's mosquitto-clients), as a
//! terminal would connect; fleetd's own session over TLS (`mqtts://`) in `tls`.

pub(crate) mod broker;
mod embedded;
mod tls;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use broker::{
    Broker, Client, DEADLINE, FLEETD_PASSWORD, FLEETD_USER, login, login_until, make_certs, random_tag, refused,
};
use fleet_tests::{Db, TestApp, both, random_vin};
use fleetd::config::MqttTarget;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A fleetd (test app) connected to `broker` as its own account.
async fn app_on(broker: &Broker, db: Db, share_group: Option<&str>) -> TestApp {
    let url = broker.fleetd_url();
    let group = share_group.map(str::to_owned);
    TestApp::spawn_with(db, move |s| {
        s.mqtt = MqttTarget::External(url);
        s.mqtt_share_group = group;
    })
    .await
}

/// Issues a vehicle's MQTT secret through the API as admin: (username, password).
async fn issue_secret(app: &TestApp, vin: &str) -> anyhow::Result<(String, String)> {
    let token = app.admin_token().await;
    let r = app.http.post(app.url(&format!("/api/v1/vehicles/{vin}/mqtt-secret"))).bearer_auth(token).send().await?;
    anyhow::ensure!(r.status() == StatusCode::OK, "issuing a secret for {vin}: {}", r.status());
    let b: Value = r.json().await?;
    let user = b["username"].as_str().context("username")?.to_owned();
    let pass = b["password"].as_str().context("password")?.to_owned();
    Ok((user, pass))
}

fn telemetry(vin: &str) -> String {
    format!("fleet/v1/vehicles/{vin}/telemetry")
}

/// A one-sample JSON payload at `ts_ms`.
fn sample(ts_ms: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"ts": ts_ms, "lat": 30.0123, "lon": 122.1034, "soc_pct": 80.0})).unwrap()
}

/// Vehicle A may publish under its own VIN only: its own samples are stored; what it sends
/// under B's VIN (JSON or GB/T) is refused by the broker itself (its log says so, an MQTT 5
/// client is told 0x87 not authorized, fleetd's account never receives it), so nothing is
/// stored for B and there is no dead letter either. Then B's own account works.
async fn a_vehicle_cannot_publish_as_another(db: Db, share_group: Option<&str>) -> anyhow::Result<()> {
    let broker = Broker::start().await?;
    let app = app_on(&broker, db, share_group).await;
    let (a, b) = (random_vin(), random_vin());
    app.register_vehicle(&a).await?;
    app.register_vehicle(&b).await?;
    let (user_a, pass_a) = issue_secret(&app, &a).await?;
    let (user_b, pass_b) = issue_secret(&app, &b).await?;
    assert_eq!((user_a.as_str(), user_b.as_str()), (a.as_str(), b.as_str()), "username = VIN");
    broker.apply_registry(&app).await?;
    login_until(broker.port, (&a, &pass_a), "A's secret works", Result::is_ok).await?;

    // A watcher on fleetd's account sees what the broker lets through to fleetd.
    let mut watcher = Client::connect(broker.port, FLEETD_USER, FLEETD_PASSWORD).await?;
    watcher.subscribe("fleet/v1/vehicles/+/telemetry").await?;
    watcher.subscribe("fleet/v1/vehicles/+/gbt32960").await?;

    let t0 = chrono::Utc::now().timestamp_millis() - 60_000;
    let mut va = Client::connect(broker.port, &a, &pass_a).await?;
    va.publish(&telemetry(&a), sample(t0)).await?;
    app.wait_for_samples(&a, 1).await?;

    // MQTT 3.1.1 has no way to refuse a publish: the broker acknowledges and drops it.
    va.publish(&telemetry(&b), sample(t0 + 1_000)).await?;
    va.publish(&format!("fleet/v1/vehicles/{b}/gbt32960"), b"##\x02\xfe forged".to_vec()).await?;
    // A barrier after the forgeries, on A's own topic: the broker hands fleetd (and the
    // watcher) messages in order, so once it is stored, a forgery let through would be too.
    va.publish(&telemetry(&a), sample(t0 + 2_000)).await?;
    app.wait_for_samples(&a, 2).await?;
    let seen = [watcher.next_message().await?.0, watcher.next_message().await?.0];
    assert_eq!(seen, [telemetry(&a), telemetry(&a)], "fleetd's account receives A's own messages only");
    assert_eq!(app.store.telemetry().count(Some(&b)).await?, 0, "nothing stored for B");
    assert_eq!(app.store.dead_letters().count().await?, 0, "the forgeries never reached fleetd");
    let denied = format!("'fleet/v1/vehicles/{b}/telemetry'");
    app.wait_until("the broker logs the denied publish", || async {
        Ok(broker.log().lines().any(|l| l.contains("Denied PUBLISH") && l.contains(&denied)))
    })
    .await?;

    // An MQTT 5 client is told: PUBACK reason 0x87, not authorized.
    assert_eq!(
        publish_v5(broker.port, &a, &pass_a, &telemetry(&b), sample(t0 + 3_000)).await?,
        rumqttc::v5::mqttbytes::v5::PubAckReason::NotAuthorized
    );
    assert_eq!(
        publish_v5(broker.port, &a, &pass_a, &telemetry(&a), sample(t0 + 4_000)).await?,
        rumqttc::v5::mqttbytes::v5::PubAckReason::Success
    );
    app.wait_for_samples(&a, 3).await?;
    assert_eq!(app.store.telemetry().count(Some(&b)).await?, 0);

    // B's topic is open to B itself.
    let mut vb = Client::connect(broker.port, &b, &pass_b).await?;
    vb.publish(&telemetry(&b), sample(t0 + 5_000)).await?;
    app.wait_for_samples(&b, 1).await?;
    assert_eq!(app.store.dead_letters().count().await?, 0);
    Ok(())
}

/// One QoS 1 publish by an MQTT 5 client: the broker's PUBACK reason.
async fn publish_v5(
    port: u16,
    user: &str,
    password: &str,
    topic: &str,
    payload: Vec<u8>,
) -> anyhow::Result<rumqttc::v5::mqttbytes::v5::PubAckReason> {
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    let mut o = rumqttc::v5::MqttOptions::new(format!("{user}-v5-{}", random_tag()), "127.0.0.1", port);
    o.set_credentials(user, password);
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(o, 10);
    client.publish(topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce, false, payload).await?;
    let reason = tokio::time::timeout(DEADLINE, async {
        loop {
            if let rumqttc::v5::Event::Incoming(P5::PubAck(ack)) = eventloop.poll().await? {
                return Ok::<_, anyhow::Error>(ack.reason);
            }
        }
    })
    .await
    .context("no PUBACK")??;
    let _ = client.disconnect().await;
    Ok(reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_cannot_publish_as_another_sqlite() {
    a_vehicle_cannot_publish_as_another(Db::Sqlite, None).await.unwrap();
}

/// On PostgreSQL, with fleetd reading through a shared subscription as instances that split
/// the stream do (the ACL's `$share/…` lines).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_cannot_publish_as_another_postgres_shared_subscription() {
    a_vehicle_cannot_publish_as_another(Db::Postgres, Some("fleet")).await.unwrap();
}

/// Only accounts in the password file get in: a wrong password, an unknown user, a
/// registered vehicle without a secret and an anonymous client are refused. A replaced
/// secret: the old one works until the file is regenerated; after the reload the old one is
/// refused (and a session logged in with it is dropped), the new one works, and fleetd,
/// whose line is written afresh each time, stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_accounts_in_the_password_file_get_in_and_a_replaced_secret_stops_working() {
    let r: anyhow::Result<()> = async {
        let broker = Broker::start().await?;
        let app = app_on(&broker, Db::Sqlite, None).await;
        let (a, b, no_secret) = (random_vin(), random_vin(), random_vin());
        for v in [&a, &b, &no_secret] {
            app.register_vehicle(v).await?;
        }
        let (_, old) = issue_secret(&app, &a).await?;
        let (_, pass_b) = issue_secret(&app, &b).await?;
        broker.apply_registry(&app).await?;
        login_until(broker.port, (&a, &old), "A's secret works", Result::is_ok).await?;

        let p = broker.port;
        assert!(refused(&login(p, Some((&a, &pass_b))).await), "A with B's password");
        assert!(refused(&login(p, Some((&a, &format!("{old}x")))).await), "A with a wrong password");
        assert!(refused(&login(p, Some((&random_vin(), &old))).await), "an unknown VIN");
        assert!(refused(&login(p, Some((&no_secret, &old))).await), "a registered vehicle without a secret");
        assert!(refused(&login(p, Some((&no_secret, ""))).await), "a registered vehicle without a secret, no password");
        assert!(refused(&login(p, Some((FLEETD_USER, "wrong"))).await), "fleetd's user with a wrong password");
        assert!(refused(&login(p, None).await), "anonymous");
        assert!(refused(&login(broker.port, Some(("", ""))).await), "an empty username");

        // Replaced in the registry: the broker goes by its file until it is regenerated.
        let (_, new) = issue_secret(&app, &a).await?;
        assert_ne!(new, old);
        let line = app.store.mqtt_secrets().get(&a).await?.context("A's stored account")?.password_line;
        assert!(
            fleet_web::mosquitto_password_matches(&line, &new) && !line.contains(&new),
            "the stored line is the new secret's hash"
        );
        assert!(login(p, Some((&a, &old))).await.is_ok(), "the old secret works until the file is regenerated");
        let old_session = Client::connect(p, &a, &old).await?;
        let fleetd_session = Client::connect(p, FLEETD_USER, FLEETD_PASSWORD).await?;

        broker.apply_registry(&app).await?;
        login_until(p, (&a, &old), "the old secret refused after the reload", refused).await?;
        tokio::time::timeout(DEADLINE, old_session.closed.cancelled())
            .await
            .context("the session on the old secret is dropped at the reload")?;
        assert!(login(p, Some((&a, &new))).await.is_ok(), "the new secret works");
        assert!(login(p, Some((&b, &pass_b))).await.is_ok(), "B's secret is untouched");
        assert!(!fleetd_session.closed.is_cancelled(), "fleetd's session survives the reload");
        let health = app.http.get(app.url("/healthz")).send().await?.status();
        assert_eq!(health, StatusCode::OK, "fleetd stays connected");
        Ok(())
    }
    .await;
    r.unwrap();
}

/// The TLS listener: a vehicle that trusts the CA publishes over TLS and fleetd (on the
/// loopback listener) stores it; a client with another CA, or speaking plain MQTT to the TLS
/// port, gets nowhere; a wrong password over TLS is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_takes_vehicles_that_trust_its_ca() {
    let r: anyhow::Result<()> = async {
        let broker = Broker::start().await?;
        let app = app_on(&broker, Db::Sqlite, None).await;
        let vin = random_vin();
        app.register_vehicle(&vin).await?;
        let (_, secret) = issue_secret(&app, &vin).await?;
        broker.apply_registry(&app).await?;
        login_until(broker.port, (&vin, &secret), "the vehicle's secret works", Result::is_ok).await?;

        let t0 = chrono::Utc::now().timestamp_millis() - 60_000;
        let pub_tls = |ca: PathBuf, password: String, ts: i64| {
            let (port, vin) = (broker.tls_port, vin.clone());
            async move {
                tokio::process::Command::new("mosquitto_pub")
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                        "-q",
                        "1",
                        "-u",
                        &vin,
                        "-P",
                        &password,
                        "-t",
                        &telemetry(&vin),
                    ])
                    .arg("--cafile")
                    .arg(ca)
                    .arg("-m")
                    .arg(String::from_utf8(sample(ts)).unwrap())
                    .output()
                    .await
                    .context("running mosquitto_pub (Debian package mosquitto-clients)")
            }
        };
        let out = pub_tls(broker.ca(), secret.clone(), t0).await?;
        assert!(out.status.success(), "publish over TLS: {out:?}");
        app.wait_for_samples(&vin, 1).await?;

        let other_ca = broker.dir.join("other-ca");
        make_certs(&other_ca, "someone else's CA")?;
        let out = pub_tls(other_ca.join("ca.crt"), secret.clone(), t0 + 1_000).await?;
        assert!(!out.status.success(), "a broker certificate from an unknown CA is refused: {out:?}");
        let out = pub_tls(broker.ca(), format!("{secret}x"), t0 + 2_000).await?;
        assert_eq!(out.status.code(), Some(5), "a wrong password over TLS: CONNACK 5: {out:?}");
        let plain = tokio::time::timeout(Duration::from_secs(5), login(broker.tls_port, Some((&vin, &secret)))).await;
        assert!(!matches!(plain, Ok(Ok(()))), "plain MQTT on the TLS port gets no session: {plain:?}");
        app.wait_for_samples(&vin, 1).await?;
        Ok(())
    }
    .await;
    r.unwrap();
}

/// The fleetd binary beside this test binary (`cargo build -p fleetd`; tests/run builds it).
fn fleetd_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe.parent().and_then(|d| d.parent()).expect("target dir").join("fleetd");
    assert!(bin.exists(), "{} is missing: build it with `cargo build -p fleetd` (tests/run does)", bin.display());
    bin
}

fn mqtt_passwd_cmd(args: &[&str]) -> std::process::Output {
    Command::new(fleetd_bin())
        .arg("mqtt-passwd")
        .args(args)
        .env_remove("FLEET_DATABASE_URL")
        .env_remove("FLEET_MQTT_URL")
        .output()
        .expect("running fleetd mqtt-passwd")
}

/// `fleetd mqtt-passwd` as operators run it: bad configuration exits 64 with one line naming
/// the setting; a good run writes a 0600 file, fleetd's account and one line per vehicle with
/// a secret (never the secret), that Mosquitto takes on SIGHUP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetd_mqtt_passwd_writes_a_file_the_broker_takes() {
    let r: anyhow::Result<()> = async {
        let broker = Broker::start().await?;
        let app = app_on(&broker, Db::Sqlite, None).await;
        let (vin, without) = (random_vin(), random_vin());
        app.register_vehicle(&vin).await?;
        app.register_vehicle(&without).await?;
        let (_, secret) = issue_secret(&app, &vin).await?;
        let url = format!("mqtt://{FLEETD_USER}:{FLEETD_PASSWORD}@127.0.0.1:{}", broker.port);
        let out_path = broker.passwd();
        let out = out_path.to_str().unwrap();

        let help = mqtt_passwd_cmd(&["--help"]);
        let help_text = String::from_utf8_lossy(&help.stdout);
        assert_eq!(help.status.code(), Some(0), "is target/debug/fleetd up to date? {help:?}");
        assert!(help_text.contains("--output") && help_text.contains("FLEET_MQTT_URL"), "{help_text}");
        for (args, setting) in [
            (vec!["--output", out, "--database-url", &app.db.url], "FLEET_MQTT_URL"),
            (
                vec!["--output", out, "--database-url", &app.db.url, "--mqtt-url", "mqtt://fleetd@127.0.0.1:1883"],
                "FLEET_MQTT_URL",
            ),
            (
                vec!["--output", out, "--database-url", "sqlite:///nonexistent/fleet.db", "--mqtt-url", &url],
                "FLEET_DATABASE_URL",
            ),
        ] {
            let o = mqtt_passwd_cmd(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(64), "{args:?}: {err}");
            let lines: Vec<&str> = err.lines().filter(|l| l.contains("bad configuration")).collect();
            assert!(lines.len() == 1 && lines[0].contains(setting), "{args:?}: {err}");
        }
        assert_eq!(
            mqtt_passwd_cmd(&["--database-url", &app.db.url, "--mqtt-url", &url]).status.code(),
            Some(64),
            "--output is required"
        );

        let o = mqtt_passwd_cmd(&["--output", out, "--database-url", &app.db.url, "--mqtt-url", &url]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&out_path)?;
        let accounts: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(accounts.len(), 2, "fleetd and the one vehicle with a secret: {text}");
        assert!(
            accounts[0].starts_with("fleetd:$7$101$")
                && fleet_web::mosquitto_password_matches(accounts[0], FLEETD_PASSWORD)
        );
        assert!(
            accounts[1].starts_with(&format!("{vin}:$7$101$"))
                && fleet_web::mosquitto_password_matches(accounts[1], &secret)
        );
        assert!(!text.contains(&secret) && !text.contains(FLEETD_PASSWORD) && !text.contains(&without), "{text}");
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&out_path)?.permissions().mode() & 0o777, 0o600);
        }

        broker.reload()?;
        login_until(broker.port, (&vin, &secret), "the vehicle logs in with the file the binary wrote", Result::is_ok)
            .await?;
        assert!(login(broker.port, Some((FLEETD_USER, FLEETD_PASSWORD))).await.is_ok(), "fleetd's account too");
        Ok(())
    }
    .await;
    r.unwrap();
}

async fn post_secret(
    app: &TestApp,
    vin: &str,
    token: Option<&str>,
    key: Option<&str>,
) -> anyhow::Result<(StatusCode, Value, bool)> {
    let mut req = app.http.post(app.url(&format!("/api/v1/vehicles/{vin}/mqtt-secret")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let r = req.send().await?;
    let (status, replayed) = (r.status(), r.headers().contains_key("idempotent-replayed"));
    let body = r.json().await.unwrap_or(Value::Null);
    Ok((status, body, replayed))
}

async fn created(app: &TestApp, admin: &str, path: &str, body: Value) -> anyhow::Result<()> {
    let r = app.http.post(app.url(path)).bearer_auth(admin).json(&body).send().await?;
    anyhow::ensure!(r.status() == StatusCode::CREATED, "POST {path}: {} {}", r.status(), r.text().await?);
    Ok(())
}

// Who may issue a secret (outside the caller's view 404, then 403), what
// is stored (the line, not the secret), and an `Idempotency-Key` that never keeps the secret.
both!(only_an_admin_issues_a_vehicle_secret_and_only_its_hash_is_kept, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let (own, other) = (random_vin(), random_vin());
    created(&app, &admin, "/api/v1/units", json!({"id": "u1", "name": "单位一", "monthly_energy_budget_kwh": 500.0}))
        .await?;
    for (vin, plate) in [(&own, "浙LD50001"), (&other, "浙LD50002")] {
        let body = json!({"vin": vin, "plate": plate, "model": "BYD Qin Plus EV", "seats": 5, "battery_kwh": 57.6, "consumption_kwh_per_100km": 12.5, "unit_id": if vin == &own { Some("u1") } else { None }});
        created(&app, &admin, "/api/v1/vehicles", body).await?;
    }
    created(
        &app,
        &admin,
        "/api/v1/drivers",
        json!({"id": "d1", "name": "陈师傅", "phone": "13900000001", "vehicle_vin": own}),
    )
    .await?;
    for (user, role, extra) in [
        ("disp", "dispatcher", json!({})),
        ("audit", "auditor", json!({})),
        ("unit01", "unit", json!({"unit_id": "u1"})),
        ("driver01", "driver", json!({"driver_id": "d1"})),
    ] {
        let mut body = json!({"username": user, "password": format!("pass-{user}"), "role": role});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        created(&app, &admin, "/api/v1/users", body).await?;
    }
    let token = |u: &'static str| {
        let app = &app;
        async move { app.login(u, &format!("pass-{u}")).await }
    };
    let (disp, audit, unit, driver) =
        (token("disp").await?, token("audit").await?, token("unit01").await?, token("driver01").await?);

    for (who, t, vin, status) in [
        ("nobody", None, &own, StatusCode::UNAUTHORIZED),
        ("a dispatcher", Some(&disp), &own, StatusCode::FORBIDDEN),
        ("an auditor", Some(&audit), &own, StatusCode::FORBIDDEN),
        ("the car's unit", Some(&unit), &own, StatusCode::FORBIDDEN),
        ("another unit", Some(&unit), &other, StatusCode::NOT_FOUND),
        ("the car's driver", Some(&driver), &own, StatusCode::FORBIDDEN),
        ("another car's driver", Some(&driver), &other, StatusCode::NOT_FOUND),
    ] {
        let (s, b, _) = post_secret(&app, vin, t.map(String::as_str), None).await?;
        assert_eq!(s, status, "{who}: {b}");
    }
    assert!(app.store.mqtt_secrets().list().await?.is_empty(), "refusals store nothing");
    let (s, b, _) = post_secret(&app, &random_vin(), Some(&admin), None).await?;
    assert_eq!((s, b["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "an unknown VIN: {b}");

    let (s, b, _) = post_secret(&app, &own, Some(&admin), None).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["username"], own.as_str());
    let first = b["password"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 32, "{b}");
    let stored = app.store.mqtt_secrets().get(&own).await?.context("stored")?;
    assert!(stored.password_line.starts_with(&format!("{own}:$7$101$")), "{}", stored.password_line);
    assert!(fleet_web::mosquitto_password_matches(&stored.password_line, &first));
    assert!(!stored.password_line.contains(&first), "never the secret itself");

    // A repeat with the same Idempotency-Key is not answered from storage (that would keep
    // the secret in the database): it issues another secret, which replaces the first.
    let (s1, b1, r1) = post_secret(&app, &own, Some(&admin), Some("mqtt-once")).await?;
    let (s2, b2, r2) = post_secret(&app, &own, Some(&admin), Some("mqtt-once")).await?;
    assert_eq!((s1, s2, r1, r2), (StatusCode::OK, StatusCode::OK, false, false), "{b1} {b2}");
    assert_ne!(b1["password"], b2["password"]);
    let admin_id = app.store.users().credentials("admin").await?.context("admin")?.0.id;
    let kept =
        app.store.idempotency_keys().get(admin_id, "mqtt-once", chrono::Utc::now() - chrono::Duration::days(1)).await?;
    assert!(kept.is_none(), "the answer with the secret is not kept");
    let line = app.store.mqtt_secrets().get(&own).await?.context("stored")?.password_line;
    assert!(
        fleet_web::mosquitto_password_matches(&line, b2["password"].as_str().unwrap()),
        "the last secret issued is the one stored"
    );
    assert!(!fleet_web::mosquitto_password_matches(&line, &first));
    assert_eq!(app.store.mqtt_secrets().list().await?.len(), 1, "one account per vehicle");
    Ok(())
});
