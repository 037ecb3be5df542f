//! The live feed (docs/live-feed.md) over a real WebSocket: snapshot, deltas after MQTT publishes,
//! filters, visibility, order events, refusals, and a client that never reads.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use fleet_domain::{Order, OrderStatus, Place, Vin};
use fleet_tests::live::{LiveClient, vehicle_in};
use fleet_tests::{Publisher, TestApp, both, random_vin};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sample payload at `secs_ago` seconds before now.
fn at(lat: f64, lon: f64, secs_ago: i64, soc: f64) -> Value {
    json!({"ts": (Utc::now() - ChronoDuration::seconds(secs_ago)).to_rfc3339(), "lat": lat, "lon": lon,
           "speed_kmh": 30.0, "heading_deg": 90.0, "soc_pct": soc})
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
    let r = app.http.post(app.url(path)).bearer_auth(token).json(&body).send().await?;
    anyhow::ensure!(r.status().is_success(), "POST {path}: {} {}", r.status(), r.text().await?);
    Ok(r.json().await?)
}

/// Registers a car in `unit` (None: the pool); answers its VIN.
async fn car_in(app: &TestApp, admin: &str, unit: Option<&str>, plate: &str) -> anyhow::Result<String> {
    let vin = random_vin();
    post(
        app,
        admin,
        "/api/v1/vehicles",
        json!({"vin": vin, "plate": plate, "model": "BYD e6", "seats": 5,
        "battery_kwh": 71.7, "consumption_kwh_per_100km": 17.0, "unit_id": unit}),
    )
    .await?;
    Ok(vin)
}

fn order(id: &str, unit: &str, status: OrderStatus, vin: Option<&str>, driver: Option<&str>) -> Order {
    let place = |name: &str| Place { lat: 30.0, lon: 122.1, name: name.to_owned() };
    Order {
        id: id.to_owned(),
        unit_id: unit.to_owned(),
        status,
        passengers: 2,
        pickup: place("市行政中心"),
        dropoff: place("普陀山机场"),
        pickup_at: Utc::now(),
        purpose: "会议".to_owned(),
        vin: vin.map(|v| Vin::parse(v).unwrap()),
        driver_id: driver.map(str::to_owned),
        unmatched_reason: None,
        assigned_at: None,
    }
}

both!(a_snapshot_then_coalesced_deltas_follow_mqtt_publishes, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let moving = car_in(&app, &admin, None, "浙L·D10001").await?;
    let silent = car_in(&app, &admin, None, "浙L·D10002").await?;
    let never = car_in(&app, &admin, None, "浙L·D10003").await?;
    let mut p = Publisher::connect().await?;
    p.json(&moving, &at(30.01, 122.10, 0, 81.5)).await?;
    p.json(&silent, &at(30.02, 122.11, 600, 64.0)).await?;
    app.wait_for_samples(&moving, 1).await?;
    app.wait_for_samples(&silent, 1).await?;

    let mut live = LiveClient::connect(&app.live_url(&admin, "")).await?;
    // Ingest announces a commit just after it lands: the snapshot, or the deltas right
    // behind it, carry the two samples.
    let snap = live.snapshot().await?;
    assert_eq!(snap.len(), 3, "{snap:?}");
    let snap = live.settle(snap, Duration::from_millis(800)).await?;
    let find = |vin: &str| snap.get(vin).cloned().unwrap_or_else(|| panic!("{vin} missing from {snap:?}"));
    let m = find(&moving);
    assert_eq!(
        (m["plate"].as_str(), m["lat"].as_f64(), m["lon"].as_f64(), m["soc_pct"].as_f64()),
        (Some("浙L·D10001"), Some(30.01), Some(122.10), Some(81.5))
    );
    assert_eq!(m["status"], "idle");
    assert_eq!(m["speed_kmh"], 30.0);
    assert_eq!(find(&silent)["status"], "offline", "ten minutes of silence is offline");
    let n = find(&never);
    assert_eq!((n["status"].as_str(), n["lat"].is_null(), n["ts"].is_null()), (Some("offline"), true, true));

    // Five samples in quick succession: each message names a car at most once, and the
    // newest position arrives.
    for i in 1..=5 {
        p.json(&moving, &json!({"ts": (Utc::now() + ChronoDuration::milliseconds(i)).to_rfc3339(), "lat": 30.01 + 0.001 * i as f64, "lon": 122.10, "soc_pct": 81.0})).await?;
    }
    let last = live
        .wait_for("the newest position", |msg| {
            assert_eq!(msg["type"], "positions", "{msg}");
            let vins: Vec<&str> =
                msg["vehicles"].as_array().unwrap().iter().map(|v| v["vin"].as_str().unwrap()).collect();
            assert_eq!(vins.len(), vins.iter().collect::<HashSet<_>>().len(), "a car twice in one message: {msg}");
            vehicle_in(msg, &moving).filter(|v| v["lat"].as_f64() == Some(30.015)).cloned()
        })
        .await?;
    assert_eq!(last["soc_pct"], 81.0);
    assert_eq!(last["status"], "idle");
    Ok(())
});

