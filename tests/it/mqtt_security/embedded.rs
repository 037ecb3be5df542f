//! The embedded broker (issue 17, item 3) holds vehicles to the same rules as the shipped
//! Mosquitto set-up: a vehicle logs in with username = VIN and the secret the API issued
//! (checked against the registry at each login, so a replaced secret stops working at once),
//! publishes and subscribes under its own VIN only; anonymous clients, wrong secrets and
//! fleetd's own client id are refused, and fleetd's ingest goes on undisturbed. Anonymous
//! access is there only with the development flag.

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS, SubscribeReasonCode,
};

use super::broker::{Client, DEADLINE, login, login_as, refused};
use super::{issue_secret, sample, telemetry};
use fleet_tests::{Db, TestApp, random_vin};
use fleetd::config::MqttTarget;

/// A fleetd running the embedded broker on a free loopback port, and that port.
async fn embedded_app(db: Db, anonymous: bool) -> (TestApp, u16) {
    let app = TestApp::spawn_with(db, move |s| {
        s.mqtt = MqttTarget::Embedded("127.0.0.1:0".parse().expect("valid address"));
        s.embedded_mqtt_anonymous = anonymous;
    })
    .await;
    let port = app.mqtt_addr().expect("the embedded broker's address").port();
    (app, port)
}

fn gbt(vin: &str) -> String {
    format!("fleet/v1/vehicles/{vin}/gbt32960")
}

