//! Dispatch end to end (docs/dispatch.md): cars fed over MQTT, orders over HTTP, the batch
//! assigning them, drivers told over the live feed; infeasibility reasons, decline and
//! timeout reassignment, reservations, concurrent orders, and two instances on one database.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use fleet_tests::live::LiveClient;
use fleet_tests::{Publisher, Settings, TestApp, both_with};
use serde_json::{Value, json};

use crate::orders::{feed, get, order_body, post, world};

/// Fast batches for tests; a long accept timeout unless a test wants one.
fn fast(s: &mut Settings) {
    s.dispatch.batch_interval = Duration::from_millis(150);
}

fn fast_timeout(s: &mut Settings) {
    fast(s);
    s.dispatch.accept_timeout = Duration::from_secs(1);
}

/// 舟山市行政中心 (Lincheng): every test's pickup.
const PICKUP: (f64, f64) = (30.0123, 122.1034);

async fn create(app: &TestApp, token: &str, body: Value) -> anyhow::Result<String> {
    let (status, v) = post(app, token, "/api/v1/orders", body).await?;
    anyhow::ensure!(status == 201, "creating an order: {status} {v}");
    Ok(v["id"].as_str().unwrap().to_owned())
}

/// Polls `GET path` until `check` holds for its answer (within the default deadline);
/// answers it, or fails with the last answer seen.
async fn poll(
    app: &TestApp,
    token: &str,
    path: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + fleet_tests::DEFAULT_DEADLINE;
    loop {
        let (_, v) = get(app, token, path).await?;
        if check(&v) {
            return Ok(v);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; last seen {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the order satisfies `check`; answers it.
async fn wait_order(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    poll(app, token, &format!("/api/v1/orders/{id}"), what, check).await
}

both_with!(the_batch_gives_the_nearest_feasible_car_and_the_driver_is_told_live, fast, |app: TestApp| async move {
    let w = world(&app, 2).await?;
    let mut p = Publisher::connect().await?;
    let (near, far) = (&w.cars[0], &w.cars[1]);
    feed(&app, &mut p, &far.0, 30.0300, 122.1300, 90.0).await?; // about 3.4 km away
    feed(&app, &mut p, &near.0, 30.0140, 122.1050, 60.0).await?; // about 240 m away
    let mut driver_feed = LiveClient::connect(&app.live_url(&near.2, "")).await?;
    driver_feed.snapshot().await?;

    let id = create(&app, &w.unit2, order_body("u2", 2)).await?;
    let told = driver_feed
        .wait_for("the driver's assignment", |m| {
            (m["type"] == "order" && m["order"]["status"] == "assigned").then(|| m["order"].clone())
        })
        .await?;
    assert_eq!(
        (told["id"].as_str(), told["vin"].as_str(), told["driver_id"].as_str()),
        (Some(id.as_str()), Some(near.0.as_str()), Some(near.1.as_str()))
    );
    assert!(told["unmatched_reason"].is_null());
    for action in ["accept", "pickup", "complete"] {
        let (status, o) = post(&app, &near.2, &format!("/api/v1/orders/{id}/{action}"), json!({})).await?;
        assert_eq!(status, 200, "{action}: {o}");
    }
    let (_, done) = get(&app, &w.admin, &format!("/api/v1/orders/{id}")).await?;
    assert_eq!(done["status"], "completed");
    let assign = done["events"].as_array().unwrap().iter().find(|e| e["action"] == "assign").unwrap().clone();
    assert_eq!(assign["actor"], "dispatch");
    assert!(assign["reason"].as_str().unwrap().starts_with("pickup 0.3 km"), "{assign}");
    Ok(())
});

both_with!(an_order_no_car_can_take_waits_with_the_reason, fast, |app: TestApp| async move {
    let w = world(&app, 3).await?;
    let mut p = Publisher::connect().await?;
    let (offline, low, full) = (&w.cars[0], &w.cars[1], &w.cars[2]);
    // An old sample: offline.
    p.json(&offline.0, &json!({"ts": (Utc::now() - chrono::Duration::minutes(10)).to_rfc3339(), "lat": PICKUP.0, "lon": PICKUP.1, "soc_pct": 95.0})).await?;
    app.wait_for_samples(&offline.0, 1).await?;
    let two = create(&app, &w.unit2, order_body("u2", 2)).await?;
    wait_order(&app, &w.admin, &two, "no car online", |o| o["unmatched_reason"] == "no_car_online").await?;
    // Seven passengers: no car has the seats, online or not.
    let seven = create(&app, &w.unit2, order_body("u2", 7)).await?;
    wait_order(&app, &w.admin, &seven, "no car with 7 seats", |o| o["unmatched_reason"] == "no_car_with_enough_seats")
        .await?;
    // A car at 22 %: 15.8 of 71.7 kWh with 14.3 kWh kept in reserve; the 13 road-km trip to
    // Putuo needs 2.5 kWh.
    feed(&app, &mut p, &low.0, 30.0130, 122.1040, 22.0).await?;
    let o = wait_order(&app, &w.admin, &two, "no car with enough charge", |o| {
        o["unmatched_reason"] == "no_car_with_enough_charge"
    })
    .await?;
    assert_eq!(o["status"], "approved");
    // A charged car arrives: the order gets it and its reason clears.
    feed(&app, &mut p, &full.0, 30.0200, 122.1100, 90.0).await?;
    let o = wait_order(&app, &w.admin, &two, "assigned to the charged car", |o| o["status"] == "assigned").await?;
    assert_eq!((o["vin"].as_str(), o["unmatched_reason"].is_null()), (Some(full.0.as_str()), true));
    let (_, seven) = get(&app, &w.admin, &format!("/api/v1/orders/{seven}")).await?;
    assert_eq!(
        (seven["status"].as_str(), seven["unmatched_reason"].as_str()),
        (Some("approved"), Some("no_car_with_enough_seats"))
    );
    Ok(())
});

both_with!(a_decline_and_a_timeout_each_put_the_order_back_to_another_car, fast_timeout, |app: TestApp| async move {
    let w = world(&app, 2).await?;
    let mut p = Publisher::connect().await?;
    let (first, second) = (&w.cars[0], &w.cars[1]);
    feed(&app, &mut p, &first.0, 30.0130, 122.1040, 80.0).await?;
    feed(&app, &mut p, &second.0, 30.0300, 122.1300, 80.0).await?;
    let mut second_feed = LiveClient::connect(&app.live_url(&second.2, "")).await?;
    second_feed.snapshot().await?;
    let id = create(&app, &w.unit2, order_body("u2", 1)).await?;
    wait_order(&app, &w.admin, &id, "the nearer car", |o| o["vin"] == first.0.as_str()).await?;
    let (status, back) =
        post(&app, &first.2, &format!("/api/v1/orders/{id}/decline"), json!({"reason": "正在充电"})).await?;
    assert_eq!((status.as_u16(), back["status"].as_str()), (200, Some("approved")));
    wait_order(&app, &w.admin, &id, "the other car after the decline", |o| {
        o["vin"] == second.0.as_str() && o["status"] == "assigned"
    })
    .await?;
    // The second driver does not answer within a second: back again, both cars excluded,
    // and the driver's live feed says the order left them.
    second_feed
        .wait_for("the assignment on the second driver's feed", |m| {
            (m["type"] == "order" && m["order"]["status"] == "assigned").then_some(())
        })
        .await?;
    let gone = second_feed
        .wait_for("the timeout on the second driver's feed", |m| {
            (m["type"] == "order" && m["order"]["status"] == "approved").then(|| m["order"].clone())
        })
        .await?;
    assert!(gone["driver_id"].is_null());
    let o = wait_order(&app, &w.admin, &id, "waiting with only excluded cars", |o| {
        o["unmatched_reason"] == "excluded_cars_only"
    })
    .await?;
    assert_eq!(o["status"], "approved");
    let history: Vec<(String, String, String)> = o["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
                e["vin"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let ev = |a: &str, actor: &str, vin: &str| (a.to_owned(), actor.to_owned(), vin.to_owned());
    assert_eq!(
        history,
        vec![
            ev("create", "unit2", ""),
            ev("assign", "dispatch", &first.0),
            ev("decline", "driver0", &first.0),
            ev("assign", "dispatch", &second.0),
            ev("expire", "dispatch", &second.0),
        ]
    );
    assert_eq!(o["events"][4]["reason"], "accept_timeout");
    assert_eq!(o["events"][2]["reason"], "正在充电");
    Ok(())
});

both_with!(
    a_booked_order_reserves_its_car_only_for_its_window,
    |s: &mut Settings| {
        fast(s);
        s.dispatch.lead = Duration::from_secs(3600);
    },
    |app: TestApp| async move {
        let w = world(&app, 1).await?;
        let mut p = Publisher::connect().await?;
        let car = &w.cars[0];
        feed(&app, &mut p, &car.0, 30.0130, 122.1040, 95.0).await?;
        // Booked for 50 minutes from now (within the hour's lead): matched now, the car held
        // from 35 minutes on.
        let mut booked = order_body("u2", 2);
        booked["pickup_at"] = json!((Utc::now() + chrono::Duration::minutes(50)).to_rfc3339());
        let booked = create(&app, &w.unit2, booked).await?;
        wait_order(&app, &w.admin, &booked, "the booked order assigned", |o| o["status"] == "assigned").await?;
        // A short trip now fits before the booking.
        let mut short = order_body("u2", 1);
        short["dropoff"] = json!({"lat": 30.0200, "lon": 122.1100, "name": "定海区政府"});
        let short = create(&app, &w.unit2, short).await?;
        wait_order(&app, &w.admin, &short, "the short trip gets the car too", |o| {
            o["status"] == "assigned" && o["vin"] == car.0.as_str()
        })
        .await?;
        // Completing the short trip frees the car now; a long trip still overlaps the booking.
        for action in ["accept", "pickup", "complete"] {
            post(&app, &car.2, &format!("/api/v1/orders/{short}/{action}"), json!({})).await?;
        }
        let mut long = order_body("u2", 1);
        long["dropoff"] = json!({"lat": 30.2447, "lon": 122.2106, "name": "岱山县政府"});
        let long = create(&app, &w.unit2, long).await?;
        wait_order(&app, &w.admin, &long, "the long trip waits for the reserved car", |o| {
            o["unmatched_reason"] == "all_cars_reserved"
        })
        .await?;
        Ok(())
    }
);

/// Every car holds at most one order at a time among the orders that occupy cars.
fn assert_no_double_booking(orders: &[Value]) {
    let mut by_car: HashMap<&str, usize> = HashMap::new();
    for o in orders {
        if let Some(vin) = o["vin"].as_str()
            && ["assigned", "accepted", "picked_up"].contains(&o["status"].as_str().unwrap_or(""))
        {
            *by_car.entry(vin).or_default() += 1;
        }
    }
    let doubled: Vec<_> = by_car.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "cars double-booked: {doubled:?}");
}

both_with!(a_hundred_concurrent_orders_never_double_book_a_car, fast, |app: TestApp| async move {
    let w = world(&app, 20).await?;
    let mut p = Publisher::connect().await?;
    for (i, car) in w.cars.iter().enumerate() {
        feed(&app, &mut p, &car.0, 30.0 + i as f64 * 0.002, 122.1 + i as f64 * 0.001, 85.0).await?;
    }
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (http, url, token) = (app.http.clone(), app.url("/api/v1/orders"), w.unit2.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url).bearer_auth(token).json(&order_body("u2", 1)).send().await.map(|r| r.status())
        }));
    }
    for t in tasks {
        assert_eq!(t.await??, 201);
    }
    let listing = poll(
        &app,
        &w.admin,
        "/api/v1/orders?limit=1000",
        "every car assigned and the rest waiting with a reason",
        |l| {
            let orders = l["orders"].as_array().unwrap();
            let assigned = orders.iter().filter(|o| o["status"] == "assigned").count();
            let waiting_with_reason =
                orders.iter().filter(|o| o["status"] == "approved" && !o["unmatched_reason"].is_null()).count();
            assigned == 20 && waiting_with_reason == 80
        },
    )
    .await?;
    assert_no_double_booking(listing["orders"].as_array().unwrap());
    Ok(())
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_never_double_book_and_the_survivor_takes_over() -> anyhow::Result<()> {
    let mut first = TestApp::spawn_with(fleet_tests::Db::Postgres, fast).await;
    let second = first.sibling().await;
    let w = world(&first, 10).await?;
    let mut p = Publisher::connect().await?;
    for (i, car) in w.cars.iter().enumerate() {
        feed(&first, &mut p, &car.0, 30.0 + i as f64 * 0.002, 122.1, 85.0).await?;
    }
    // Orders through both instances at once; cars reassigned by hand on both meanwhile.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = if i % 2 == 0 { &first } else { &second };
        let (http, url, token) = (app.http.clone(), app.url("/api/v1/orders"), w.unit2.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url).bearer_auth(token).json(&order_body("u2", 1)).send().await.map(|r| r.status())
        }));
    }
    for t in tasks {
        assert_eq!(t.await??, 201);
    }
    let admin = w.admin.clone();
    first
        .wait_until("ten orders assigned", || async {
            let (_, l) = get(&second, &admin, "/api/v1/orders?status=assigned").await?;
            Ok(l["orders"].as_array().unwrap().len() == 10)
        })
        .await?;
    let (_, all) = get(&second, &admin, "/api/v1/orders?limit=1000").await?;
    assert_no_double_booking(all["orders"].as_array().unwrap());
    // Manual reassignments racing on the two instances: one wins, none double-books.
    let waiting: Vec<String> = all["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "approved")
        .take(6)
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    let target = w.cars[0].0.clone();
    let mut races = Vec::new();
    for (i, id) in waiting.iter().enumerate() {
        let app = if i % 2 == 0 { &first } else { &second };
        let (http, url, token, vin) =
            (app.http.clone(), app.url(&format!("/api/v1/orders/{id}/assign")), w.dispatcher.clone(), target.clone());
        races.push(tokio::spawn(async move {
            http.post(url).bearer_auth(token).json(&json!({"vin": vin})).send().await.map(|r| r.status())
        }));
    }
    for r in races {
        assert_eq!(r.await??, 409, "the car already holds an order");
    }
    // The first instance stops; the second takes over the batches.
    first.stop().await;
    let car = &w.cars[0];
    let held = all["orders"].as_array().unwrap().iter().find(|o| o["vin"] == car.0.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    post(&second, &w.unit2, &format!("/api/v1/orders/{held}/cancel"), json!({})).await?;
    second
        .wait_until("the freed car taken by a waiting order through the second instance", || async {
            let (_, l) = get(&second, &admin, "/api/v1/orders?status=assigned").await?;
            Ok(l["orders"].as_array().unwrap().iter().any(|o| o["vin"] == car.0.as_str()))
        })
        .await?;
    let (_, all) = get(&second, &admin, "/api/v1/orders?limit=1000").await?;
    assert_no_double_booking(all["orders"].as_array().unwrap());
    Ok(())
}
