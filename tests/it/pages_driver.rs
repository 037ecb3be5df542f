//! The driver's page (`/driver`) in headless Chromium at a phone's size: an order created over
//! HTTP is matched by dispatch and appears live on the page, accepted, picked up and completed
//! by taps; a decline with a reason moves it to the other car; an unanswered assignment counts
//! down and leaves; a tap made while the phone has no network is kept and lands once when the
//! network is back. Screenshots (`driver-*.png`) go to `target/test-artifacts/`.

use std::time::Duration;

use fleet_tests::browser::Browser;
use fleet_tests::{Db, Publisher, Settings, TestApp};
use serde_json::{Value, json};

use crate::orders::{World, feed, get, order_body, post, world};

/// A phone's CSS viewport (an iPhone 12-class screen).
const PHONE: (u32, u32) = (390, 844);
/// Where the two cars wait: the nearer one (driver0's) gets the orders first.
const NEAR: (f64, f64) = (30.0140, 122.1050);
const FAR: (f64, f64) = (30.0300, 122.1300);

/// Fast batches and the given accept timeout.
fn fast(s: &mut Settings, accept: Duration) {
    s.dispatch.batch_interval = Duration::from_millis(150);
    s.dispatch.accept_timeout = accept;
}

/// Two cars online and charged, driver0 signed in on the page in a phone-sized browser.
async fn scene(accept: Duration) -> anyhow::Result<(TestApp, World, Publisher, Browser)> {
    scene_with(|s| fast(s, accept)).await
}

async fn scene_with(settings: impl FnOnce(&mut Settings)) -> anyhow::Result<(TestApp, World, Publisher, Browser)> {
    let app = TestApp::spawn_with(Db::Sqlite, settings).await;
    let w = world(&app, 2).await?;
    let mut p = Publisher::connect().await?;
    report(&app, &mut p, &w.cars[0].0, NEAR, 60.0, 32).await?;
    report(&app, &mut p, &w.cars[1].0, FAR, 90.0, 52).await?;
    let b = Browser::start_phone(PHONE.0, PHONE.1).await?;
    b.client.goto(&app.url("/driver")).await?;
    b.wait_js(
        "the login form",
        "const e = document.querySelector('#login-username'); return !!e && e.offsetParent !== null;",
        vec![],
    )
    .await?;
    b.screenshot("driver-login-zh").await?;
    let cold = b
        .js(
            "const n = performance.getEntriesByType('navigation')[0]; \
             const fcp = performance.getEntriesByName('first-contentful-paint')[0]; \
             return {fcp_ms: fcp ? Math.round(fcp.startTime) : null, dom_content_loaded_ms: Math.round(n.domContentLoadedEventEnd)};",
            vec![],
        )
        .await?;
    println!("driver page first visit on loopback (login view, nothing cached): {cold}");
    b.fill("#login-username", "driver0").await?;
    b.fill("#login-password", "driver-pass").await?;
    b.click("#login-submit").await?;
    b.wait_js("the first load rendered", "return window.__driver && window.__driver.ready === true;", vec![]).await?;
    b.wait_js(
        "the empty state",
        "return !!document.querySelector('#no-order') && !document.querySelector('#current-order');",
        vec![],
    )
    .await?;
    b.wait_js("the live feed open", "return document.querySelector('#conn-status').dataset.state === 'open';", vec![])
        .await?;
    Ok((app, w, p, b))
}

/// A car's full report over MQTT (position, charge, odometer, range); waits until the car's
/// stored state is at it.
async fn report(
    app: &TestApp,
    p: &mut Publisher,
    vin: &str,
    at: (f64, f64),
    soc: f64,
    range_km: u32,
) -> anyhow::Result<()> {
    let ts =
        chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).expect("now is a valid time");
    let sample = json!({"ts": ts.to_rfc3339(), "lat": at.0, "lon": at.1, "soc_pct": soc, "speed_kmh": 0.0,
                        "charging": false, "odometer_km": 12_345.6, "range_km": f64::from(range_km) * soc / 10.0});
    p.json(vin, &sample).await?;
    app.wait_for_state(vin, "at the report", |s| s.ts >= ts).await.map(|_| ())
}

