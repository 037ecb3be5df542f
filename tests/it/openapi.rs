//! The OpenAPI document against the real thing: a realistic scenario (a unit, cars with
//! drivers and telemetry in JSON and GB/T 32960, users of every role, orders through their
//! whole lifecycle and their refusals, trips, statistics, the live feed) in which every
//! request body sent and every answer received is validated against the served document's
//! schema for that operation and status code. Every operation that answers JSON is called
//! with success at least once. Mismatches are gathered and reported together.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{Datelike, Utc};
use fleet_domain::{Sample, SampleSource, Vin};
use fleet_ingest::decode::gbt32960::Edition;
use fleet_tests::live::LiveClient;
use fleet_tests::openapi::OpenApi;
use fleet_tests::{Publisher, Settings, TestApp, both_with, random_vin};
use reqwest::Method;
use serde_json::{Value, json};

use crate::stats::served_drive;

/// What a call sends.
enum Body {
    None,
    /// A JSON body the document's request schema must accept.
    Json(Value),
    /// A JSON body sent to be refused: not checked against the request schema.
    Refused(Value),
    Csv(&'static str),
}

/// Makes calls, checks them against the document, and remembers what was covered.
struct Checker<'a> {
    app: &'a TestApp,
    spec: OpenApi,
    /// (method, path template, status) of every call.
    seen: Mutex<BTreeSet<(String, String, u16)>>,
    mismatches: Mutex<Vec<String>>,
}

impl<'a> Checker<'a> {
    async fn new(app: &'a TestApp) -> anyhow::Result<Self> {
        let doc: Value = app.http.get(app.url("/api/v1/openapi.json")).send().await?.json().await?;
        Ok(Self { app, spec: OpenApi::new(doc), seen: Mutex::default(), mismatches: Mutex::default() })
    }

    fn mismatch(&self, what: String) {
        self.mismatches.lock().unwrap().push(what);
    }

    /// Sends `method path` (the concrete path, query included) as the operation `template`,
    /// checks the request body and the answer, and answers the status and JSON (null when
    /// the answer has none).
    async fn call(
        &self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.app.http.request(method.clone(), self.app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::None => req,
            Body::Json(b) => {
                if let Err(e) = self.spec.check_request(method.as_str(), template, &b) {
                    self.mismatch(e);
                }
                req.json(&b)
            }
            Body::Refused(b) => req.json(&b),
            Body::Csv(text) => req.header("content-type", "text/csv").body(text),
        };
        let res = req.send().await?;
        let status = res.status().as_u16();
        let json_answer = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = res.bytes().await?;
        let value =
            if json_answer && !bytes.is_empty() { Some(serde_json::from_slice::<Value>(&bytes)?) } else { None };
        if json_answer || bytes.is_empty() {
            if let Err(e) = self.spec.check_response(method.as_str(), template, status, value.as_ref()) {
                self.mismatch(e);
            }
        } else if let Err(e) = self.spec.response(method.as_str(), template, status) {
            self.mismatch(e);
        }
        self.seen.lock().unwrap().insert((method.as_str().to_ascii_lowercase(), template.to_owned(), status));
        Ok((status, value.unwrap_or(Value::Null)))
    }

    async fn get(&self, template: &str, path: &str, token: &str) -> anyhow::Result<Value> {
        self.expect(200, Method::GET, template, path, Some(token), Body::None).await
    }

    async fn post(&self, template: &str, path: &str, token: &str, body: Value) -> anyhow::Result<Value> {
        let (status, v) = self.call(Method::POST, template, path, Some(token), Body::Json(body)).await?;
        anyhow::ensure!((200..300).contains(&status), "POST {path}: {status} {v}");
        Ok(v)
    }

