//! The HTTP API (docs/api.md) over a real socket: login and tokens, the registry, who sees
//! what, and the error shape of every refusal.

mod login;
mod registry;
mod session;
mod visibility;

use chrono::Utc;
use fleet_domain::{Sample, SampleSource, Vin};
use fleet_ingest::decode::gbt32960;
use fleet_tests::{TestApp, both, random_vin};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Sends a request with an optional bearer token and JSON body; answers status and body
/// (`Value::Null` when the body is empty).
async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut req = app.http.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status();
    let bytes = res.bytes().await?;
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes)? };
    Ok((status, value))
}

async fn get(app: &TestApp, path: &str, token: &str) -> anyhow::Result<(StatusCode, Value)> {
    call(app, reqwest::Method::GET, path, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
    call(app, reqwest::Method::POST, path, Some(token), Some(body)).await
}

/// Asserts the API's error shape and code; answers the message.
fn error_code(body: &Value, code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "error body: {body}");
    body["error"]["message"].as_str().unwrap_or_else(|| panic!("error without a message: {body}")).to_owned()
}

fn vehicle(vin: &str, plate: &str, unit: Option<&str>) -> Value {
    json!({"vin": vin, "plate": plate, "model": "BYD Qin Plus EV", "seats": 5, "battery_kwh": 57.6,
           "consumption_kwh_per_100km": 12.5, "unit_id": unit})
}

/// Creates a user through the API as admin.
async fn create_user(app: &TestApp, admin: &str, body: Value) -> anyhow::Result<()> {
    let (s, b) = post(app, "/api/v1/users", admin, body).await?;
    anyhow::ensure!(s == StatusCode::CREATED, "creating a user: {s} {b}");
    Ok(())
}

async fn create_unit(app: &TestApp, admin: &str, id: &str) -> anyhow::Result<()> {
    let (s, b) = post(
        app,
        "/api/v1/units",
        admin,
        json!({"id": id, "name": format!("单位 {id}"), "monthly_energy_budget_kwh": 500.0}),
    )
    .await?;
    anyhow::ensure!(s == StatusCode::CREATED, "creating unit {id}: {s} {b}");
    Ok(())
}

async fn create_vehicle(app: &TestApp, admin: &str, vin: &str, plate: &str, unit: Option<&str>) -> anyhow::Result<()> {
    let (s, b) = post(app, "/api/v1/vehicles", admin, vehicle(vin, plate, unit)).await?;
    anyhow::ensure!(s == StatusCode::CREATED, "registering {vin}: {s} {b}");
    Ok(())
}

both!(vehicle_state_and_track_come_from_stored_telemetry, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let vin = random_vin();
    create_vehicle(&app, &admin, &vin, "浙LD60001", None).await?;
    let now = Utc::now();
    let mut older =
        Sample::at(Vin::parse(&vin)?, now - chrono::Duration::seconds(30), 29.98, 122.20, SampleSource::Json);
    older.soc_pct = Some(81.0);
    let mut newer =
        Sample::at(Vin::parse(&vin)?, now - chrono::Duration::seconds(5), 29.99, 122.21, SampleSource::Gbt2016);
    newer.soc_pct = Some(80.0);
    newer.speed_kmh = Some(42.0);
    // As ingest stores a GB/T sample: with the frame it came in.
    newer.frame = Some(fleet_sim::terminal::encode_sample(gbt32960::Edition::V2016, false, &newer));
    app.store.telemetry().commit(&[older, newer], &[]).await?;

    let (s, v) = get(&app, &format!("/api/v1/vehicles/{vin}"), &admin).await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["state"]["soc_pct"], 80.0);
    assert_eq!(v["state"]["lat"], 29.99);
    assert_eq!(v["state"]["status"], "idle");

    let (s, track) = get(&app, &format!("/api/v1/vehicles/{vin}/track"), &admin).await?;
    assert_eq!(s, StatusCode::OK, "{track}");
    let socs: Vec<f64> = track["samples"].as_array().unwrap().iter().filter_map(|x| x["soc_pct"].as_f64()).collect();
    assert_eq!(socs, vec![81.0, 80.0], "in time order");
    assert_eq!(track["samples"][0]["blocks"], Value::Null, "a JSON sample has no other blocks");
    let blocks = &track["samples"][1]["blocks"];
    assert_eq!(blocks["edition"], "2016", "the stored frame is shown decoded: {track}");
    assert!(blocks["motors"][0]["speed_rpm"].is_u64(), "{blocks}");
    let (s, track) = get(&app, &format!("/api/v1/vehicles/{vin}/track?limit=1"), &admin).await?;
    assert_eq!((s, track["samples"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (s, b) =
        get(&app, &format!("/api/v1/vehicles/{vin}/track?from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z"), &admin)
            .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    error_code(&b, "bad_request");

    let (s, states) = get(&app, "/api/v1/vehicles/states", &admin).await?;
    assert_eq!(s, StatusCode::OK);
    let entry = &states["vehicles"][0];
    assert_eq!(
        (entry["vin"].as_str(), entry["plate"].as_str(), entry["status"].as_str()),
        (Some(vin.as_str()), Some("浙LD60001"), Some("idle"))
    );
    Ok(())
});

both!(dead_letters_are_for_admins_and_auditors, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let (s, b) = get(&app, "/api/v1/dead-letters?limit=10", &admin).await?;
    assert_eq!(s, StatusCode::OK);
    assert!(b["dead_letters"].is_array());
    assert_eq!(get(&app, "/api/v1/dead-letters?reason=nonsense", &admin).await?.0, StatusCode::BAD_REQUEST);
    create_user(&app, &admin, json!({"username": "disp", "password": "pass-disp", "role": "dispatcher"})).await?;
    let dispatcher = app.login("disp", "pass-disp").await?;
    assert_eq!(get(&app, "/api/v1/dead-letters", &dispatcher).await?.0, StatusCode::FORBIDDEN);
    Ok(())
});

