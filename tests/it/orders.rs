//! Orders over HTTP (docs/dispatch.md): the lifecycle, every refused transition, who may see and
//! do what, retried taps and `Idempotency-Key`, manual assignment and double booking.

use fleet_tests::live::LiveClient;
use fleet_tests::{Publisher, TestApp, both, random_vin};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A small world: two units (u1 asks for approval, u2 auto-approves), users for each role,
/// and cars with drivers.
pub(crate) struct World {
    pub admin: String,
    pub dispatcher: String,
    pub auditor: String,
    pub unit1: String,
    pub unit2: String,
    /// (VIN, driver id, driver's token) per car.
    pub cars: Vec<(String, String, String)>,
}

pub(crate) async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    let r = app.http.post(app.url(path)).bearer_auth(token).json(&body).send().await?;
    let status = r.status();
    let text = r.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// `PATCH` or `PUT` with a JSON body; answers the status and the JSON answer (null if none).
pub(crate) async fn send(
    app: &TestApp,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<(StatusCode, Value)> {
    let r = app.http.request(method, app.url(path)).bearer_auth(token).json(&body).send().await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

pub(crate) async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    send(app, reqwest::Method::PATCH, token, path, body).await
}

pub(crate) async fn put(app: &TestApp, token: &str, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    send(app, reqwest::Method::PUT, token, path, body).await
}

pub(crate) async fn get(app: &TestApp, token: &str, path: &str) -> anyhow::Result<(StatusCode, Value)> {
    let r = app.http.get(app.url(path)).bearer_auth(token).send().await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

async fn ok(app: &TestApp, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
    let (status, v) = post(app, token, path, body).await?;
    anyhow::ensure!(status.is_success(), "POST {path}: {status} {v}");
    Ok(v)
}

/// Builds the world with `n_cars` cars (5 seats, 71.7 kWh) in the pool.
pub(crate) async fn world(app: &TestApp, n_cars: usize) -> anyhow::Result<World> {
    let admin = app.admin_token().await;
    ok(app, &admin, "/api/v1/units", json!({"id": "u1", "name": "市委办公室", "monthly_energy_budget_kwh": 5000.0}))
        .await?;
    ok(
        app,
        &admin,
        "/api/v1/units",
        json!({"id": "u2", "name": "市财政局", "monthly_energy_budget_kwh": 5000.0, "auto_approve": true}),
    )
    .await?;
    let user = |name: &'static str, role: &'static str, unit: Option<&'static str>, driver: Option<String>| {
        let admin = admin.clone();
        async move {
            ok(app, &admin, "/api/v1/users", json!({"username": name, "password": format!("{name}-pass"), "role": role, "unit_id": unit, "driver_id": driver})).await?;
            app.login(name, &format!("{name}-pass")).await
        }
    };
    let dispatcher = user("disp", "dispatcher", None, None).await?;
    let auditor = user("audit", "auditor", None, None).await?;
    let unit1 = user("unit1", "unit", Some("u1"), None).await?;
    let unit2 = user("unit2", "unit", Some("u2"), None).await?;
    let mut cars = Vec::new();
    for i in 0..n_cars {
        let vin = random_vin();
        ok(app, &admin, "/api/v1/vehicles", json!({"vin": vin, "plate": format!("浙L·D7{i:04}"), "model": "BYD e6", "seats": 5, "battery_kwh": 71.7, "consumption_kwh_per_100km": 17.0})).await?;
        let driver_id = format!("d{i}");
        ok(
            app,
            &admin,
            "/api/v1/drivers",
            json!({"id": driver_id, "name": format!("司机{i}"), "phone": format!("1380000{i:04}"), "vehicle_vin": vin}),
        )
        .await?;
        let name = format!("driver{i}");
        ok(
            app,
            &admin,
            "/api/v1/users",
            json!({"username": name, "password": "driver-pass", "role": "driver", "driver_id": driver_id}),
        )
        .await?;
        let token = app.login(&name, "driver-pass").await?;
        cars.push((vin, driver_id, token));
    }
    Ok(World { admin, dispatcher, auditor, unit1, unit2, cars })
}

pub(crate) fn order_body(unit: &str, passengers: u32) -> Value {
    json!({"unit_id": unit, "passengers": passengers,
           "pickup": {"lat": 30.0123, "lon": 122.1034, "name": "舟山市行政中心"},
           "dropoff": {"lat": 29.9977, "lon": 122.2047, "name": "普陀区政府"},
           "purpose": "调研"})
}

/// Feeds a car a fresh sample at a position with a charge, over MQTT, and waits until the
/// car's stored state (what dispatch reads) is at it.
pub(crate) async fn feed(
    app: &TestApp,
    p: &mut Publisher,
    vin: &str,
    lat: f64,
    lon: f64,
    soc: f64,
) -> anyhow::Result<()> {
    let ts =
        chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).expect("now is a valid time");
    p.json(
        vin,
        &json!({"ts": ts.to_rfc3339(), "lat": lat, "lon": lon, "soc_pct": soc, "speed_kmh": 0.0, "charging": false}),
    )
    .await?;
    app.wait_for_state(vin, "at the fed sample", |s| s.ts >= ts).await.map(|_| ())
}