async fn create(app: &TestApp, token: &str, body: Value) -> anyhow::Result<String> {
    let (status, v) = post(app, token, "/api/v1/orders", body).await?;
    anyhow::ensure!(status == 201, "creating an order: {status} {v}");
    Ok(v["id"].as_str().unwrap().to_owned())
}

/// Taps a button once it can be tapped (after a tap the next step's button is grey for a
/// moment, so that a double tap cannot do two steps).
async fn tap(b: &Browser, css: &str) -> anyhow::Result<()> {
    b.wait_js(
        &format!("{css} enabled"),
        "const e = document.querySelector(arguments[0]); return !!e && !e.disabled;",
        vec![json!(css)],
    )
    .await?;
    b.click(css).await
}

/// Waits until the page's current order is `id` with `status`.
async fn current(b: &Browser, id: &str, status: &str) -> anyhow::Result<()> {
    b.wait_js(
        &format!("the current order {status}"),
        "const e = document.querySelector('#current-order'); return !!e && e.dataset.orderId === arguments[0] && e.dataset.status === arguments[1];",
        vec![json!(id), json!(status)],
    )
    .await?;
    Ok(())
}

/// Waits until no tap is waiting to be sent.
async fn sent(b: &Browser) -> anyhow::Result<()> {
    b.wait_js("every tap sent", "return document.querySelector('#pending-taps').dataset.count === '0';", vec![])
        .await?;
    Ok(())
}

