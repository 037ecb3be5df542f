//! The live feed (docs/live-feed.md) over a real WebSocket: snapshot, deltas after MQTT publishes,
//! filters, visibility, order events, refusals, and a client that never reads.

mod raw_socket;
mod revocation;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use fleet_domain::{Order, OrderStatus, Place, Vin};
use fleet_tests::live::{LiveClient, vehicle_in};
use fleet_tests::{Publisher, TestApp, both, random_vin};
use serde_json::{Value, json};

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