fn events(v: &Value) -> Vec<(String, String, String)> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

both!(an_order_goes_from_application_to_completion_with_its_history, |app: TestApp| async move {
    let w = world(&app, 1).await?;
    let (vin, driver_id, driver) = w.cars[0].clone();
    let o = ok(&app, &w.unit1, "/api/v1/orders", order_body("u1", 2)).await?;
    let id = o["id"].as_str().unwrap().to_owned();
    assert_eq!(o["status"], "pending_approval");
    assert_eq!(o["pickup"]["name"], "舟山市行政中心");
    assert!(o["vin"].is_null() && o["driver_id"].is_null());

    assert_eq!(ok(&app, &w.unit1, &format!("/api/v1/orders/{id}/approve"), json!({})).await?["status"], "approved");
    let assigned = ok(&app, &w.dispatcher, &format!("/api/v1/orders/{id}/assign"), json!({"vin": vin})).await?;
    assert_eq!(
        (assigned["status"].as_str(), assigned["vin"].as_str(), assigned["driver_id"].as_str()),
        (Some("assigned"), Some(vin.as_str()), Some(driver_id.as_str()))
    );
    assert_eq!(ok(&app, &driver, &format!("/api/v1/orders/{id}/accept"), json!({})).await?["status"], "accepted");
    // A retried tap by the same driver: 200, unchanged, nothing recorded.
    assert_eq!(ok(&app, &driver, &format!("/api/v1/orders/{id}/accept"), json!({})).await?["status"], "accepted");
    assert_eq!(ok(&app, &driver, &format!("/api/v1/orders/{id}/pickup"), json!({})).await?["status"], "picked_up");
    // The dispatcher completes on the driver's behalf.
    let done =
        ok(&app, &w.dispatcher, &format!("/api/v1/orders/{id}/complete"), json!({"reason": "司机手机没电"})).await?;
    assert_eq!(done["status"], "completed");

    let (status, detail) = get(&app, &w.unit1, &format!("/api/v1/orders/{id}")).await?;
    assert_eq!(status, 200);
    let ev = |a: &str, t: &str, u: &str| (a.to_owned(), t.to_owned(), u.to_owned());
    assert_eq!(
        events(&detail),
        vec![
            ev("create", "pending_approval", "unit1"),
            ev("approve", "approved", "unit1"),
            ev("assign", "assigned", "disp"),
            ev("accept", "accepted", "driver0"),
            ev("pickup", "picked_up", "driver0"),
            ev("complete", "completed", "disp"),
        ]
    );
    let last = &detail["events"][5];
    assert_eq!(
        (last["on_behalf"].as_bool(), last["reason"].as_str(), last["from"].as_str()),
        (Some(true), Some("司机手机没电"), Some("picked_up"))
    );
    assert!(detail["events"][0]["from"].is_null());

    // Listings: by status, the unit's own, the driver's own.
    let (_, mine) = get(&app, &w.unit1, "/api/v1/orders?status=completed").await?;
    assert_eq!(mine["orders"].as_array().unwrap().len(), 1);
    let (_, none) = get(&app, &w.unit2, "/api/v1/orders").await?;
    assert!(none["orders"].as_array().unwrap().is_empty(), "another unit sees nothing");
    let (_, drivers) = get(&app, &driver, "/api/v1/orders").await?;
    assert_eq!(drivers["orders"][0]["id"], id.as_str());
    let (status, _) = get(&app, &w.admin, "/api/v1/orders?status=nonsense").await?;
    assert_eq!(status, 400);
    Ok(())
});