both!(bbox_and_unit_filters_and_role_visibility_narrow_the_feed, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let u1 = post(&app, &admin, "/api/v1/units", json!({"name": "市委办公室", "monthly_energy_budget_kwh": 500.0}))
        .await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let u2 = post(&app, &admin, "/api/v1/units", json!({"name": "市财政局", "monthly_energy_budget_kwh": 500.0}))
        .await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dinghai = car_in(&app, &admin, Some(&u1), "浙L·D20001").await?;
    let putuo = car_in(&app, &admin, Some(&u2), "浙L·D20002").await?;
    let mut p = Publisher::connect().await?;
    p.json(&dinghai, &at(30.02, 122.10, 0, 70.0)).await?; // Dinghai
    p.json(&putuo, &at(29.95, 122.30, 0, 70.0)).await?; // Shenjiamen
    app.wait_for_samples(&dinghai, 1).await?;
    app.wait_for_samples(&putuo, 1).await?;

    // A box around Dinghai only.
    let bbox = "&bbox=122.0,29.98,122.2,30.1";
    let mut boxed = LiveClient::connect(&app.live_url(&admin, bbox)).await?;
    let snap = boxed.snapshot().await?;
    let vins: Vec<&str> = snap.iter().map(|v| v["vin"].as_str().unwrap()).collect();
    assert_eq!(vins, [dinghai.as_str()], "only the car in the box");

    let mut by_unit = LiveClient::connect(&app.live_url(&admin, &format!("&unit_id={u2}"))).await?;
    let snap = by_unit.snapshot().await?;
    assert_eq!(snap.iter().map(|v| v["vin"].as_str().unwrap()).collect::<Vec<_>>(), [putuo.as_str()]);

    post(
        &app,
        &admin,
        "/api/v1/users",
        json!({"username": "unit1", "password": "unit1-pass", "role": "unit", "unit_id": u1}),
    )
    .await?;
    let unit_token = app.login("unit1", "unit1-pass").await?;
    let mut unit = LiveClient::connect(&app.live_url(&unit_token, "")).await?;
    let snap = unit.snapshot().await?;
    assert_eq!(
        snap.iter().map(|v| v["vin"].as_str().unwrap()).collect::<Vec<_>>(),
        [dinghai.as_str()],
        "a unit sees its own cars"
    );
    let refused = LiveClient::try_connect(&app.live_url(&unit_token, &format!("&unit_id={u2}")))
        .await?
        .err()
        .expect("another unit is refused");
    assert_eq!(refused.status, 404);

    // The Putuo car moves (outside the box, in unit 2); then the Dinghai car leaves the box.
    p.json(&putuo, &at(29.951, 122.301, 0, 69.0)).await?;
    by_unit.wait_for("the Putuo car's move", |m| vehicle_in(m, &putuo).filter(|v| v["lat"] == 29.951).cloned()).await?;
    p.json(&dinghai, &at(29.90, 122.40, 0, 69.0)).await?;
    boxed
        .wait_for("the Dinghai car leaving the box, sent once where it went", |m| {
            assert!(vehicle_in(m, &putuo).is_none(), "a car outside the box was sent: {m}");
            vehicle_in(m, &dinghai).filter(|v| v["lat"] == 29.90).cloned()
        })
        .await?;
    unit.wait_for("the unit's own car", |m| {
        assert!(vehicle_in(m, &putuo).is_none(), "a unit saw another unit's car: {m}");
        vehicle_in(m, &dinghai).filter(|v| v["lat"] == 29.90).cloned()
    })
    .await?;
    // Out of the box now, its next move is not sent to the boxed client.
    p.json(&dinghai, &at(29.89, 122.41, 0, 68.0)).await?;
    unit.wait_for("the next move", |m| vehicle_in(m, &dinghai).filter(|v| v["lat"] == 29.89).cloned()).await?;
    for m in boxed.drain(Duration::from_millis(600)).await? {
        assert!(vehicle_in(&m, &dinghai).is_none(), "a car outside the box was sent again: {m}");
    }
    Ok(())
});

