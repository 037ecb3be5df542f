//! The dispatcher's live map in headless Chromium: log in, see the cars, watch one move after
//! an MQTT publish, open a car's details, switch the language. Screenshots are saved to
//! `target/test-artifacts/` to be looked at.

use chrono::Utc;
use fleet_tests::browser::Browser;
use fleet_tests::{ADMIN_PASSWORD, Db, Publisher, TestApp, random_vin};
use serde_json::{Value, json};

async fn car(app: &TestApp, admin: &str, plate: &str) -> anyhow::Result<String> {
    let vin = random_vin();
    let r = app
        .http
        .post(app.url("/api/v1/vehicles"))
        .bearer_auth(admin)
        .json(&json!({"vin": vin, "plate": plate, "model": "比亚迪 秦PLUS EV", "seats": 5, "battery_kwh": 57.6, "consumption_kwh_per_100km": 12.5}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "registering {plate}: {}", r.status());
    Ok(vin)
}

fn sample(lat: f64, lon: f64, soc: f64) -> Value {
    json!({"ts": Utc::now().to_rfc3339(), "lat": lat, "lon": lon, "speed_kmh": 36.0, "heading_deg": 45.0, "soc_pct": soc})
}

/// Logs in through the login form and waits for the first snapshot to be drawn.
async fn log_in(b: &Browser, app: &TestApp, user: &str, password: &str) -> anyhow::Result<()> {
    b.client.goto(&app.url("/")).await?;
    b.fill("#login-username", user).await?;
    b.fill("#login-password", password).await?;
    b.click("#login-submit").await?;
    b.wait_js("the first snapshot drawn", "return window.__fleet && window.__fleet.ready === true;", vec![]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_sees_the_cars_move_opens_details_and_switches_language() -> anyhow::Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin_token().await;
    let a = car(&app, &admin, "浙L·D50001").await?;
    let b_vin = car(&app, &admin, "浙L·D50002").await?;
    let mut p = Publisher::connect().await?;
    p.json(&a, &sample(30.0115, 122.1067, 76.0)).await?; // Dinghai
    p.json(&b_vin, &sample(29.9490, 122.3010, 15.0)).await?; // Shenjiamen, low charge
    app.wait_for_samples(&a, 1).await?;
    app.wait_for_samples(&b_vin, 1).await?;

    let b = Browser::start(1280, 800).await?;
    log_in(&b, &app, "admin", ADMIN_PASSWORD).await?;
    assert_eq!(b.js("return document.documentElement.lang;", vec![]).await?, "zh-CN", "Chinese by default");
    b.wait_js("both cars known", "return window.__fleet.carCount() === 2;", vec![]).await?;
    let pos = b
        .wait_js("car A drawn where it reported", "const p = window.__fleet.markerPosition(arguments[0]); return p && Math.abs(p[0] - 30.0115) < 1e-9 ? p : null;", vec![json!(a)])
        .await?;
    assert_eq!(pos, json!([30.0115, 122.1067]));
    b.wait_js(
        "the connection indicator says open",
        "return document.querySelector('#conn-status').dataset.state === 'open';",
        vec![],
    )
    .await?;
    b.wait_js(
        "the low-charge alarm",
        "return document.querySelector('#alarm-list').textContent.includes('浙L·D50002');",
        vec![],
    )
    .await?;
    b.screenshot("map-zh").await?;

    // The car moves: a sample over MQTT moves its marker.
    p.json(&a, &sample(30.0200, 122.1200, 75.0)).await?;
    let moved = b
        .wait_js("car A moved", "const p = window.__fleet.markerPosition(arguments[0]); return p && Math.abs(p[0] - 30.02) < 1e-9 ? p : null;", vec![json!(a)])
        .await?;
    assert_eq!(moved, json!([30.02, 122.12]));

    // Details: from the vehicle list, filtered by plate.
    b.fill("#vehicle-search", "50001").await?;
    b.wait_js(
        "the list filtered to one car",
        "return [...document.querySelectorAll('#vehicle-list [data-vin]')].filter(e => e.offsetParent !== null).length === 1;",
        vec![],
    )
    .await?;
    b.click(&format!("#vehicle-list [data-vin='{a}']")).await?;
    b.wait_js("the details panel", "const e = document.querySelector('#vehicle-detail-plate'); return e && e.offsetParent !== null && e.textContent.includes('浙L·D50001');", vec![]).await?;
    let detail = b.text("#vehicle-detail").await?;
    assert!(detail.contains(&a), "the details name the VIN: {detail}");
    b.screenshot("map-detail-zh").await?;

    // English by the switch, and back.
    let zh_text = b.text("body").await?;
    b.click("#lang-switch").await?;
    b.wait_js("English", "return document.documentElement.lang.startsWith('en');", vec![]).await?;
    let en_text = b.text("body").await?;
    assert_ne!(zh_text, en_text);
    assert!(!en_text.contains("车辆"), "Chinese labels remain after switching to English");
    b.screenshot("map-detail-en").await?;
    b.click("#lang-switch").await?;
    b.wait_js("Chinese again", "return document.documentElement.lang === 'zh-CN';", vec![]).await?;
    b.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_shown_on_the_login_form_and_the_token_stays_in_its_tab() -> anyhow::Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await;
    let b = Browser::start(1280, 800).await?;
    b.client.goto(&app.url("/")).await?;
    b.fill("#login-username", "admin").await?;
    b.fill("#login-password", "wrong-password").await?;
    b.click("#login-submit").await?;
    let msg = b.wait_js("the login error", "const e = document.querySelector('#login-error'); return e && e.offsetParent !== null && e.textContent.trim();", vec![]).await?;
    assert!(!msg.as_str().unwrap_or_default().is_empty());
    b.screenshot("login-error-zh").await?;
    assert_eq!(b.js("return sessionStorage.length;", vec![]).await?, json!(0), "no token kept after a failed login");

    log_in(&b, &app, "admin", ADMIN_PASSWORD).await?;
    let kept = b
        .js(
            "return Object.keys(sessionStorage).length > 0 && !Object.values(localStorage).some(v => v.length > 30);",
            vec![],
        )
        .await?;
    assert_eq!(kept, json!(true), "the token is kept per tab (sessionStorage), not in localStorage");
    // Logging out returns to the login form.
    b.click("#logout").await?;
    b.wait_js(
        "the login form again",
        "const e = document.querySelector('#login-username'); return e && e.offsetParent !== null;",
        vec![],
    )
    .await?;
    b.close().await
}

/// A page whose token is revoked elsewhere (its user changes the password in another
/// session) returns to the login form by itself: the server closes its live feed with 4002
/// and the page asks for a login instead of reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_returns_to_the_login_form_when_its_token_is_revoked_elsewhere() -> anyhow::Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await;
    let admin = app.admin_token().await;
    let r = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "disp1", "password": "disp1-pass", "role": "dispatcher"}))
        .send()
        .await?;
    assert_eq!(r.status(), 201);
    let b = Browser::start(1280, 800).await?;
    log_in(&b, &app, "disp1", "disp1-pass").await?;
    let elsewhere = app.login("disp1", "disp1-pass").await?;
    let r = app
        .http
        .post(app.url("/api/v1/auth/password"))
        .bearer_auth(&elsewhere)
        .json(&json!({"old_password": "disp1-pass", "new_password": "disp1-pass-2"}))
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    b.wait_js(
        "the login form after the revocation",
        "const e = document.querySelector('#login-username'); return e && e.offsetParent !== null;",
        vec![],
    )
    .await?;
    assert_eq!(
        b.js("return sessionStorage.getItem('fleet.token');", vec![]).await?,
        json!(null),
        "the dead token is forgotten"
    );
    b.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_centre_shows_unread_alarms_and_a_dispatcher_acknowledges_one() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Db::Sqlite, |s| s.stats.interval = std::time::Duration::from_millis(200)).await;
    let admin = app.admin_token().await;
    let vin = car(&app, &admin, "浙L·D50003").await?;
    let zone = json!({"name": "临城商圈", "kind": "zone", "geometry": {"type": "Point", "coordinates": [122.22, 29.99]}, "radius_m": 300.0});
    let r = app.http.post(app.url("/api/v1/geofences")).bearer_auth(&admin).json(&zone).send().await?;
    anyhow::ensure!(r.status() == 201, "zone: {}", r.status());
    let t = |secs: i64| (Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339();
    let drive = json!([
        {"ts": t(60), "lat": 29.99, "lon": 122.21, "speed_kmh": 30.0, "soc_pct": 70.0},
        {"ts": t(30), "lat": 29.99, "lon": 122.22, "speed_kmh": 30.0, "soc_pct": 70.0},
    ]);
    Publisher::connect().await?.json(&vin, &drive).await?;
    app.wait_until("the zone alarm stored", || async {
        let v: Value = app
            .http
            .get(app.url("/api/v1/alarms?unacknowledged=true"))
            .bearer_auth(&admin)
            .send()
            .await?
            .json()
            .await?;
        Ok(v["alarms"].as_array().is_some_and(|a| a.len() == 1))
    })
    .await?;

    let b = Browser::start(1280, 800).await?;
    log_in(&b, &app, "admin", ADMIN_PASSWORD).await?;
    b.wait_js(
        "one unread alarm on the tab",
        "const e = document.querySelector('#alarm-unread'); return !e.hidden && e.textContent === '1';",
        vec![],
    )
    .await?;
    b.click("#tab-alarms").await?;
    b.wait_js(
        "the alarm in the centre",
        "const e = document.querySelector('#alarm-centre'); return !e.hidden && e.textContent.includes('进入区域') && e.textContent.includes('浙L·D50003') && e.textContent.includes('临城商圈');",
        vec![],
    )
    .await?;
    b.screenshot("alarm-centre-zh").await?;
    b.click("#alarm-centre button[data-ack]").await?;
    b.wait_js(
        "the centre empty and the badge gone",
        "return document.querySelector('#alarm-unread').hidden && document.querySelectorAll('#alarm-centre li').length === 0;",
        vec![],
    )
    .await?;
    let v: Value = app.http.get(app.url("/api/v1/alarms")).bearer_auth(&admin).send().await?.json().await?;
    assert!(v["alarms"][0]["acknowledged_at"].is_string(), "acknowledged through the API: {v}");
    b.close().await
}