both!(a_unit_that_auto_approves_starts_approved_and_validation_names_the_field, |app: TestApp| async move {
    let w = world(&app, 0).await?;
    let o = ok(&app, &w.unit2, "/api/v1/orders", order_body("u2", 3)).await?;
    assert_eq!(o["status"], "approved");
    let (_, detail) = get(&app, &w.unit2, &format!("/api/v1/orders/{}", o["id"].as_str().unwrap())).await?;
    assert_eq!(detail["events"][0]["reason"], "auto_approve");
    let mut bad = order_body("u2", 0);
    let (status, body) = post(&app, &w.unit2, "/api/v1/orders", bad.clone()).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (422, Some("validation_failed")));
    assert!(body["error"]["message"].as_str().unwrap().starts_with("passengers"), "{body}");
    bad["passengers"] = json!(2);
    bad["pickup"]["lat"] = json!(123.0);
    let (status, body) = post(&app, &w.unit2, "/api/v1/orders", bad).await?;
    assert_eq!(status, 422);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("pickup"), "{body}");
    let (status, _) = post(&app, &w.admin, "/api/v1/orders", order_body("nope", 1)).await?;
    assert_eq!(status, 422, "an unknown unit");
    let (status, _) =
        post(&app, &w.unit2, &format!("/api/v1/orders/{}/cancel", o["id"].as_str().unwrap()), json!({"reason": 5}))
            .await?;
    assert_eq!(status, 422, "a reason must be text");
    Ok(())
});

async fn refused(app: &TestApp, token: &str, id: &str, action: &str, vin: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/orders/{id}/{action}");
    let body = if action == "assign" { json!({"vin": vin}) } else { json!({}) };
    let (status, v) = post(app, token, &path, body).await?;
    anyhow::ensure!(status == 409 && v["error"]["code"] == "invalid_transition", "{path}: {status} {v}");
    Ok(())
}

async fn new_order(app: &TestApp, token: &str) -> anyhow::Result<String> {
    Ok(ok(app, token, "/api/v1/orders", order_body("u1", 1)).await?["id"].as_str().unwrap().to_owned())
}

both!(every_transition_the_status_does_not_allow_is_a_409, |app: TestApp| async move {
    let w = world(&app, 1).await?;
    let (vin, _, driver) = w.cars[0].clone();
    // pending_approval: nothing but approve, reject, cancel.
    let pending = new_order(&app, &w.unit1).await?;
    for action in ["assign", "accept", "decline", "pickup", "complete"] {
        refused(&app, &w.admin, &pending, action, &vin).await?;
    }
    // approved: not approve (by someone else), reject, accept, pickup, complete.
    let approved = new_order(&app, &w.unit1).await?;
    ok(&app, &w.unit1, &format!("/api/v1/orders/{approved}/approve"), json!({})).await?;
    for action in ["approve", "reject", "accept", "decline", "pickup", "complete"] {
        refused(&app, &w.admin, &approved, action, &vin).await?;
    }
    // assigned: no pickup before accepting, no completion.
    ok(&app, &w.dispatcher, &format!("/api/v1/orders/{approved}/assign"), json!({"vin": vin})).await?;
    refused(&app, &driver, &approved, "pickup", &vin).await?;
    refused(&app, &driver, &approved, "complete", &vin).await?;
    refused(&app, &w.unit1, &approved, "approve", &vin).await?;
    // final statuses allow nothing.
    let rejected = new_order(&app, &w.unit1).await?;
    ok(&app, &w.unit1, &format!("/api/v1/orders/{rejected}/reject"), json!({"reason": "不符合规定"})).await?;
    for action in ["approve", "cancel", "assign"] {
        refused(&app, &w.admin, &rejected, action, &vin).await?;
    }
    ok(&app, &w.unit1, &format!("/api/v1/orders/{approved}/cancel"), json!({})).await?;
    for action in ["accept", "cancel", "complete"] {
        refused(&app, &w.admin, &approved, action, &vin).await?;
    }
    Ok(())
});