both!(order_changes_reach_who_may_see_them_and_set_the_cars_status, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let u1 = post(&app, &admin, "/api/v1/units", json!({"name": "市委办公室", "monthly_energy_budget_kwh": 500.0}))
        .await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let u2 = post(&app, &admin, "/api/v1/units", json!({"name": "市财政局", "monthly_energy_budget_kwh": 500.0}))
        .await?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let car = car_in(&app, &admin, Some(&u1), "浙L·D30001").await?;
    let mut p = Publisher::connect().await?;
    p.json(&car, &at(30.02, 122.10, 0, 70.0)).await?;
    app.wait_for_samples(&car, 1).await?;
    // The API reads the stored state, written a moment after the sample.
    app.wait_for_state(&car, "written", |_| true).await?;
    post(
        &app,
        &admin,
        "/api/v1/users",
        json!({"username": "unit2", "password": "unit2-pass", "role": "unit", "unit_id": u2}),
    )
    .await?;
    let other_unit = app.login("unit2", "unit2-pass").await?;

    let mut all = LiveClient::connect(&app.live_url(&admin, "")).await?;
    all.snapshot().await?;
    let mut other = LiveClient::connect(&app.live_url(&other_unit, "")).await?;
    assert!(other.snapshot().await?.is_empty());

    app.bus().publish(fleet_bus::Event::OrderChanged(Arc::new(order(
        "o1",
        &u1,
        OrderStatus::Assigned,
        Some(&car),
        None,
    ))));
    let got = all.wait_for("the order event", |m| (m["type"] == "order").then(|| m["order"].clone())).await?;
    assert_eq!(
        (got["id"].as_str(), got["status"].as_str(), got["vin"].as_str()),
        (Some("o1"), Some("assigned"), Some(car.as_str()))
    );
    all.wait_for("the car's new status", |m| vehicle_in(m, &car).filter(|v| v["status"] == "assigned").cloned())
        .await?;
    let detail: Value =
        app.http.get(app.url(&format!("/api/v1/vehicles/{car}"))).bearer_auth(&admin).send().await?.json().await?;
    assert_eq!(detail["state"]["status"], "assigned", "the API derives the same status as the feed");

    app.bus().publish(fleet_bus::Event::OrderChanged(Arc::new(order(
        "o1",
        &u1,
        OrderStatus::PickedUp,
        Some(&car),
        None,
    ))));
    all.wait_for("on trip", |m| vehicle_in(m, &car).filter(|v| v["status"] == "on_trip").cloned()).await?;
    app.bus().publish(fleet_bus::Event::OrderChanged(Arc::new(order(
        "o1",
        &u1,
        OrderStatus::Completed,
        Some(&car),
        None,
    ))));
    let idle = all.wait_for("idle again", |m| vehicle_in(m, &car).cloned()).await?;
    assert_eq!(idle["status"], "idle");

    let leaked = other.drain(Duration::from_millis(600)).await?;
    assert!(leaked.is_empty(), "another unit received {leaked:?}");
    Ok(())
});