/// Polls the order (as admin) until `check` holds; answers it.
async fn wait_order(
    app: &TestApp,
    w: &World,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + fleet_tests::DEFAULT_DEADLINE;
    loop {
        let (_, v) = get(app, &w.admin, &format!("/api/v1/orders/{id}")).await?;
        if check(&v) {
            return Ok(v);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; last seen {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The order's history as (action, actor).
fn history(order: &Value) -> Vec<(String, String)> {
    order["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["actor"].as_str().unwrap().to_owned()))
        .collect()
}

fn count(order: &Value, action: &str) -> usize {
    history(order).iter().filter(|(a, _)| a == action).count()
}

/// Whether the element is laid out and visible.
async fn shown(b: &Browser, css: &str) -> anyhow::Result<bool> {
    let v = b
        .js(
            "const e = document.querySelector(arguments[0]); return !!e && !e.hidden && e.offsetParent !== null;",
            vec![json!(css)],
        )
        .await?;
    Ok(v == json!(true))
}

/// Waits for the small map's pins (Leaflet is loaded after the first render).
async fn map_drawn(b: &Browser) -> anyhow::Result<()> {
    b.wait_js(
        "the small map's pins",
        "return document.querySelectorAll('#current-order .drv-map .drv-pin').length === 2;",
        vec![],
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_arrives_live_and_is_accepted_picked_up_and_completed_by_taps() -> anyhow::Result<()> {
    let (app, w, mut p, b) = scene(Duration::from_secs(120)).await?;
    let (vin, _, _) = w.cars[0].clone();
    assert_eq!(b.js("return document.documentElement.lang;", vec![]).await?, "zh-CN", "Chinese by default");
    b.wait_js("the car's charge", "return document.querySelector('#car-soc').dataset.soc === '60';", vec![]).await?;
    assert!(!shown(&b, "#charge-warning").await?, "no warning without an order");
    b.screenshot("driver-empty-zh").await?;

    // Created over HTTP, matched by dispatch, shown by the live feed: the page is not reloaded.
    b.js("window.__sameDocument = true;", vec![]).await?;
    let id = create(&app, &w.unit2, order_body("u2", 2)).await?;
    current(&b, &id, "assigned").await?;
    assert_eq!(
        b.js("return window.__sameDocument === true;", vec![]).await?,
        json!(true),
        "the order came without a reload"
    );
    let secs = b
        .wait_js(
            "the countdown",
            "const e = document.querySelector('#countdown'); return e && Number(e.dataset.seconds);",
            vec![],
        )
        .await?;
    assert!((100..=120).contains(&secs.as_u64().unwrap_or(0)), "the countdown starts near the accept timeout: {secs}");
    let card = b.text("#current-order").await?;
    for expected in ["舟山市行政中心", "普陀区政府", "调研", "2 人", "u2"] {
        assert!(card.contains(expected), "the card shows {expected}: {card}");
    }
    map_drawn(&b).await?;
    b.screenshot("driver-assigned-zh").await?;

    tap(&b, "#accept").await?;
    current(&b, &id, "accepted").await?;
    sent(&b).await?;
    wait_order(&app, &w, &id, "accepted on the server", |o| o["status"] == "accepted").await?;

    // The charge falls below what the trip needs with the reserve kept: the page warns.
    feed(&app, &mut p, &vin, NEAR.0, NEAR.1, 21.0).await?;
    b.wait_js(
        "the charge warning",
        "const e = document.querySelector('#charge-warning'); return !!e && !e.hidden && e.textContent.length > 0;",
        vec![],
    )
    .await?;
    assert_eq!(b.js("return document.querySelector('#car-soc').dataset.soc;", vec![]).await?, "21");
    map_drawn(&b).await?;
    b.wait_js("the next button ready", "return !document.querySelector('#pickup').disabled;", vec![]).await?;
    b.screenshot("driver-accepted-low-charge-zh").await?;

    // English by the switch: the labels change, the data stays.
    b.click("#lang-switch").await?;
    b.wait_js("English", "return document.documentElement.lang === 'en';", vec![]).await?;
    assert_eq!(b.text("#pickup").await?, "Passengers on board");
    let body = b.text("body").await?;
    for zh in ["接单", "上车", "电量", "今日", "退出"] {
        assert!(!body.contains(zh), "Chinese label {zh:?} left after switching to English: {body}");
    }
    b.screenshot("driver-accepted-en").await?;
    b.click("#lang-switch").await?;
    b.wait_js("Chinese again", "return document.documentElement.lang === 'zh-CN';", vec![]).await?;
    feed(&app, &mut p, &vin, NEAR.0, NEAR.1, 58.0).await?;
    b.wait_js(
        "the warning gone after charging",
        "const e = document.querySelector('#charge-warning'); return !!e && e.hidden;",
        vec![],
    )
    .await?;

    tap(&b, "#pickup").await?;
    current(&b, &id, "picked_up").await?;
    sent(&b).await?;
    map_drawn(&b).await?;
    b.wait_js("the next button ready", "return !document.querySelector('#complete').disabled;", vec![]).await?;
    b.screenshot("driver-on-trip-zh").await?;
    tap(&b, "#complete").await?;
    b.wait_js("the order done and listed today", "return !document.querySelector('#current-order') && document.querySelector('#trips-today').dataset.count === '1';", vec![]).await?;
    sent(&b).await?;
    b.wait_js("this month's count", "return document.querySelector('#trips-month').dataset.count === '1';", vec![])
        .await?;
    b.screenshot("driver-completed-zh").await?;

    let done = wait_order(&app, &w, &id, "completed on the server", |o| o["status"] == "completed").await?;
    let ev = |a: &str, actor: &str| (a.to_owned(), actor.to_owned());
    assert_eq!(
        history(&done),
        vec![
            ev("create", "unit2"),
            ev("assign", "dispatch"),
            ev("accept", "driver0"),
            ev("pickup", "driver0"),
            ev("complete", "driver0")
        ]
    );

    // The first render of a signed-in reload, measured by the browser itself.
    b.client.refresh().await?;
    b.wait_js("ready after a reload", "return window.__driver && window.__driver.ready === true;", vec![]).await?;
    let timing = b
        .js(
            "const n = performance.getEntriesByType('navigation')[0]; \
             const fcp = performance.getEntriesByName('first-contentful-paint')[0]; \
             return {ready_ms: window.__driver.readyMs, fcp_ms: fcp ? Math.round(fcp.startTime) : null, \
                     dom_content_loaded_ms: Math.round(n.domContentLoadedEventEnd), load_ms: Math.round(n.loadEventEnd), \
                     sw: !!navigator.serviceWorker.controller};",
            vec![],
        )
        .await?;
    println!("driver page first render on loopback (reload, signed in): {timing}");
    b.close().await?;

    // The manifest is served as a web manifest, the worker as a script.
    let r = app.http.get(app.url("/driver.webmanifest")).send().await?;
    assert_eq!(r.headers()["content-type"], "application/manifest+json; charset=utf-8");
    let manifest: Value = r.json().await?;
    assert_eq!(
        (manifest["name"].as_str(), manifest["start_url"].as_str(), manifest["display"].as_str()),
        (Some("公务用车司机端"), Some("/driver"), Some("standalone"))
    );
    let r = app.http.get(app.url("/driver-sw.js")).send().await?;
    assert!(r.headers()["content-type"].to_str()?.contains("javascript"), "{:?}", r.headers()["content-type"]);
    // The page sets its countdown by the server's clock, read from this header.
    let r = app.http.get(app.url("/healthz")).send().await?;
    assert!(r.headers().contains_key("date"), "the server's Date header");
    for icon in ["/driver/icon-192.png", "/driver/icon-512.png"] {
        let r = app.http.get(app.url(icon)).send().await?;
        assert_eq!(
            (r.status().as_u16(), r.headers()["content-type"].to_str()?.to_owned()),
            (200, "image/png".to_owned())
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_with_a_reason_sends_the_order_to_the_other_car() -> anyhow::Result<()> {
    let (app, w, _p, b) = scene(Duration::from_secs(120)).await?;
    let id = create(&app, &w.unit2, order_body("u2", 1)).await?;
    current(&b, &id, "assigned").await?;
    tap(&b, "#decline").await?;
    b.wait_js(
        "the reason sheet",
        "const e = document.querySelector('#decline-sheet'); return !!e && !e.hidden;",
        vec![],
    )
    .await?;
    // No reason yet: refused on the page, nothing sent.
    b.click("#decline-confirm").await?;
    b.wait_js(
        "asked for a reason",
        "const e = document.querySelector('#decline-error'); return !!e && !e.hidden;",
        vec![],
    )
    .await?;
    b.click("#decline-sheet [data-reason='charging']").await?;
    b.fill("#decline-reason", "约20分钟后充满").await?;
    b.screenshot("driver-decline-zh").await?;
    b.click("#decline-confirm").await?;
    b.wait_js(
        "the order gone from the page",
        "return !document.querySelector('#current-order') && !!document.querySelector('#no-order');",
        vec![],
    )
    .await?;
    sent(&b).await?;

    let far = &w.cars[1];
    let o =
        wait_order(&app, &w, &id, "the other car", |o| o["vin"] == far.0.as_str() && o["status"] == "assigned").await?;
    let decline = o["events"].as_array().unwrap().iter().find(|e| e["action"] == "decline").unwrap().clone();
    assert_eq!(
        (decline["actor"].as_str(), decline["reason"].as_str()),
        (Some("driver0"), Some("正在充电：约20分钟后充满"))
    );
    assert_eq!(count(&o, "decline"), 1);
    b.screenshot("driver-declined-zh").await?;
    b.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_not_accepted_in_time_counts_down_and_leaves_the_page() -> anyhow::Result<()> {
    let (app, w, _p, b) = scene(Duration::from_secs(3)).await?;
    let id = create(&app, &w.unit2, order_body("u2", 1)).await?;
    current(&b, &id, "assigned").await?;
    let first = b
        .wait_js(
            "the countdown",
            "const e = document.querySelector('#countdown'); return e && e.dataset.seconds;",
            vec![],
        )
        .await?;
    let first: u64 = first.as_str().unwrap_or_default().parse()?;
    assert!((1..=3).contains(&first), "counts down from the 3 s timeout: {first}");
    b.screenshot("driver-countdown-zh").await?;
    // The countdown runs (seen below its first value, or already at its end) …
    b.wait_js(
        "the countdown running",
        "const e = document.querySelector('#countdown'); return !e || Number(e.dataset.seconds) < arguments[0];",
        vec![json!(first)],
    )
    .await?;
    // … and at its end the order leaves the page, with a word why.
    b.wait_js("the order gone from the page", "return !document.querySelector('#current-order');", vec![]).await?;
    let why = b
        .wait_js(
            "the notice",
            "const e = document.querySelector('#notice'); return !e.hidden && e.textContent;",
            vec![],
        )
        .await?;
    assert!(why.as_str().unwrap_or_default().contains("超时"), "the notice says the time ran out: {why}");
    b.screenshot("driver-timed-out-zh").await?;

    let o = wait_order(&app, &w, &id, "expired on the server", |o| count(o, "expire") >= 1).await?;
    let expire = o["events"].as_array().unwrap().iter().find(|e| e["action"] == "expire").unwrap().clone();
    assert_eq!(
        (expire["actor"].as_str(), expire["reason"].as_str(), expire["vin"].as_str()),
        (Some("dispatch"), Some("accept_timeout"), Some(w.cars[0].0.as_str()))
    );
    assert_eq!(count(&o, "accept"), 0);
    b.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tap_made_without_network_is_kept_and_lands_once_when_it_returns() -> anyhow::Result<()> {
    // A fixed port: the server is stopped and started again at the same origin, so the page
    // (and its service worker's cache) stays the same.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let (mut app, w, _p, b) = scene_with(|s| {
        fast(s, Duration::from_secs(120));
        s.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    })
    .await?;
    let id = create(&app, &w.unit2, order_body("u2", 2)).await?;
    current(&b, &id, "assigned").await?;
    // The page's files are in the service worker's cache before the signal goes.
    b.wait_js(
        "the service worker in control, the page cached",
        "return navigator.serviceWorker.controller !== null && caches.match('/driver').then(r => !!r);",
        vec![],
    )
    .await?;

    // 1. The phone loses its signal (the browser knows: navigator.onLine is false).
    b.set_offline(true).await?;
    b.wait_js("the browser offline", "return navigator.onLine === false;", vec![]).await?;
    tap(&b, "#accept").await?;
    b.wait_js(
        "the tap kept",
        "const e = document.querySelector('#pending-taps'); return e.dataset.count === '1' && !e.hidden;",
        vec![],
    )
    .await?;
    current(&b, &id, "accepted").await?;
    assert!(shown(&b, "#current-order .drv-tag-pending").await?, "the card marks the tap as not sent");
    assert!(shown(&b, "#net-banner").await?, "the page says it is offline");
    b.screenshot("driver-offline-zh").await?;
    let (_, o) = get(&app, &w.admin, &format!("/api/v1/orders/{id}")).await?;
    assert_eq!((o["status"].as_str(), count(&o, "accept")), (Some("assigned"), 0), "the server has not heard of it");

    // 2. The signal returns but the server cannot be reached (it is stopped): the browser
    //    says online, the page tries at once, the fetch fails, the tap stays kept. (Chromium's
    //    offline emulation covers the page but not its service worker's own fetches, so only
    //    a server that is really gone shows the page coming from the cache.)
    app.stop().await;
    b.set_offline(false).await?;
    b.wait_js("the browser online again", "return navigator.onLine === true;", vec![]).await?;
    b.wait_js("the live feed down", "return document.querySelector('#conn-status').dataset.state !== 'open';", vec![])
        .await?;
    assert_eq!(b.js("return window.__driver.pending();", vec![]).await?, json!(1), "a failed send keeps the tap");

    // 3. Reloaded with the server gone: the service worker's cache serves the page, which
    //    shows the last data it had and the kept tap.
    b.client.refresh().await?;
    b.wait_js("ready from the cache", "return window.__driver && window.__driver.ready === true;", vec![]).await?;
    b.wait_js(
        "the kept tap after the reload",
        "return document.querySelector('#pending-taps').dataset.count === '1';",
        vec![],
    )
    .await?;
    current(&b, &id, "accepted").await?;
    assert!(shown(&b, "#net-banner").await?, "the page says its data is from earlier");
    // Leaflet and the land outline came from the cache too.
    map_drawn(&b).await?;
    b.wait_js(
        "the land outline from the cache",
        "return !!document.querySelector('#current-order .leaflet-land-pane path');",
        vec![],
    )
    .await?;
    b.screenshot("driver-offline-reloaded-zh").await?;

    // 4. The server is back at the same address: the tap lands, once.
    app.restart().await;
    sent(&b).await?;
    current(&b, &id, "accepted").await?;
    let o = wait_order(&app, &w, &id, "accepted on the server", |o| o["status"] == "accepted").await?;
    assert_eq!(count(&o, "accept"), 1, "one accept: {:?}", history(&o));
    // The feed's reconnect sends the queue again too: it finds it empty.
    b.wait_js(
        "the live feed open again",
        "return document.querySelector('#conn-status').dataset.state === 'open';",
        vec![],
    )
    .await?;
    sent(&b).await?;
    b.wait_js("the banner gone", "return document.querySelector('#net-banner').hidden;", vec![]).await?;
    let (_, o) = get(&app, &w.admin, &format!("/api/v1/orders/{id}")).await?;
    assert_eq!(count(&o, "accept"), 1, "still one accept: {:?}", history(&o));
    b.screenshot("driver-back-online-zh").await?;
    b.close().await
}