both!(units_and_drivers_see_and_act_only_on_their_own_orders, |app: TestApp| async move {
    let w = world(&app, 3).await?;
    let (vin0, _, driver0) = w.cars[0].clone();
    let (_, _, driver1) = w.cars[1].clone();
    let id = ok(&app, &w.unit1, "/api/v1/orders", order_body("u1", 1)).await?["id"].as_str().unwrap().to_owned();
    let path = |a: &str| format!("/api/v1/orders/{id}/{a}");
    // Outside the view: 404 before anything else.
    assert_eq!(get(&app, &w.unit2, &format!("/api/v1/orders/{id}")).await?.0, 404);
    assert_eq!(post(&app, &w.unit2, &path("approve"), json!({})).await?.0, 404);
    assert_eq!(get(&app, &driver0, &format!("/api/v1/orders/{id}")).await?.0, 404, "not yet the driver's");
    // In view but not the role's: 403.
    assert_eq!(post(&app, &w.auditor, &path("approve"), json!({})).await?.0, 403);
    assert_eq!(get(&app, &w.auditor, &format!("/api/v1/orders/{id}")).await?.0, 200, "auditors read everything");
    assert_eq!(post(&app, &w.unit1, &path("assign"), json!({"vin": vin0})).await?.0, 403);
    assert_eq!(post(&app, &w.unit1, "/api/v1/orders", order_body("u2", 1)).await?.0, 404, "another unit's name");
    assert_eq!(post(&app, &driver0, "/api/v1/orders", order_body("u1", 1)).await?.0, 403);
    let mut over = order_body("u1", 1);
    over["override_budget"] = json!(true);
    assert_eq!(post(&app, &w.dispatcher, "/api/v1/orders", over.clone()).await?.0, 403, "only admins override budgets");
    assert_eq!(post(&app, &w.admin, "/api/v1/orders", over).await?.0, 201);

    ok(&app, &w.unit1, &path("approve"), json!({})).await?;
    ok(&app, &w.dispatcher, &path("assign"), json!({"vin": vin0})).await?;
    assert_eq!(get(&app, &driver0, &format!("/api/v1/orders/{id}")).await?.0, 200);
    assert_eq!(post(&app, &driver1, &path("accept"), json!({})).await?.0, 404, "another driver");
    assert_eq!(post(&app, &driver0, &path("approve"), json!({})).await?.0, 403, "drivers do not approve");
    assert_eq!(post(&app, &driver0, &path("cancel"), json!({})).await?.0, 403, "drivers do not cancel");
    // A decline puts the order back and excludes the car; a retried decline answers the same.
    let back = ok(&app, &driver0, &path("decline"), json!({"reason": "车辆故障"})).await?;
    assert_eq!((back["status"].as_str(), back["vin"].is_null()), (Some("approved"), true));
    let again = ok(&app, &driver0, &path("decline"), json!({"reason": "车辆故障"})).await?;
    assert_eq!(again["status"], "approved");
    let (_, detail) = get(&app, &w.admin, &format!("/api/v1/orders/{id}")).await?;
    assert_eq!(
        events(&detail).iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["create", "approve", "assign", "decline"],
        "the repeat recorded nothing"
    );
    assert_eq!(detail["events"][3]["vin"], vin0.as_str());

    // Reassigned to the other driver's car, the order is no longer the first driver's: they
    // neither see it nor act on it; only their exact repeat answers, without the new car.
    let (vin1, driver1_id, _) = w.cars[1].clone();
    ok(&app, &w.dispatcher, &path("assign"), json!({"vin": vin1})).await?;
    assert_eq!(
        get(&app, &driver0, &format!("/api/v1/orders/{id}")).await?.0,
        404,
        "a former driver does not see the order"
    );
    for action in ["accept", "pickup", "complete"] {
        assert_eq!(post(&app, &driver0, &path(action), json!({})).await?.0, 404, "a former driver's {action}");
    }
    let again = ok(&app, &driver0, &path("decline"), json!({"reason": "车辆故障"})).await?;
    assert_eq!(
        (again["status"].as_str(), again["vin"].is_null(), again["driver_id"].is_null()),
        (Some("assigned"), true, true),
        "{again}"
    );
    let (_, list) = get(&app, &driver0, "/api/v1/orders").await?;
    assert!(
        list["orders"].as_array().unwrap().iter().all(|o| o["id"] != id.as_str()),
        "not in the former driver's list"
    );
    ok(&app, &driver1, &path("accept"), json!({})).await?;
    assert_eq!(post(&app, &driver0, &path("complete"), json!({})).await?.0, 404);
    let (_, detail) = get(&app, &w.admin, &format!("/api/v1/orders/{id}")).await?;
    assert_eq!(
        events(&detail).iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["create", "approve", "assign", "decline", "assign", "accept"]
    );
    assert_eq!(
        (detail["status"].as_str(), detail["vin"].as_str(), detail["driver_id"].as_str()),
        (Some("accepted"), Some(vin1.as_str()), Some(driver1_id.as_str()))
    );
    assert_eq!(detail["events"][5]["actor"], "driver1", "the accept is the current driver's");

    // Taken from the second driver by hand: their live feed says it left them, not who has it.
    let mut feed1 = LiveClient::connect(&app.live_url(&driver1, "")).await?;
    feed1.snapshot().await?;
    ok(&app, &w.dispatcher, &path("assign"), json!({"vin": w.cars[2].0})).await?;
    let gone = feed1
        .wait_for("the reassignment on the second driver's feed", |m| {
            (m["type"] == "order" && m["order"]["id"] == id.as_str()).then(|| m["order"].clone())
        })
        .await?;
    assert_eq!(
        (gone["status"].as_str(), gone["vin"].is_null(), gone["driver_id"].is_null()),
        (Some("assigned"), true, true),
        "{gone}"
    );
    Ok(())
});