both!(a_connection_without_a_valid_token_or_with_bad_filters_is_refused, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let ws = app.base.replacen("http://", "ws://", 1);
    let refused = LiveClient::try_connect(&format!("{ws}/api/v1/live")).await?.err().expect("no token is refused");
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("unauthorized"), "{}", refused.body);
    let refused =
        LiveClient::try_connect(&app.live_url("not-a-token", "")).await?.err().expect("a bad token is refused");
    assert_eq!(refused.status, 401);
    for bad in ["&bbox=1,2,3", "&bbox=122.3,29.9,121.9,30.1", "&bbox=a,b,c,d", "&unit_id=../x"] {
        let refused = LiveClient::try_connect(&app.live_url(&admin, bad))
            .await?
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(refused.status == 400 || refused.status == 422, "{bad}: {}", refused.status);
    }
    // A plain GET (no upgrade) with a token is a clear 400.
    let r = app.http.get(app.url("/api/v1/live")).bearer_auth(&admin).send().await?;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await?;
    assert!(body["error"]["message"].as_str().unwrap().contains("WebSocket"), "{body}");
    // The token in the Authorization header works as well as in the query.
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!("{ws}/api/v1/live"))?;
    req.headers_mut().insert("authorization", format!("Bearer {admin}").parse()?);
    let (mut c, _) = tokio_tungstenite::connect_async(req).await?;
    let first = futures_util::StreamExt::next(&mut c).await.expect("a message")?;
    assert!(first.into_text()?.starts_with("{\"type\":\"snapshot\""));
    Ok(())
});

/// Opens a WebSocket by hand on a socket with a tiny receive buffer and never reads from it.
async fn stuck_client(app: &TestApp, token: &str) -> anyhow::Result<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(2048)?;
    let mut stream = socket.connect(addr).await?;
    let req = format!(
        "GET /api/v1/live?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    // Read the 101 answer's head only, byte by byte, and then nothing more, ever.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await?);
    }
    anyhow::ensure!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    Ok(stream)
}

/// Reads one server frame (RFC 6455 §5.2; server frames are unmasked): FIN, opcode, payload.
async fn read_frame(stream: &mut tokio::net::TcpStream) -> anyhow::Result<(bool, u8, Vec<u8>)> {
    let b0 = stream.read_u8().await?;
    let b1 = stream.read_u8().await?;
    anyhow::ensure!(b1 & 0x80 == 0, "a server frame must not be masked");
    let len = match b1 & 0x7F {
        126 => u64::from(stream.read_u16().await?),
        127 => stream.read_u64().await?,
        n => u64::from(n),
    };
    let mut payload = vec![0; usize::try_from(len)?];
    stream.read_exact(&mut payload).await?;
    Ok((b0 & 0x80 != 0, b0 & 0x0F, payload))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_snapshot_goes_out_in_fragments_that_make_one_message() -> anyhow::Result<()> {
    let app = TestApp::spawn(fleet_tests::Db::Sqlite).await;
    let admin = app.admin_token().await;
    // About 140 bytes a car: 900 cars make a snapshot of about 125 KB.
    let cars = 900;
    let plates: Vec<String> = (0..cars).map(|i| format!("浙L·F{i:04}")).collect();
    for chunk in plates.chunks(30) {
        let posts = chunk.iter().map(|plate| car_in(&app, &admin, None, plate));
        for r in futures_util::future::join_all(posts).await {
            r?;
        }
    }
    // Raw frames, as they come off the socket.
    let mut raw = stuck_client(&app, &admin).await?;
    let mut frames = Vec::new();
    loop {
        let (fin, opcode, payload) = tokio::time::timeout(Duration::from_secs(20), read_frame(&mut raw)).await??;
        if opcode >= 0x8 {
            continue; // a control frame may come between fragments
        }
        frames.push((opcode, payload));
        if fin {
            break;
        }
    }
    assert!(frames.len() >= 2, "{} frame(s)", frames.len());
    assert_eq!(frames[0].0, 0x1, "a text frame first");
    assert!(frames[1..].iter().all(|(op, _)| *op == 0x0), "then continuation frames");
    assert!(frames.iter().all(|(_, p)| p.len() <= 64 * 1024), "each fragment at most 64 KiB");
    let whole: Vec<u8> = frames.into_iter().flat_map(|(_, p)| p).collect();
    let snapshot: Value = serde_json::from_slice(&whole)?;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["vehicles"].as_array().map(Vec::len), Some(cars));
    // A WebSocket client library gets it as one message.
    let mut client = LiveClient::connect(&app.live_url(&admin, "")).await?;
    assert_eq!(client.snapshot().await?.len(), cars);
    Ok(())
}