both!(oversized_and_malformed_bodies_get_the_error_shape, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let big = format!("{{\"name\": \"{}\", \"monthly_energy_budget_kwh\": 1}}", "x".repeat(1024 * 1024 + 1));
    let res = app
        .http
        .post(app.url("/api/v1/units"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    error_code(&res.json().await?, "too_large");

    let res = app
        .http
        .post(app.url("/api/v1/units"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    error_code(&res.json().await?, "bad_request");

    let res = app.http.post(app.url("/api/v1/auth/login")).body("username=admin").send().await?;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "no JSON content type");
    error_code(&res.json().await?, "bad_request");
    Ok(())
});

both!(health_openapi_and_pages_need_no_token, |app: TestApp| async move {
    let res = app.http.get(app.url("/healthz")).send().await?;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await?["status"], "ok");

    let res = app.http.get(app.url("/api/v1/openapi.json")).send().await?;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await?;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    assert!(doc["paths"]["/api/v1/vehicles/{vin}/track"].is_object());

    let res = app.http.get(app.url("/metrics")).send().await?;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str()?.starts_with("text/plain; version=0.0.4"));
    let text = res.text().await?;
    assert!(text.contains("http_requests_total{"), "requests are counted by route and status");
    assert!(text.contains("route=\"/api/v1/openapi.json\""), "labelled by route template");
    // The allocator's figures, refreshed by the metrics upkeep (its first round runs at start).
    let heap = |text: &str, name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut text = text;
    while heap(&text, "fleet_memory_heap_allocated_bytes").is_none() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no heap figures on /metrics: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        text = app.http.get(app.url("/metrics")).send().await?.text().await?;
    }
    let (allocated, resident) =
        (heap(&text, "fleet_memory_heap_allocated_bytes"), heap(&text, "fleet_memory_heap_resident_bytes"));
    assert!(
        allocated.is_some_and(|a| a > 1e6) && resident >= allocated,
        "allocated {allocated:?} <= resident {resident:?}"
    );

    let res = app.http.get(app.url("/")).send().await?;
    assert_eq!(res.status(), StatusCode::OK);
    for (name, value) in
        [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer")]
    {
        assert_eq!(res.headers()[name], value, "{name}");
    }
    assert!(res.headers()["content-security-policy"].to_str()?.contains("default-src 'self'"));
    // Pages and scripts go out gzipped to a client that accepts it, and plain to one that does not.
    for path in ["/", "/vendor/leaflet@1.9.4/leaflet.js", "/driver"] {
        let res = app.http.get(app.url(path)).header("accept-encoding", "gzip").send().await?;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers().get("content-encoding").map(|v| v.to_str().unwrap_or("")), Some("gzip"), "{path}");
        let plain = app.http.get(app.url(path)).send().await?;
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
    }
    Ok(())
});

/// `/metrics` can be kept from the public port: a token of its own, and a listener of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token_and_move_to_an_address_of_their_own() -> anyhow::Result<()> {
    const TOKEN: &str = "scraper-token-0123456789";
    let app = TestApp::spawn_with(fleet_tests::Db::Sqlite, |s| {
        s.metrics = fleet_web::MetricsAccess { addr: Some("127.0.0.1:0".parse().unwrap()), token: Some(TOKEN.into()) };
    })
    .await;
    let r = app.http.get(app.url("/metrics")).send().await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not on the public port");
    let metrics = format!("http://{}/metrics", app.metrics_addr().expect("a metrics listener"));
    assert_eq!(app.http.get(&metrics).send().await?.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.http.get(&metrics).bearer_auth("scraper-token-0123456788").send().await?.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app.http.get(&metrics).bearer_auth(TOKEN).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await?.contains("# TYPE"), "Prometheus text");
    // With a token only, the public port serves it to the token's holder.
    let open = TestApp::spawn_with(fleet_tests::Db::Sqlite, |s| s.metrics.token = Some(TOKEN.into())).await;
    assert_eq!(open.http.get(open.url("/metrics")).send().await?.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(open.http.get(open.url("/metrics")).bearer_auth(TOKEN).send().await?.status(), StatusCode::OK);
    Ok(())
}