    /// Logs in; answers the token.
    async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let body = Body::Json(json!({"username": username, "password": password}));
        let v = self.expect(200, Method::POST, LOGIN, LOGIN, None, body).await?;
        Ok(v["token"].as_str().unwrap_or_default().to_owned())
    }

    async fn expect(
        &self,
        want: u16,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method.clone(), template, path, token, body).await?;
        anyhow::ensure!(status == want, "{method} {path}: {status}, expected {want}: {v}");
        Ok(v)
    }

    /// A message of the live feed checked against a component schema.
    fn check_schema(&self, name: &str, what: &str, value: &Value) {
        match self.spec.schema(name) {
            Ok(schema) => {
                let errors = self.spec.validate_strict(schema, value);
                if !errors.is_empty() {
                    self.mismatch(format!("{what} as {name}: {}", errors.join("; ")));
                }
            }
            Err(e) => self.mismatch(e),
        }
    }

    /// Every operation that answers JSON on success, and was never called with success.
    fn uncovered(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        self.spec
            .operations()
            .into_iter()
            .filter(|(_, path)| path.starts_with("/api/") || path == "/healthz")
            .filter(|(method, path)| {
                (200..300).any(|code| self.spec.response_schema(method, path, code).is_ok_and(|s| s.is_some()))
            })
            .filter(|(method, path)| !seen.iter().any(|(m, p, s)| m == method && p == path && (200..300).contains(s)))
            .map(|(m, p)| format!("{m} {p}"))
            .collect()
    }
}

const LOGIN: &str = "/api/v1/auth/login";

fn quick(s: &mut Settings) {
    s.stats.interval = Duration::from_millis(200);
    // The scenario assigns by hand; a batch would race it.
    s.dispatch.batch_interval = Duration::from_secs(3600);
    // The served drive is stamped up to 13 minutes ahead of now.
    s.ingest_max_clock_ahead = Duration::from_secs(3600);
    // An online map, so that the map configuration's tile layers are not an empty list.
    s.map.tiles = vec![fleet_web::TileLayer {
        name: "tianditu".into(),
        url: "https://t{s}.tianditu.gov.cn/vec_w/wmts?TILEMATRIX={z}&TILEROW={y}&TILECOL={x}".into(),
        crs: fleet_web::TileCrs::Wgs84,
        attribution: "天地图".into(),
        subdomains: Some("01234567".into()),
        max_zoom: 18,
    }];
}

fn enc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// A GB/T 32960 report of `vin` at `secs` from now.
fn gbt_sample(vin: &str, secs: i64, source: SampleSource) -> Sample {
    let mut s = Sample::at(
        Vin::parse(vin).expect("a valid VIN"),
        Utc::now() + chrono::Duration::seconds(secs),
        30.0101,
        122.1012,
        source,
    );
    (s.speed_kmh, s.soc_pct, s.odometer_km) = (Some(12.5), Some(64.0), Some(2345.6));
    (s.battery_voltage_v, s.battery_current_a, s.battery_temp_c) = (Some(371.2), Some(-12.5), Some(28.0));
    (s.charging, s.ignition) = (Some(false), Some(true));
    s
}