async fn dropped_clients(app: &TestApp) -> anyhow::Result<f64> {
    let text = app.http.get(app.url("/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("fleet_live_clients_dropped_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_delays_neither_other_clients_nor_ingest_and_is_dropped() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(fleet_tests::Db::Sqlite, |s| s.live_send_timeout = Duration::from_secs(2)).await;
    let admin = app.admin_token().await;
    let mut cars = Vec::new();
    for i in 0..40 {
        cars.push(car_in(&app, &admin, None, &format!("浙L·D4{i:04}")).await?);
    }
    let _stuck = stuck_client(&app, &admin).await?;
    let mut reader = LiveClient::connect(&app.live_url(&admin, "")).await?;
    reader.snapshot().await?;
    let mut p = Publisher::connect().await?;
    let mut published = 0i64;
    let mut round = 0u32;
    // Keep the fleet moving until the stuck client is dropped; every round, the reading
    // client sees every car's newest position and ingest stores every sample. Bulky order
    // changes (as dispatch will announce them on the bus) fill the kernel's socket buffers
    // of the stuck connection within a few rounds.
    while dropped_clients(&app).await? < 1.0 {
        round += 1;
        anyhow::ensure!(round <= 60, "the stuck client was never dropped");
        for i in 0..20 {
            let mut o = order(&format!("bulk-{round}-{i}"), "u", OrderStatus::Approved, None, None);
            o.purpose = "大型会议接送".repeat(4000);
            app.bus().publish(fleet_bus::Event::OrderChanged(Arc::new(o)));
        }
        let lat = 30.0 + f64::from(round) * 0.0001;
        for car in &cars {
            p.json(
                car,
                &json!({"ts": (Utc::now()).to_rfc3339(), "lat": lat, "lon": 122.1, "speed_kmh": 40.0, "soc_pct": 70.0,
                                "padding_to_fill_buffers": "x".repeat(64)}),
            )
            .await?;
            published += 1;
        }
        let mut waiting: HashSet<&str> = cars.iter().map(String::as_str).collect();
        reader
            .wait_for(&format!("round {round} on the reading client"), |m| {
                for v in m["vehicles"].as_array().into_iter().flatten() {
                    if v["lat"].as_f64() == Some(lat) {
                        waiting.remove(v["vin"].as_str().unwrap_or_default());
                    }
                }
                waiting.is_empty().then_some(())
            })
            .await?;
    }
    app.wait_until("every sample stored", || async { Ok(app.store.telemetry().count(None).await? == published) })
        .await?;
    // The reading client is still served after the drop.
    p.json(&cars[0], &at(29.5, 122.2, 0, 50.0)).await?;
    reader.wait_for("a move after the drop", |m| vehicle_in(m, &cars[0]).filter(|v| v["lat"] == 29.5).cloned()).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_closes_live_connections() -> anyhow::Result<()> {
    let mut app = TestApp::spawn(fleet_tests::Db::Sqlite).await;
    let admin = app.admin_token().await;
    let mut live = LiveClient::connect(&app.live_url(&admin, "")).await?;
    live.snapshot().await?;
    app.stop().await;
    assert!(live.next(Duration::from_secs(10)).await?.is_none(), "the server closes the connection");
    Ok(())
}

// Live sockets do not outlive their token (issue 17.2): a logout closes the sockets opened
// with that token (4001), a password change those of the user's other tokens (4002) while
// the changing session's own stays open, and an expired token's socket closes (4003).
both!(a_live_socket_closes_when_its_token_is_revoked, |app: TestApp| async move {
    let admin = app.admin_token().await;
    post(&app, &admin, "/api/v1/users", json!({"username": "alice", "password": "alice-pass-1", "role": "dispatcher"}))
        .await?;
    let (t1, t2, t3) = (
        app.login("alice", "alice-pass-1").await?,
        app.login("alice", "alice-pass-1").await?,
        app.login("alice", "alice-pass-1").await?,
    );
    let mut s1 = LiveClient::connect(&app.live_url(&t1, "")).await?;
    let mut s2 = LiveClient::connect(&app.live_url(&t2, "")).await?;
    let mut s3 = LiveClient::connect(&app.live_url(&t3, "")).await?;
    for s in [&mut s1, &mut s2, &mut s3] {
        s.snapshot().await?;
    }
    let r = app.http.post(app.url("/api/v1/auth/logout")).bearer_auth(&t1).send().await?;
    assert_eq!(r.status(), 204);
    assert_eq!(s1.closed().await?, (4001, "logged out".to_owned()));
    let r = app
        .http
        .post(app.url("/api/v1/auth/password"))
        .bearer_auth(&t2)
        .json(&json!({"old_password": "alice-pass-1", "new_password": "alice-pass-2"}))
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    assert_eq!(s3.closed().await?, (4002, "password changed".to_owned()));
    // The session that changed the password keeps its feed: the next order reaches it.
    post(&app, &admin, "/api/v1/units", json!({"id": "u1", "name": "市委办公室", "monthly_energy_budget_kwh": 100.0}))
        .await?;
    let order = post(
        &app,
        &t2,
        "/api/v1/orders",
        json!({"unit_id": "u1", "passengers": 1, "pickup": {"lat": 30.0, "lon": 122.1, "name": "甲"},
        "dropoff": {"lat": 30.01, "lon": 122.11, "name": "乙"}, "purpose": "会议"}),
    )
    .await?;
    s2.wait_for("the order on the changing session's feed", |m| {
        (m["type"] == "order" && m["order"]["id"] == order["id"]).then_some(())
    })
    .await?;
    Ok(())
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_closes_when_its_token_expires() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(fleet_tests::Db::Sqlite, |s| s.token_ttl = Duration::from_secs(2)).await;
    let token = app.admin_token().await;
    let mut feed = LiveClient::connect(&app.live_url(&token, "")).await?;
    feed.snapshot().await?;
    assert_eq!(feed.closed().await?, (4003, "token expired".to_owned()));
    Ok(())
}

/// On a cluster, a logout through one instance closes the socket held by another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_closes_the_socket_on_another() -> anyhow::Result<()> {
    let first = TestApp::spawn_with(fleet_tests::Db::Postgres, |s| s.cluster = true).await;
    let second = first.sibling().await;
    let token = first.admin_token().await;
    let mut feed = LiveClient::connect(&second.live_url(&token, "")).await?;
    feed.snapshot().await?;
    let r = first.http.post(first.url("/api/v1/auth/logout")).bearer_auth(&token).send().await?;
    assert_eq!(r.status(), 204);
    assert_eq!(feed.closed().await?, (4001, "logged out".to_owned()));
    Ok(())
}

/// A revocation that reached no event (here: made in storage directly) is found when the
/// feed resynchronises after lost events: the socket closes with 4004.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_finds_a_token_revoked_without_an_event() -> anyhow::Result<()> {
    let app = TestApp::spawn(fleet_tests::Db::Sqlite).await;
    let token = app.admin_token().await;
    let me: Value = app.http.get(app.url("/api/v1/me")).bearer_auth(&token).send().await?.json().await?;
    let user_id = me["id"].as_i64().expect("the user's id");
    let mut feed = LiveClient::connect(&app.live_url(&token, "")).await?;
    feed.snapshot().await?;
    app.store.tokens().revoke_all_for(user_id, None).await?;
    app.bus().publish(fleet_bus::Event::Resync);
    assert_eq!(feed.closed().await?, (4004, "token revoked".to_owned()));
    Ok(())
}