/// Logins: the issued secret works; anonymous, a wrong or another vehicle's secret, an
/// unknown VIN, a vehicle without a secret and fleetd's client id are refused. Publishing:
/// a vehicle's own samples are stored, what it sends under another VIN is acknowledged and
/// dropped (nothing stored, no dead letter), and fleetd keeps ingesting after a client
/// tried its client id. A replaced secret is refused at once.
async fn vehicles_log_in_with_their_secret_and_publish_as_themselves_only(db: Db) -> anyhow::Result<()> {
    let (app, port) = embedded_app(db, false).await;
    let (a, b, no_secret) = (random_vin(), random_vin(), random_vin());
    for v in [&a, &b, &no_secret] {
        app.register_vehicle(v).await?;
    }
    let (_, pass_a) = issue_secret(&app, &a).await?;
    let (_, pass_b) = issue_secret(&app, &b).await?;

    let r = login(port, Some((&a, &pass_a))).await;
    assert!(r.is_ok(), "A's issued secret works: {r:?}");
    for (what, credentials) in [
        ("anonymous", None),
        ("A with B's secret", Some((a.as_str(), pass_b.as_str()))),
        ("A with a wrong secret", Some((a.as_str(), "not-the-secret"))),
        ("A without a password", Some((a.as_str(), ""))),
        ("an unknown VIN", Some((&*random_vin(), pass_a.as_str()))),
        ("a registered vehicle without a secret", Some((no_secret.as_str(), pass_a.as_str()))),
        ("a user that is no vehicle", Some(("fleetd", pass_a.as_str()))),
    ] {
        let r = login(port, credentials).await;
        assert!(refused(&r), "{what}: {r:?}");
    }
    // fleetd's persistent session is fleetd's alone, whatever the account.
    let r = login_as(port, &app.client_id, Some((&a, &pass_a))).await;
    assert!(refused(&r), "fleetd's client id: {r:?}");
    // A client id the broker cannot take is refused as such, every time.
    for _ in 0..2 {
        let r = login_as(port, "a/b", Some((&a, &pass_a))).await;
        assert!(matches!(r, Err(ConnectionError::ConnectionRefused(ConnectReturnCode::BadClientId))), "{r:?}");
    }

    let t0 = chrono::Utc::now().timestamp_millis() - 60_000;
    let mut va = Client::connect(port, &a, &pass_a).await?;
    va.publish(&telemetry(&a), sample(t0)).await?;
    app.wait_for_samples(&a, 1).await?;
    // QoS 1 publishes outside A's tree are acknowledged (MQTT 3.1.1 cannot refuse one) and
    // dropped; a barrier on A's own topic after them shows they would have arrived by now.
    va.publish(&telemetry(&b), sample(t0 + 1_000)).await?;
    va.publish(&gbt(&b), b"##\x02\xfe forged".to_vec()).await?;
    va.client.publish(telemetry(&b), QoS::ExactlyOnce, false, sample(t0 + 1_500)).await?;
    va.publish(&telemetry(&a), sample(t0 + 2_000)).await?;
    app.wait_for_samples(&a, 2).await?;
    assert_eq!(app.store.telemetry().count(Some(&b)).await?, 0, "nothing stored for B");
    assert_eq!(app.store.dead_letters().count().await?, 0, "the forgeries never reached fleetd");
    assert!(!va.closed.is_cancelled(), "the connection stays up");

    let mut vb = Client::connect(port, &b, &pass_b).await?;
    vb.publish(&telemetry(&b), sample(t0 + 3_000)).await?;
    app.wait_for_samples(&b, 1).await?;
    assert_eq!(app.http.get(app.url("/healthz")).send().await?.status(), 200, "fleetd's own session is up");

    let (_, new_a) = issue_secret(&app, &a).await?;
    let r = login(port, Some((&a, &pass_a))).await;
    assert!(refused(&r), "the replaced secret is refused at once: {r:?}");
    let mut va2 = Client::connect(port, &a, &new_a).await?;
    va2.publish(&telemetry(&a), sample(t0 + 4_000)).await?;
    app.wait_for_samples(&a, 3).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_vehicles_log_in_with_their_secret_and_publish_as_themselves_only_sqlite() {
    vehicles_log_in_with_their_secret_and_publish_as_themselves_only(Db::Sqlite).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_vehicles_log_in_with_their_secret_and_publish_as_themselves_only_postgres() {
    vehicles_log_in_with_their_secret_and_publish_as_themselves_only(Db::Postgres).await.unwrap();
}

/// A vehicle may not read the fleet: `#`, a `+` in the VIN's place and another vehicle's
/// topic are answered 0x80, each alone or beside an allowed filter in one SUBSCRIBE; its own
/// topic is granted and delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_refuses_subscriptions_beyond_a_vehicles_own_topics() {
    let r: anyhow::Result<()> = async {
        let (app, port) = embedded_app(Db::Sqlite, false).await;
        let (a, b) = (random_vin(), random_vin());
        app.register_vehicle(&a).await?;
        app.register_vehicle(&b).await?;
        let (_, pass_a) = issue_secret(&app, &a).await?;
        let mut va = Client::connect(port, &a, &pass_a).await?;
        for filter in ["#", "fleet/#", "fleet/v1/vehicles/+/telemetry", &telemetry(&b), "$share/g/#", "$SYS/#"] {
            assert_eq!(va.subscribe(filter).await?, vec![SubscribeReasonCode::Failure], "{filter}");
        }
        let own = format!("fleet/v1/vehicles/{a}/#");
        let codes = va.subscribe_many(&["#", &own, &telemetry(&b)]).await?;
        assert!(
            matches!(
                codes[..],
                [SubscribeReasonCode::Failure, SubscribeReasonCode::Success(_), SubscribeReasonCode::Failure]
            ),
            "only the own filter is granted: {codes:?}"
        );
        assert!(matches!(va.subscribe(&telemetry(&a)).await?[..], [SubscribeReasonCode::Success(_)]));

        let t0 = chrono::Utc::now().timestamp_millis() - 60_000;
        va.publish(&telemetry(&a), sample(t0)).await?;
        let (topic, _) = va.next_message().await?;
        assert_eq!(topic, telemetry(&a), "its own topic delivers");
        app.wait_for_samples(&a, 1).await?;
        Ok(())
    }
    .await;
    r.unwrap();
}

/// A will is published by the broker on the client's behalf: one on another vehicle's topic
/// is refused at login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_refuses_a_will_on_another_vehicles_topic() {
    let r: anyhow::Result<()> = async {
        let (app, port) = embedded_app(Db::Sqlite, false).await;
        let (a, b) = (random_vin(), random_vin());
        app.register_vehicle(&a).await?;
        app.register_vehicle(&b).await?;
        let (_, pass_a) = issue_secret(&app, &a).await?;
        let with_will = |topic: String| {
            let pass = pass_a.clone();
            let a = a.clone();
            async move {
                let mut o = MqttOptions::new(format!("will-{}", rand::random::<u32>()), "127.0.0.1", port);
                o.set_credentials(a, pass).set_last_will(LastWill::new(topic, sample(0), QoS::AtLeastOnce, false));
                let (_client, mut eventloop) = AsyncClient::new(o, 10);
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        let r = tokio::time::timeout(DEADLINE, with_will(telemetry(&b))).await?;
        assert!(
            matches!(r, Err(ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized))),
            "a will on B's topic: {r:?}"
        );
        tokio::time::timeout(DEADLINE, with_will(telemetry(&a))).await??;
        Ok(())
    }
    .await;
    r.unwrap();
}

/// With the development flag (on loopback), clients without an account get in and publish
/// as any vehicle; accounts presented are still checked, and fleetd's client id stays
/// reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_lets_anonymous_clients_in_only_with_the_development_flag() {
    let r: anyhow::Result<()> = async {
        let (app, port) = embedded_app(Db::Sqlite, true).await;
        let vin = random_vin();
        app.register_vehicle(&vin).await?;
        let (_, secret) = issue_secret(&app, &vin).await?;
        assert!(login(port, None).await.is_ok(), "anonymous");
        assert!(refused(&login(port, Some((&vin, "wrong"))).await), "a wrong secret is still refused");
        assert!(refused(&login_as(port, &app.client_id, None).await), "fleetd's client id is still reserved");
        let mut anon = Client::open(port, None).await?;
        let t0 = chrono::Utc::now().timestamp_millis() - 60_000;
        anon.publish(&telemetry(&vin), sample(t0)).await?;
        app.wait_for_samples(&vin, 1).await?;
        let mut own = Client::connect(port, &vin, &secret).await?;
        own.publish(&telemetry(&vin), sample(t0 + 1_000)).await?;
        app.wait_for_samples(&vin, 2).await?;
        Ok(())
    }
    .await;
    r.unwrap();
}