both_with!(every_answer_and_request_matches_the_openapi_document, quick, |app: TestApp| async move {
    let api = Checker::new(&app).await?;
    use Method as M;

    // Operations and logins.
    api.expect(200, M::GET, "/healthz", "/healthz", None, Body::None).await?;
    api.expect(200, M::GET, "/api/v1/openapi.json", "/api/v1/openapi.json", None, Body::None).await?;
    let wrong = json!({"username": "admin", "password": "not-the-password"});
    api.expect(401, M::POST, LOGIN, LOGIN, None, Body::Json(wrong)).await?;
    api.expect(422, M::POST, LOGIN, LOGIN, None, Body::Refused(json!({"username": "admin"}))).await?;
    let admin = api.login("admin", fleet_tests::ADMIN_PASSWORD).await?;
    api.expect(401, M::GET, "/api/v1/me", "/api/v1/me", None, Body::None).await?;
    api.get("/api/v1/me", "/api/v1/me", &admin).await?;

    // A world with a served drive (trips, a spent budget, a drive without an order), made by
    // the statistics tests' scene, then more of everything through the checked calls.
    let (w, drove, _, drive_order, _, base) = served_drive(&app, 2.5).await?;
    let unit = api
        .post(
            "/api/v1/units",
            "/api/v1/units",
            &admin,
            json!({"id": "u9", "name": "市交通局", "monthly_energy_budget_kwh": 800.0, "auto_approve": false}),
        )
        .await?;
    assert_eq!(unit["id"], "u9");
    api.expect(
        409,
        M::POST,
        "/api/v1/units",
        "/api/v1/units",
        Some(&admin),
        Body::Json(json!({"id": "u9", "name": "again", "monthly_energy_budget_kwh": 1.0})),
    )
    .await?;
    let vin = random_vin();
    let vehicle = json!({"vin": vin, "plate": "浙L·D90001", "model": "BYD e6", "seats": 5, "battery_kwh": 71.7, "consumption_kwh_per_100km": 17.0, "unit_id": "u9"});
    api.post("/api/v1/vehicles", "/api/v1/vehicles", &admin, vehicle).await?;
    let bad_vehicle = json!({"vin": "TOO-SHORT", "plate": "浙L·D90002", "model": "x", "seats": 5, "battery_kwh": 70.0, "consumption_kwh_per_100km": 17.0});
    api.expect(422, M::POST, "/api/v1/vehicles", "/api/v1/vehicles", Some(&admin), Body::Refused(bad_vehicle)).await?;
    let driver = json!({"id": "d9", "name": "司机九", "phone": "13800009999", "vehicle_vin": vin});
    api.post("/api/v1/drivers", "/api/v1/drivers", &admin, driver).await?;
    for (name, role, unit_id, driver_id) in [
        ("unit9", "unit", Some("u9"), None),
        ("driver9", "driver", None, Some("d9")),
        ("leaver9", "dispatcher", None, None),
    ] {
        let body = json!({"username": name, "password": format!("{name}-pass"), "role": role, "unit_id": unit_id, "driver_id": driver_id});
        api.post("/api/v1/users", "/api/v1/users", &admin, body).await?;
    }
    let (unit9, driver9) = (api.login("unit9", "unit9-pass").await?, api.login("driver9", "driver9-pass").await?);
    let path = format!("/api/v1/vehicles/{vin}/mqtt-secret");
    api.expect(200, M::POST, "/api/v1/vehicles/{vin}/mqtt-secret", &path, Some(&admin), Body::None).await?;
    // A platform account for the GB/T 32960 gateway; its username is taken once.
    let platform = json!({"name": "舟山车企平台", "username": "zs-platform", "password": "zs-platform-pass"});
    api.post("/api/v1/platforms", "/api/v1/platforms", &admin, platform.clone()).await?;
    api.expect(409, M::POST, "/api/v1/platforms", "/api/v1/platforms", Some(&admin), Body::Json(platform)).await?;
    let platforms = api.get("/api/v1/platforms", "/api/v1/platforms", &admin).await?;
    assert_eq!(platforms["platforms"][0]["username"], "zs-platform");
    assert!(platforms["platforms"][0].get("password").is_none(), "{platforms}");

    // Telemetry: GB/T 32960 reports of both editions, a JSON sample, and a message refused.
    let mut p = Publisher::connect().await?;
    p.gbt(
        &vin,
        fleet_sim::terminal::encode_sample(Edition::V2016, false, &gbt_sample(&vin, -20, SampleSource::Gbt2016)),
    )
    .await?;
    p.gbt(
        &vin,
        fleet_sim::terminal::encode_sample(Edition::V2025, true, &gbt_sample(&vin, -10, SampleSource::Gbt2025)),
    )
    .await?;
    let now = Utc::now().to_rfc3339();
    p.json(&vin, &json!({"ts": now, "lat": 30.0123, "lon": 122.1034, "soc_pct": 80.0, "speed_kmh": 0.0, "heading_deg": 45.0, "charging": false})).await?;
    p.publish(&format!("fleet/v1/vehicles/{vin}/telemetry"), b"{not json".to_vec()).await?;
    app.wait_for_samples(&vin, 3).await?;
    app.wait_until("the dead letter stored", || async { Ok(!app.dead_letters_of(&vin).await?.is_empty()) }).await?;
    let track =
        api.get("/api/v1/vehicles/{vin}/track", &format!("/api/v1/vehicles/{vin}/track?limit=10"), &admin).await?;
    assert!(track["samples"].as_array().unwrap().iter().filter(|s| s["blocks"].is_object()).count() == 2);
    api.expect(
        400,
        M::GET,
        "/api/v1/vehicles/{vin}/track",
        &format!("/api/v1/vehicles/{vin}/track?limit=0"),
        Some(&admin),
        Body::None,
    )
    .await?;

    // An order's whole life, by its unit, the dispatcher and the driver, with refusals.
    let order = json!({"unit_id": "u9", "passengers": 2,
        "pickup": {"lat": 30.0123, "lon": 122.1034, "name": "舟山市行政中心"},
        "dropoff": {"lat": 29.9977, "lon": 122.2047, "name": "普陀区政府"}, "purpose": "调研"});
    let o = api.post("/api/v1/orders", "/api/v1/orders", &unit9, order.clone()).await?;
    let id = o["id"].as_str().unwrap().to_owned();
    let act = |what: &'static str| format!("/api/v1/orders/{{id}}/{what}");
    let on = |what: &str| format!("/api/v1/orders/{id}/{what}");
    api.expect(403, M::POST, "/api/v1/orders", "/api/v1/orders", Some(&w.auditor), Body::Json(order.clone())).await?;
    let mut refused = order.clone();
    refused["passengers"] = json!(0);
    api.expect(422, M::POST, "/api/v1/orders", "/api/v1/orders", Some(&unit9), Body::Refused(refused)).await?;
    api.expect(
        404,
        M::POST,
        &act("approve"),
        "/api/v1/orders/nosuchorder/approve",
        Some(&unit9),
        Body::Json(json!({})),
    )
    .await?;
    api.expect(409, M::POST, &act("accept"), &on("accept"), Some(&w.dispatcher), Body::Json(json!({}))).await?;
    api.post(&act("approve"), &on("approve"), &unit9, json!({"reason": "同意"})).await?;
    api.post(&act("assign"), &on("assign"), &w.dispatcher, json!({"vin": vin})).await?;
    api.post(&act("decline"), &on("decline"), &driver9, json!({"reason": "车辆故障"})).await?;
    api.post(&act("assign"), &on("assign"), &w.dispatcher, json!({"vin": vin, "reason": "再派"})).await?;
    for step in ["accept", "pickup", "complete"] {
        api.post(&act(step), &on(step), &driver9, json!({})).await?;
    }
    let again = api.post(&act("complete"), &on("complete"), &driver9, json!({})).await?;
    assert_eq!(again["status"], "completed", "a retried tap answers the order unchanged");
    let detail = api.get("/api/v1/orders/{id}", &format!("/api/v1/orders/{id}"), &w.dispatcher).await?;
    assert!(detail["events"].as_array().unwrap().len() >= 8);
    api.expect(404, M::GET, "/api/v1/orders/{id}", "/api/v1/orders/nosuchorder", Some(&admin), Body::None).await?;
    let second = api.post("/api/v1/orders", "/api/v1/orders", &unit9, order.clone()).await?;
    let second = second["id"].as_str().unwrap().to_owned();
    api.post(&act("reject"), &format!("/api/v1/orders/{second}/reject"), &w.dispatcher, json!({"reason": "无需用车"}))
        .await?;
    let third = api.post("/api/v1/orders", "/api/v1/orders", &admin, order.clone()).await?;
    let third = third["id"].as_str().unwrap().to_owned();
    api.post(&act("cancel"), &format!("/api/v1/orders/{third}/cancel"), &unit9, json!({})).await?;
    let csv = "unit_id,passengers,pickup_name,pickup_lat,pickup_lon,dropoff_name,dropoff_lat,dropoff_lon,pickup_at,purpose\n\
               u9,3,市政府,30.0123,122.1034,普陀区政府,29.9977,122.2047,,会议接送\n\
               u9,0,市政府,30.0123,122.1034,普陀区政府,29.9977,122.2047,,人数不对\n";
    let imported = api
        .expect(200, M::POST, "/api/v1/orders/import", "/api/v1/orders/import", Some(&admin), Body::Csv(csv))
        .await?;
    assert_eq!((imported["created"].as_array().unwrap().len(), imported["errors"].as_array().unwrap().len()), (1, 1));
    api.get(
        "/api/v1/orders",
        "/api/v1/orders?status=completed,rejected,canceled,pending_approval&limit=50",
        &w.dispatcher,
    )
    .await?;
    api.get("/api/v1/orders", "/api/v1/orders", &driver9).await?;
    api.expect(400, M::GET, "/api/v1/orders", "/api/v1/orders?status=parked", Some(&admin), Body::None).await?;

    // The registry, as each role sees it.
    for token in [&admin, &unit9, &driver9] {
        api.get("/api/v1/vehicles", "/api/v1/vehicles", token).await?;
        api.get("/api/v1/vehicles/states", "/api/v1/vehicles/states", token).await?;
        api.get("/api/v1/drivers", "/api/v1/drivers", token).await?;
    }
    api.get("/api/v1/vehicles/{vin}", &format!("/api/v1/vehicles/{vin}"), &unit9).await?;
    api.get("/api/v1/vehicles/{vin}", &format!("/api/v1/vehicles/{drove}"), &admin).await?;
    let never = random_vin();
    app.register_vehicle(&never).await?;
    let bare = api.get("/api/v1/vehicles/{vin}", &format!("/api/v1/vehicles/{never}"), &admin).await?;
    assert!(bare["state"].is_null());
    api.expect(404, M::GET, "/api/v1/vehicles/{vin}", &format!("/api/v1/vehicles/{drove}"), Some(&unit9), Body::None)
        .await?;
    api.get("/api/v1/drivers/{id}", "/api/v1/drivers/d9", &unit9).await?;
    api.get("/api/v1/users", "/api/v1/users", &admin).await?;
    api.expect(403, M::GET, "/api/v1/users", "/api/v1/users", Some(&unit9), Body::None).await?;
    api.get("/api/v1/units", "/api/v1/units", &admin).await?;
    api.get("/api/v1/units/{id}", "/api/v1/units/u9", &unit9).await?;
    api.expect(404, M::GET, "/api/v1/units/{id}", "/api/v1/units/u3", Some(&unit9), Body::None).await?;
    let station = fleet_storage::ChargingStation {
        id: "cs1".into(),
        name: "新城充电站".into(),
        lat: 29.9881,
        lon: 122.2071,
        power_kw: 120.0,
    };
    app.store.charging_stations().create(&station).await?;
    let stations = api.get("/api/v1/charging-stations", "/api/v1/charging-stations", &admin).await?;
    assert_eq!(stations.to_string().matches("cs1").count(), 1);
    let map = api.get("/api/v1/map/config", "/api/v1/map/config", &w.dispatcher).await?;
    assert_eq!(map["tiles"].as_array().map(Vec::len), Some(1));
    let letters = api.get("/api/v1/dead-letters", "/api/v1/dead-letters?reason=malformed_json", &w.auditor).await?;
    assert!(!letters["dead_letters"].as_array().unwrap().is_empty());
    api.get("/api/v1/audit", "/api/v1/audit?limit=100", &w.auditor).await?;

    // Trips, budgets, statistics and misuse alarms from the served drive.
    let window = format!(
        "from={}&to={}",
        enc(&(base - chrono::Duration::hours(1)).to_rfc3339()),
        enc(&(base + chrono::Duration::hours(1)).to_rfc3339())
    );
    let trips_path = format!("/api/v1/trips?vin={drove}&{window}");
    app.wait_until("the served drive's trip derived and closed", || async {
        let (_, v) = api.call(M::GET, "/api/v1/trips", &trips_path, Some(&admin), Body::None).await?;
        Ok(v["trips"]
            .as_array()
            .is_some_and(|t| t.len() == 1 && t[0]["open"] == false && t[0]["order_id"] == drive_order))
    })
    .await?;
    api.get("/api/v1/trips", &format!("/api/v1/trips?{window}"), &w.auditor).await?;
    let month = format!("{:04}-{:02}", base.year(), base.month());
    let budget =
        api.get("/api/v1/units/{id}/budget", &format!("/api/v1/units/u3/budget?month={month}"), &admin).await?;
    assert_eq!(budget["warning"], true);
    api.get("/api/v1/units/{id}/budget", "/api/v1/units/u9/budget", &unit9).await?;
    let spent = json!({"unit_id": "u3", "passengers": 1, "pickup": order["pickup"], "dropoff": order["dropoff"], "purpose": "超预算"});
    api.expect(409, M::POST, "/api/v1/orders", "/api/v1/orders", Some(&w.dispatcher), Body::Json(spent)).await?;
    api.expect(
        400,
        M::GET,
        "/api/v1/units/{id}/budget",
        "/api/v1/units/u9/budget?month=2026-13",
        Some(&unit9),
        Body::None,
    )
    .await?;
    api.get("/api/v1/stats/monthly", &format!("/api/v1/stats/monthly?month={month}"), &admin).await?;
    api.get("/api/v1/stats/monthly", &format!("/api/v1/stats/monthly?month={month}&unit_id=u9"), &unit9).await?;
    let misuse_path = format!("/api/v1/alarms/misuse?month={month}");
    app.wait_until("the drive without an order listed as misuse", || async {
        let v = api.get("/api/v1/alarms/misuse", &misuse_path, &w.auditor).await?;
        Ok(v["alarms"].as_array().is_some_and(|a| !a.is_empty()))
    })
    .await?;

    // The live feed's messages are the document's VehicleState and Order.
    let mut live = LiveClient::connect(&app.live_url(&admin, "")).await?;
    for car in live.snapshot().await? {
        api.check_schema("VehicleState", "a snapshot's vehicle", &car);
    }
    let fourth = api.post("/api/v1/orders", "/api/v1/orders", &unit9, order.clone()).await?;
    let fourth = fourth["id"].as_str().unwrap().to_owned();
    let msg = live
        .wait_for("the new order on the feed", |m| {
            (m["type"] == "order" && m["order"]["id"] == fourth.as_str()).then(|| m.clone())
        })
        .await?;
    api.check_schema("Order", "an order message's order", &msg["order"]);

    // A session's own end: a password change, then a logout.
    let leaver = api.login("leaver9", "leaver9-pass").await?;
    let change = json!({"old_password": "leaver9-pass", "new_password": "a-new-password"});
    api.expect(204, M::POST, "/api/v1/auth/password", "/api/v1/auth/password", Some(&leaver), Body::Json(change))
        .await?;
    api.expect(204, M::POST, "/api/v1/auth/logout", "/api/v1/auth/logout", Some(&leaver), Body::None).await?;
    api.expect(401, M::POST, "/api/v1/auth/logout", "/api/v1/auth/logout", Some(&leaver), Body::None).await?;

    // Fleet administration: edits, the vehicle file, service records, reminders, retiring.
    let spare = random_vin();
    let body = json!({"vin": spare, "plate": "浙L·D90003", "model": "BYD e6", "seats": 5, "battery_kwh": 71.7,
        "consumption_kwh_per_100km": 17.0, "unit_id": "u9", "insurance_until": "2020-01-31"});
    api.post("/api/v1/vehicles", "/api/v1/vehicles", &admin, body).await?;
    let unit_path = "/api/v1/units/u9";
    let patch = json!({"contact_email": "u9@zhoushan.example", "monthly_energy_budget_kwh": 900.0});
    let u9 = api.expect(200, M::PATCH, "/api/v1/units/{id}", unit_path, Some(&admin), Body::Json(patch)).await?;
    assert_eq!(
        (u9["contact_email"].as_str(), u9["monthly_energy_budget_kwh"].as_f64()),
        (Some("u9@zhoushan.example"), Some(900.0))
    );
    let refused = json!({"contact_email": "not an address"});
    api.expect(422, M::PATCH, "/api/v1/units/{id}", unit_path, Some(&admin), Body::Refused(refused)).await?;
    let car_path = format!("/api/v1/vehicles/{spare}");
    let patch = json!({"maintenance_every_km": 10000.0, "last_maintenance_km": 0.0, "inspection_due": null});
    let car = api.expect(200, M::PATCH, "/api/v1/vehicles/{vin}", &car_path, Some(&admin), Body::Json(patch)).await?;
    assert_eq!(car["maintenance_every_km"].as_f64(), Some(10_000.0));
    api.expect(422, M::PATCH, "/api/v1/vehicles/{vin}", &car_path, Some(&admin), Body::Refused(json!({"vin": vin})))
        .await?;
    let service = json!({"on": "2026-11-30", "odometer_km": 1234.5, "note": "保养", "cost_yuan": 480.0});
    let service_path = format!("/api/v1/vehicles/{spare}/maintenance");
    api.expect(201, M::POST, "/api/v1/vehicles/{vin}/maintenance", &service_path, Some(&admin), Body::Json(service))
        .await?;
    let records = api.get("/api/v1/vehicles/{vin}/maintenance", &service_path, &admin).await?;
    assert_eq!(records["records"][0]["odometer_km"].as_f64(), Some(1234.5));
    let due = api.get("/api/v1/reminders", "/api/v1/reminders", &admin).await?;
    assert!(
        due["reminders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["vin"] == spare.as_str() && r["kind"] == "insurance" && r["overdue"] == true),
        "{due}"
    );
    let body = json!({"id": "d10", "name": "司机十", "phone": "13800001010", "vehicle_vin": null});
    api.post("/api/v1/drivers", "/api/v1/drivers", &admin, body).await?;
    let patch = json!({"vehicle_vin": spare});
    api.expect(200, M::PATCH, "/api/v1/drivers/{id}", "/api/v1/drivers/d10", Some(&admin), Body::Json(patch)).await?;
    api.expect(200, M::POST, "/api/v1/drivers/{id}/retire", "/api/v1/drivers/d10/retire", Some(&admin), Body::None)
        .await?;
    api.expect(200, M::POST, "/api/v1/vehicles/{vin}/retire", &format!("{car_path}/retire"), Some(&admin), Body::None)
        .await?;
    let body = json!({"username": "gone9", "password": "gone9-pass", "role": "dispatcher"});
    let gone = api.post("/api/v1/users", "/api/v1/users", &admin, body).await?;
    let gone_path = format!("/api/v1/users/{}", gone["id"]);
    let patch = json!({"role": "unit", "unit_id": "u9"});
    let edited = api.expect(200, M::PATCH, "/api/v1/users/{id}", &gone_path, Some(&admin), Body::Json(patch)).await?;
    assert_eq!(edited["role"], "unit");
    let retired = api
        .expect(200, M::POST, "/api/v1/users/{id}/retire", &format!("{gone_path}/retire"), Some(&admin), Body::None)
        .await?;
    assert_eq!(retired["retired"], true);

    // Costs: the tariff, one cost, a file of them, the month's list.
    let tariff = json!({"periods": [{"from": "22:00", "to": "24:00", "yuan_per_kwh": 0.3}, {"from": "00:00", "to": "22:00", "yuan_per_kwh": 1.0}]});
    api.expect(200, M::PUT, "/api/v1/tariff", "/api/v1/tariff", Some(&admin), Body::Json(tariff)).await?;
    let gap = json!({"periods": [{"from": "00:00", "to": "12:00", "yuan_per_kwh": 0.3}]});
    api.expect(422, M::PUT, "/api/v1/tariff", "/api/v1/tariff", Some(&admin), Body::Refused(gap)).await?;
    api.get("/api/v1/tariff", "/api/v1/tariff", &unit9).await?;
    let cost = json!({"vin": vin, "on": "2026-11-30", "kind": "parking", "amount_yuan": 20.0, "note": "市行政中心"});
    api.expect(201, M::POST, "/api/v1/costs", "/api/v1/costs", Some(&admin), Body::Json(cost)).await?;
    let file: &'static str = Box::leak(
        format!("vin,on,kind,amount_yuan,note\n{vin},2026-11-29,toll,35,大桥\n{vin},2026-11-29,fuel,1,\n")
            .into_boxed_str(),
    );
    let imported =
        api.expect(200, M::POST, "/api/v1/costs/import", "/api/v1/costs/import", Some(&admin), Body::Csv(file)).await?;
    assert_eq!(
        (imported["created"].as_array().map(Vec::len), imported["errors"][0]["line"].as_i64()),
        (Some(1), Some(3))
    );
    let costs = api.get("/api/v1/costs", "/api/v1/costs?month=2026-11", &admin).await?;
    assert_eq!(costs["costs"].as_array().map(Vec::len), Some(2), "{costs}");

    // Geofences, working hours and alarms.
    let fence = json!({"name": "舟山本岛", "kind": "service_area", "geometry": {"type": "Point", "coordinates": [122.2, 30.0]}, "radius_m": 20000.0});
    let drawn =
        api.expect(201, M::POST, "/api/v1/geofences", "/api/v1/geofences", Some(&admin), Body::Json(fence)).await?;
    let open = json!({"name": "x", "kind": "zone", "geometry": {"type": "Polygon", "coordinates": [[[122.0, 30.0], [122.1, 30.0], [122.1, 30.1]]]}});
    api.expect(422, M::POST, "/api/v1/geofences", "/api/v1/geofences", Some(&admin), Body::Refused(open)).await?;
    api.get("/api/v1/geofences", "/api/v1/geofences", &admin).await?;
    let fence_path = format!("/api/v1/geofences/{}", drawn["id"]);
    api.expect(204, M::DELETE, "/api/v1/geofences/{id}", &fence_path, Some(&admin), Body::None).await?;
    api.expect(404, M::DELETE, "/api/v1/geofences/{id}", &fence_path, Some(&admin), Body::None).await?;
    let hours = json!({"weekdays": [1, 2, 3, 4, 5], "start": "07:30", "end": "18:00", "holidays": ["2027-01-01"], "workdays": []});
    api.expect(200, M::PUT, "/api/v1/working-hours", "/api/v1/working-hours", Some(&admin), Body::Json(hours)).await?;
    api.get("/api/v1/working-hours", "/api/v1/working-hours", &unit9).await?;
    // A zone the car drives into: one alarm, listed and acknowledged.
    let zone = json!({"name": "沈家门", "kind": "zone", "geometry": {"type": "Point", "coordinates": [122.30, 29.95]}, "radius_m": 300.0});
    api.expect(201, M::POST, "/api/v1/geofences", "/api/v1/geofences", Some(&admin), Body::Json(zone)).await?;
    let t = |secs: i64| (Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339();
    p.json(&vin, &json!([{"ts": t(50), "lat": 29.99, "lon": 122.21}, {"ts": t(40), "lat": 29.95, "lon": 122.30}]))
        .await?;
    app.wait_until("the zone alarm", || async {
        let v = api.get("/api/v1/alarms", "/api/v1/alarms?kind=zone_entered", &admin).await?;
        Ok(v["alarms"].as_array().is_some_and(|a| !a.is_empty()))
    })
    .await?;
    let listed = api.get("/api/v1/alarms", "/api/v1/alarms?unacknowledged=true", &admin).await?;
    let alarm_id = listed["alarms"][0]["id"].clone();
    let ack = format!("/api/v1/alarms/{alarm_id}/acknowledge");
    api.expect(200, M::POST, "/api/v1/alarms/{id}/acknowledge", &ack, Some(&admin), Body::None).await?;
    api.get("/api/v1/alarms", "/api/v1/alarms", &admin).await?;
    api.expect(400, M::GET, "/api/v1/alarms", "/api/v1/alarms?kind=fire", Some(&admin), Body::None).await?;

    // A webhook (nothing listens at its address: its deliveries just wait in the outbox).
    let hook = json!({"url": "http://127.0.0.1:9/fleet-hook", "kinds": ["zone_entered", "budget_warning"], "secret": "0123456789abcdef-hook"});
    let added =
        api.expect(201, M::POST, "/api/v1/webhooks", "/api/v1/webhooks", Some(&admin), Body::Json(hook)).await?;
    api.expect(
        422,
        M::POST,
        "/api/v1/webhooks",
        "/api/v1/webhooks",
        Some(&admin),
        Body::Refused(json!({"url": "ftp://x", "kinds": ["zone_entered"], "secret": "0123456789abcdef"})),
    )
    .await?;
    api.get("/api/v1/webhooks", "/api/v1/webhooks", &admin).await?;
    let hook_path = format!("/api/v1/webhooks/{}", added["id"]);
    api.expect(204, M::DELETE, "/api/v1/webhooks/{id}", &hook_path, Some(&admin), Body::None).await?;

    let uncovered = api.uncovered();
    assert!(uncovered.is_empty(), "operations answering JSON never called with success: {uncovered:?}");
    let mismatches = api.mismatches.lock().unwrap().clone();
    assert!(
        mismatches.is_empty(),
        "{} mismatches with the OpenAPI document:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    Ok(())
});