both!(an_idempotency_key_answers_a_retry_as_the_first_time, |app: TestApp| async move {
    let w = world(&app, 0).await?;
    let send = |key: &'static str, path: &'static str, body: Value| {
        let app = &app;
        let token = w.unit1.clone();
        async move {
            let r = app
                .http
                .post(app.url(path))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await?;
            let replayed = r.headers().get("idempotent-replayed").is_some();
            Ok::<_, anyhow::Error>((r.status(), replayed, r.json::<Value>().await?))
        }
    };
    let (s1, r1, first) = send("tap-1", "/api/v1/orders", order_body("u1", 2)).await?;
    let (s2, r2, second) = send("tap-1", "/api/v1/orders", order_body("u1", 2)).await?;
    assert_eq!((s1.as_u16(), r1, s2.as_u16(), r2), (201, false, 201, true));
    assert_eq!(first, second, "the same answer, the same order");
    let (_, list) = get(&app, &w.unit1, "/api/v1/orders").await?;
    assert_eq!(list["orders"].as_array().unwrap().len(), 1, "one order, not two");
    // The key reused for another request is refused; a bad key is a 400.
    let id = first["id"].as_str().unwrap().to_owned();
    let r = app
        .http
        .post(app.url(&format!("/api/v1/orders/{id}/cancel")))
        .bearer_auth(&w.unit1)
        .header("Idempotency-Key", "tap-1")
        .send()
        .await?;
    assert_eq!(r.status(), 409);
    let r = app
        .http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&w.unit1)
        .header("Idempotency-Key", "a key with spaces")
        .json(&order_body("u1", 1))
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    // Another user's same key is theirs alone.
    let r = app
        .http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&w.dispatcher)
        .header("Idempotency-Key", "tap-1")
        .json(&order_body("u1", 1))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    assert_ne!(r.json::<Value>().await?["id"], first["id"]);
    Ok(())
});

