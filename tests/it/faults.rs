//! Faults (issue 8): fleetd killed with SIGKILL in the middle of ingesting under load loses
//! nothing and doubles nothing once it is back — what the broker had handed it unacknowledged
//! comes again, and (VIN, ts) dedupes what it had already committed.

mod cluster;
mod gateways;
mod postgres;
mod process;

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use fleet_domain::NewVehicle;
use fleet_storage::Store;
use fleet_tests::{ADMIN_PASSWORD, Db, Publisher, TestDb, random_vin};
use serde_json::json;

use self::process::{Broker, Fleetd, fleetd, start, start_at, start_configured};

async fn kill_9_mid_ingest(db: Db) -> anyhow::Result<()> {
    let db = TestDb::create(db).await;
    let store = Store::connect(&db.url).await?;
    store.migrate().await?;
    let vins: Vec<String> = (0..20).map(|_| random_vin()).collect();
    for (i, vin) in vins.iter().enumerate() {
        let v = NewVehicle {
            vin: vin.clone(),
            plate: format!("浙LD9{i:04}"),
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
    let client_id = format!("fleetd-faults-{}", rand::random::<u32>());
    let mut child = start(&db.url, &client_id, broker.port);
    // The subscription is made once the broker connection is up; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 2,400 messages while fleetd ingests (killed after the first few hundred land), then
    // 600 more while it is down (the broker queues them for its persistent session).
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().unwrap();
    let total = 3000usize;
    let (killed_tx, mut killed_rx) = tokio::sync::watch::channel(false);
    let publisher = {
        let vins = vins.clone();
        let port = broker.port;
        tokio::spawn(async move {
            let mut p = Publisher::connect_to("127.0.0.1", port).await?;
            for i in 0..total {
                if i == 2400 {
                    // The last 600 go out while fleetd is dead.
                    killed_rx.wait_for(|k| *k).await?;
                }
                let vin = &vins[i % vins.len()];
                let ts = t0 + chrono::Duration::seconds(i as i64);
                p.json(
                    vin,
                    &json!({"ts": ts.to_rfc3339(), "lat": 30.0 + i as f64 * 1e-5, "lon": 122.1, "soc_pct": 70.0}),
                )
                .await?;
            }
            anyhow::Ok(())
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store.telemetry().count(None).await? < 300 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "fleetd never stored 300 samples");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored_at_kill = store.telemetry().count(None).await?;
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status()?;
    child.wait()?;
    killed_tx.send(true)?;
    publisher.await??;
    assert!(stored_at_kill < total as i64, "killed in the middle of the stream");

    // Restarted with small batches, so that the backlog is more than fleetd lets itself hold
    // (four batches): it stops reading until commits catch up, and must lose nothing by it.
    let (mut child, http) = start_configured(&db.url, &client_id, broker.port, |c| {
        c.env("FLEET_INGEST_MAX_BATCH", "50");
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = store.telemetry().count(None).await?;
        anyhow::ensure!(n <= total as i64, "{n} samples stored for {total} published");
        if n == total as i64 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "only {n} of {total} samples after the restart (killed at {stored_at_kill})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every message exactly once, and each car's state at its newest sample (written a
    // moment after the samples).
    for (i, vin) in vins.iter().enumerate() {
        assert_eq!(store.telemetry().count(Some(vin)).await?, (total / vins.len()) as i64);
        let newest = t0 + chrono::Duration::seconds((0..total).filter(|k| k % vins.len() == i).max().unwrap() as i64);
        loop {
            let ts = store.telemetry().state(vin).await?.map(|s| s.ts);
            if ts == Some(newest) {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the state of {vin} is at {ts:?}, its newest sample at {newest}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The backlog the broker kept came in a flood: every committed message was acknowledged
    // (on the one connection), a committed batch's acks in one write, not one write each.
    // (The last acks are written just after their commit: give them a moment.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (text, committed, written) = loop {
        let text = reqwest::get(format!("{http}/metrics")).await?.text().await?;
        let committed = metric(&text, "fleet_ingest_messages_committed_total");
        let written = metric(&text, "fleet_ingest_acks_written_total");
        if written == committed || tokio::time::Instant::now() > deadline {
            break (text, committed, written);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let writes = metric(&text, "fleet_ingest_ack_writes_total");
    assert!(committed >= (total - 2400) as f64, "the restarted fleetd committed the backlog: {committed}");
    assert_eq!(written, committed, "every committed message acknowledged");
    assert!(writes >= 1.0 && writes * 5.0 <= written, "{written} acks in {writes} writes");
    assert!(metric(&text, "fleet_ingest_read_pauses_total") >= 1.0, "the backlog paused reading: {text}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    child.wait()?;
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingest_loses_and_doubles_nothing_on_sqlite() -> anyhow::Result<()> {
    kill_9_mid_ingest(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ingest_loses_and_doubles_nothing_on_postgres() -> anyhow::Result<()> {
    kill_9_mid_ingest(Db::Postgres).await
}

/// The value of an unlabelled counter or gauge in Prometheus text; 0 when absent.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn healthz(http: &str) -> u16 {
    match reqwest::get(format!("{http}/healthz")).await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

async fn wait_health(http: &str, want: u16) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while healthz(http).await != want {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "/healthz never answered {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_is_ridden_out_and_health_says_so_meanwhile() -> anyhow::Result<()> {
    let db = TestDb::create(Db::Sqlite).await;
    let store = Store::connect(&db.url).await?;
    store.migrate().await?;
    let vin = random_vin();
    let v = NewVehicle {
        vin: vin.clone(),
        plate: "浙LD98888".into(),
        model: "BYD e6".into(),
        seats: 5,
        battery_kwh: 71.7,
        consumption_kwh_per_100km: 17.0,
        unit_id: None,
        terminal_phone: None,
        ..Default::default()
    };
    store.vehicles().create(&v.validate()?, &v).await?;
    let broker = Broker::start();
    let port = broker.port;
    let client_id = format!("fleetd-faults-{}", rand::random::<u32>());
    let (mut child, http) = start_at(&db.url, &client_id, port);
    wait_health(&http, 200).await?;
    let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).single().unwrap();
    let sample = |i: i64| json!({"ts": (t0 + chrono::Duration::seconds(i)).to_rfc3339(), "lat": 30.0, "lon": 122.1});
    let mut p = Publisher::connect_to("127.0.0.1", port).await?;
    for i in 0..100 {
        p.json(&vin, &sample(i)).await?;
    }
    drop(p);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.telemetry().count(Some(&vin)).await? < 100 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the first hundred never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The broker goes away: health says 503; it comes back: fleetd reconnects by itself.
    let _ = Command::new("kill").args(["-TERM", &broker.child.id().to_string()]).status();
    wait_health(&http, 503).await?;
    let broker = broker.restart();
    wait_health(&http, 200).await?;
    let mut p = Publisher::connect_to("127.0.0.1", broker.port).await?;
    for i in 100..200 {
        p.json(&vin, &sample(i)).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.telemetry().count(Some(&vin)).await? < 200 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "samples after the broker restart never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.telemetry().count(Some(&vin)).await?, 200);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    child.wait()?;
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_batch_killed_mid_way_leaves_no_half_assigned_order() -> anyhow::Result<()> {
    use fleet_domain::{NewDriver, NewOrder, OrderStatus, Place, Sample, SampleSource, Vin};
    use fleet_storage::{Actor, OrderQuery};
    let db = TestDb::create(Db::Postgres).await;
    let store = Store::connect(&db.url).await?;
    store.migrate().await?;
    store
        .units()
        .create(
            "u1",
            &fleet_domain::NewUnit {
                id: Some("u1".into()),
                name: "市委办".into(),
                monthly_energy_budget_kwh: 1e6,
                auto_approve: true,
                ..Default::default()
            },
        )
        .await?;
    let now = Utc::now();
    let mut samples = Vec::new();
    for i in 0..150 {
        let vin = random_vin();
        let v = NewVehicle {
            vin: vin.clone(),
            plate: format!("浙LD8{i:04}"),
            model: "BYD e6".into(),
            seats: 5,
            battery_kwh: 71.7,
            consumption_kwh_per_100km: 17.0,
            unit_id: None,
            terminal_phone: None,
            ..Default::default()
        };
        let parsed = v.validate()?;
        store.vehicles().create(&parsed, &v).await?;
        let d = NewDriver {
            id: Some(format!("d{i}")),
            name: format!("司机{i}"),
            phone: format!("1390000{i:04}"),
            vehicle_vin: Some(vin.clone()),
        };
        store.drivers().create(&format!("d{i}"), &d, Some(&parsed)).await?;
        let mut s = Sample::at(Vin::parse(&vin)?, now, 30.0 + i as f64 * 0.001, 122.1, SampleSource::Json);
        s.soc_pct = Some(90.0);
        samples.push(s);
    }
    store.telemetry().commit(&samples, &[]).await?;
    let clerk = Actor { name: "unit1".into(), user_id: None, on_behalf: false, driver_id: None };
    for i in 0..400 {
        let place = |lat: f64| Place { lat, lon: 122.1, name: "市行政中心".into() };
        let new = NewOrder {
            unit_id: "u1".into(),
            passengers: 1,
            pickup: place(30.0 + (i % 150) as f64 * 0.001),
            dropoff: place(30.05),
            pickup_at: None,
            purpose: "会议".into(),
            override_budget: false,
        };
        store
            .orders()
            .create(
                &format!("o{i:04}"),
                &new,
                now,
                OrderStatus::Approved,
                (now, now + chrono::Duration::hours(1)),
                &clerk,
                None,
                now,
            )
            .await?;
    }
    let broker = Broker::start();
    let client_id = format!("fleetd-faults-{}", rand::random::<u32>());
    let spawn = || {
        let mut c = Command::new(fleetd());
        c.args(["run", "--http-addr", "127.0.0.1:0"])
            .env("FLEET_DATABASE_URL", &db.url)
            .env("FLEET_MQTT_URL", format!("mqtt://127.0.0.1:{}", broker.port))
            .env("FLEET_MQTT_CLIENT_ID", &client_id)
            .env("FLEET_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("FLEET_DISPATCH_BATCH_INTERVAL_MS", "100")
            // Nobody accepts here: on a slow machine the default 30 s could expire an early
            // assignment and hand its car on while the check reads (an order listed approved,
            // its history already one assignment further).
            .env("FLEET_DISPATCH_ACCEPT_TIMEOUT_S", "3600")
            .env("FLEET_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.spawn().map(Fleetd)
    };
    let assigned = |store: Store| async move {
        let q = OrderQuery { statuses: vec![OrderStatus::Assigned], limit: 1000, ..OrderQuery::default() };
        anyhow::Ok(store.orders().list(&q).await?.len())
    };
    let mut child = spawn()?;
    // Killed while the batch is writing its assignments, one transaction each.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = assigned(store.clone()).await?;
        if n > 0 {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no assignment within a minute");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status()?;
    child.wait()?;
    let at_kill = assigned(store.clone()).await?;
    assert!(at_kill < 150, "killed in the middle of the batch ({at_kill} of 150 cars given)");

    // Every order is whole: assigned with its car, driver and history entry, or untouched.
    let check = |store: Store| async move {
        let all = store.orders().list(&OrderQuery { limit: 1000, ..OrderQuery::default() }).await?;
        let mut cars = std::collections::HashSet::new();
        for o in &all {
            let events = store.orders().events(&o.order.id).await?;
            let last = &events.last().expect("a history").0;
            match o.order.status {
                OrderStatus::Assigned => {
                    let vin = o.order.vin.clone().expect("an assigned order has its car");
                    assert!(o.order.driver_id.is_some() && o.order.assigned_at.is_some(), "{:?}", o.order);
                    assert_eq!((last.action.as_str(), last.vin.as_ref()), ("assign", Some(&vin)), "{:?}", o.order.id);
                    assert!(cars.insert(vin), "a car given twice");
                }
                OrderStatus::Approved => {
                    assert!(o.order.vin.is_none() && o.order.driver_id.is_none(), "{:?}", o.order);
                    assert_eq!(events.len(), 1, "an untouched order has only its creation: {:?}", o.order.id);
                }
                other => panic!("unexpected status {other:?}"),
            }
        }
        anyhow::Ok(cars.len())
    };
    assert_eq!(check(store.clone()).await?, at_kill);
    // After a restart the batch finishes the job: every car, once.
    let mut child = spawn()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while assigned(store.clone()).await? < 150 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the batch did not finish after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(check(store.clone()).await?, 150);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    child.wait()?;
    store.close().await;
    Ok(())
}