both!(a_car_holding_an_overlapping_order_is_busy_until_it_is_released, |app: TestApp| async move {
    let w = world(&app, 1).await?;
    let vin = w.cars[0].0.clone();
    let a = ok(&app, &w.unit2, "/api/v1/orders", order_body("u2", 1)).await?["id"].as_str().unwrap().to_owned();
    let b = ok(&app, &w.unit2, "/api/v1/orders", order_body("u2", 1)).await?["id"].as_str().unwrap().to_owned();
    ok(&app, &w.dispatcher, &format!("/api/v1/orders/{a}/assign"), json!({"vin": vin})).await?;
    let (status, body) = post(&app, &w.dispatcher, &format!("/api/v1/orders/{b}/assign"), json!({"vin": vin})).await?;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (409, Some("vehicle_busy")));
    let (status, _) =
        post(&app, &w.dispatcher, &format!("/api/v1/orders/{b}/assign"), json!({"vin": random_vin()})).await?;
    assert_eq!(status, 422, "an unknown car");
    ok(&app, &w.unit2, &format!("/api/v1/orders/{a}/cancel"), json!({"reason": "会议取消"})).await?;
    let got = ok(&app, &w.dispatcher, &format!("/api/v1/orders/{b}/assign"), json!({"vin": vin})).await?;
    assert_eq!(got["vin"], vin.as_str(), "the canceled order released the car");
    Ok(())
});

both!(a_csv_import_keeps_the_good_rows_and_reports_the_bad_by_line, |app: TestApp| async move {
    let w = world(&app, 0).await?;
    let header =
        "unit_id,passengers,pickup_name,pickup_lat,pickup_lon,dropoff_name,dropoff_lat,dropoff_lon,pickup_at,purpose";
    let mut csv = format!("\u{feff}{header}\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "u2,{},普陀山机场,29.9342,122.3617,朱家尖国际会议中心,29.9050,122.3900,,第{i}批代表接站\n",
            1 + i % 4
        ));
    }
    csv.push_str("u2,0,a,30,122,b,30,122,,p\n"); // line 302: no passengers
    csv.push_str("nope,1,a,30,122,b,30,122,,p\n"); // line 303: unknown unit
    csv.push_str("u2,1,a,30,122,b,30,122,tomorrow,p\n"); // line 304: bad time
    let send = |token: String, body: String, mime: &'static str| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(app.url("/api/v1/orders/import"))
                .bearer_auth(token)
                .header("content-type", mime)
                .body(body)
                .send()
                .await?;
            Ok::<_, anyhow::Error>((r.status(), r.json::<Value>().await?))
        }
    };
    let (status, result) = send(w.dispatcher.clone(), csv, "text/csv; charset=utf-8").await?;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["created"].as_array().unwrap().len(), 300);
    let errors: Vec<(u64, String)> = result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["message"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [302, 303, 304], "{errors:?}");
    assert!(
        errors[0].1.starts_with("passengers")
            && errors[1].1.starts_with("unit_id")
            && errors[2].1.starts_with("pickup_at"),
        "{errors:?}"
    );
    let (_, list) = get(&app, &w.admin, "/api/v1/orders?status=approved&limit=1000").await?;
    assert_eq!(list["orders"].as_array().unwrap().len(), 300, "auto-approved in u2");

    // A unit imports only its own rows; a wrong header or a non-CSV body refuses the file.
    let (status, result) = send(
        w.unit1.clone(),
        format!("{header}\nu1,1,a,30,122,b,30.1,122,,p\nu2,1,a,30,122,b,30.1,122,,p\n"),
        "text/csv",
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!((result["created"].as_array().unwrap().len(), result["errors"][0]["line"].as_u64()), (1, Some(3)));
    let (status, body) = send(w.dispatcher.clone(), "unit,people\nu1,1\n".into(), "text/csv").await?;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("header"), "{body}");
    assert_eq!(send(w.dispatcher.clone(), "{}".into(), "application/json").await?.0, 400);
    assert_eq!(send(w.auditor.clone(), format!("{header}\n"), "text/csv").await?.0, 403);
    // Over 10 MiB is refused; 1–10 MiB is fine for this route only.
    let big = format!("{header}\n{}", "u2,1,a,30,122,b,30.1,122,,p\n".repeat(400_000));
    assert!(big.len() > 10 * 1024 * 1024);
    assert_eq!(send(w.dispatcher.clone(), big, "text/csv").await?.0, 413);
    Ok(())
});
