//! The map page's Orders tab in headless Chromium: a dispatcher approves a unit's order,
//! assigns a car from the picker (nearest first, offline cars disabled), cancels another
//! with a reason, meets the friendly text of a 409, books a new order from the form; a unit
//! user sees only its own orders and no assignment. Screenshots go to `target/test-artifacts/`.

use chrono::{Duration, FixedOffset, Utc};
use fleet_tests::browser::Browser;
use fleet_tests::{Db, Publisher, TestApp};
use serde_json::{Value, json};

use crate::orders::{feed, get, order_body, post, world};

async fn log_in(b: &Browser, app: &TestApp, user: &str, password: &str) -> anyhow::Result<()> {
    b.client.goto(&app.url("/")).await?;
    b.fill("#login-username", user).await?;
    b.fill("#login-password", password).await?;
    b.click("#login-submit").await?;
    b.wait_js("the first snapshot drawn", "return window.__fleet && window.__fleet.ready === true;", vec![]).await?;
    b.click("#tab-orders").await?;
    Ok(())
}

/// An order picked up in three hours: not yet due for the automatic dispatch, which would
/// otherwise match it before the page does.
fn later(unit: &str, passengers: u32) -> Value {
    let mut body = order_body(unit, passengers);
    body["pickup_at"] = json!((Utc::now() + Duration::hours(3)).to_rfc3339());
    body
}

async fn create(app: &TestApp, token: &str, body: Value) -> anyhow::Result<String> {
    let (status, v) = post(app, token, "/api/v1/orders", body).await?;
    anyhow::ensure!(status == 201, "creating an order: {status} {v}");
    Ok(v["id"].as_str().unwrap().to_owned())
}

async fn server_order(app: &TestApp, token: &str, id: &str) -> anyhow::Result<Value> {
    let (status, v) = get(app, token, &format!("/api/v1/orders/{id}")).await?;
    anyhow::ensure!(status == 200, "GET order {id}: {status}");
    Ok(v)
}

/// Waits until the open card shows `status`.
async fn card_status(b: &Browser, status: &str) -> anyhow::Result<()> {
    b.wait_js(
        &format!("the card says {status}"),
        "const e = document.querySelector('#order-detail-status'); return e && e.dataset.status === arguments[0];",
        vec![json!(status)],
    )
    .await?;
    Ok(())
}

/// Whether the element is shown (present, not hidden, laid out).
async fn shown(b: &Browser, css: &str) -> anyhow::Result<bool> {
    let v = b
        .js("const e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null;", vec![json!(css)])
        .await?;
    Ok(v == json!(true))
}

async fn open_row(b: &Browser, chip: &str, id: &str) -> anyhow::Result<()> {
    b.click(&format!("#order-filter-{chip}")).await?;
    let row = format!("#order-list li[data-order='{id}']");
    b.wait_js(&format!("the row of {id}"), "return !!document.querySelector(arguments[0]);", vec![json!(row)]).await?;
    b.click(&row).await?;
    b.wait_js("the card on the order", "const e = document.querySelector('#order-detail-title'); return e && e.offsetParent !== null && e.textContent.includes(arguments[0]);", vec![json!(id)])
        .await?;
    Ok(())
}

/// Records every POST the page sends (URL and Idempotency-Key); `window.__failNext` makes
/// the next one fail as a dropped connection would, before it reaches the server.
const RECORD_POSTS: &str = r#"
window.__posts = [];
window.__failNext = false;
const real = window.fetch;
window.fetch = (url, o = {}) => {
  if (o.method === 'POST') {
    window.__posts.push({ url: String(url), key: (o.headers || {})['Idempotency-Key'] || null });
    if (window.__failNext) { window.__failNext = false; return Promise.reject(new TypeError('Failed to fetch')); }
  }
  return real(url, o);
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_approves_assigns_and_cancels_orders_on_the_map() -> anyhow::Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await;
    let w = world(&app, 3).await?;
    let mut p = Publisher::connect().await?;
    // Car 0 next to the pickup, car 1 in Putuo, car 2 silent for half an hour (offline).
    feed(&app, &mut p, &w.cars[0].0, 30.0150, 122.1060, 82.0).await?;
    feed(&app, &mut p, &w.cars[1].0, 29.9500, 122.3000, 64.0).await?;
    let old = (Utc::now() - Duration::minutes(30)).to_rfc3339();
    p.json(&w.cars[2].0, &json!({"ts": old, "lat": 30.0125, "lon": 122.1040, "soc_pct": 90.0, "speed_kmh": 0.0}))
        .await?;
    app.wait_for_samples(&w.cars[2].0, 1).await?;

    let first = create(&app, &w.unit1, later("u1", 2)).await?;
    let mut body = later("u1", 1);
    body["pickup"]["name"] = json!("定海区政府");
    let second = create(&app, &w.unit1, body).await?;
    let other = create(&app, &w.unit2, later("u2", 3)).await?; // auto-approved

    let b = Browser::start(1280, 800).await?;
    log_in(&b, &app, "disp", "disp-pass").await?;
    b.js(RECORD_POSTS, vec![]).await?;
    // Both of unit 1's orders wait for approval: the chip counts them, the rows say what they are.
    b.wait_js(
        "two orders to approve",
        "return document.querySelector('#order-filter-pending .chip-count').textContent === '2';",
        vec![],
    )
    .await?;
    let row = b.text(&format!("#order-list li[data-order='{first}']")).await?;
    for part in ["待审批", "市委办公室", "舟山市行政中心", "普陀区政府", "2 人"] {
        assert!(row.contains(part), "the row shows {part}: {row}");
    }

    // Approve, after a first try lost on the way: the retry sends the same key.
    open_row(&b, "pending", &first).await?;
    assert_eq!(
        b.js("return window.__fleet.orderPins();", vec![]).await?,
        json!({"pickup": [30.0123, 122.1034], "dropoff": [29.9977, 122.2047]})
    );
    assert_eq!(
        b.js("return document.querySelectorAll('.order-pin').length;", vec![]).await?,
        json!(2),
        "pickup and dropoff pins"
    );
    assert!(!shown(&b, "#order-assign").await?, "no assignment before approval");
    b.js("window.__failNext = true;", vec![]).await?;
    b.click("#order-approve").await?;
    let msg = b
        .wait_js(
            "the network error",
            "const e = document.querySelector('#order-error'); return e && !e.hidden && e.textContent;",
            vec![],
        )
        .await?;
    assert!(msg.as_str().unwrap().contains("无法连接服务器"), "{msg}");
    b.click("#order-approve").await?;
    card_status(&b, "approved").await?;
    let posts = b.js("return window.__posts;", vec![]).await?;
    let keys: Vec<&str> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().expect("every POST has an Idempotency-Key"))
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "a retried action reuses its key");
    assert_eq!(keys[0].len(), 36, "a UUID: {}", keys[0]);
    assert_eq!(server_order(&app, &w.admin, &first).await?["status"], "approved");

    // Assign by hand: the nearest car first, the silent one disabled.
    b.click("#order-assign").await?;
    b.wait_js("the car picker", "return document.querySelectorAll('#order-cars li[data-vin]').length === 3;", vec![])
        .await?;
    let order: Vec<Value> = b
        .js("return [...document.querySelectorAll('#order-cars li[data-vin]')].map(e => [e.dataset.vin, e.getAttribute('aria-disabled') === 'true']);", vec![])
        .await?
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(order[0], json!([w.cars[2].0, true]), "the offline car is listed (nearest) but disabled");
    assert_eq!(order[1], json!([w.cars[0].0, false]));
    assert_eq!(order[2], json!([w.cars[1].0, false]));
    let picker = b.text(&format!("#order-cars li[data-vin='{}']", w.cars[0].0)).await?;
    assert!(
        picker.contains("浙L·D70000") && picker.contains("空闲") && picker.contains("82%") && picker.contains("km"),
        "{picker}"
    );
    // A click on the disabled car chooses nothing.
    b.click(&format!("#order-cars li[data-vin='{}']", w.cars[2].0)).await?;
    assert_eq!(b.js("return document.querySelector('#order-confirm').disabled;", vec![]).await?, json!(true));
    b.click(&format!("#order-cars li[data-vin='{}']", w.cars[0].0)).await?;
    b.wait_js("the confirm button names the car", "const e = document.querySelector('#order-confirm'); return !e.disabled && e.textContent.includes('浙L·D70000');", vec![]).await?;
    b.screenshot("orders-picker-zh").await?;
    b.click("#order-confirm").await?;
    card_status(&b, "assigned").await?;
    b.wait_js("the plate on the card", "const e = document.querySelector('#order-detail .od-vehicle'); return e && e.textContent.includes('浙L·D70000');", vec![]).await?;
    let v = server_order(&app, &w.admin, &first).await?;
    assert_eq!((v["status"].as_str(), v["vin"].as_str()), (Some("assigned"), Some(w.cars[0].0.as_str())));
    // The history: applied by unit1, approved and assigned by disp.
    b.wait_js(
        "three history entries",
        "return document.querySelectorAll('#order-history li.tl-item').length === 3;",
        vec![],
    )
    .await?;
    let history = b.text("#order-history").await?;
    for part in ["提交申请", "unit1", "批准", "派车", "disp", "待审批 → 已批准", "已批准 → 已派车", "浙L·D70000"]
    {
        assert!(history.contains(part), "the history shows {part}: {history}");
    }
    // The row moved to the active chip, with plate and driver.
    b.click("#order-filter-active").await?;
    let row = b.text(&format!("#order-list li[data-order='{first}']")).await?;
    assert!(row.contains("浙L·D70000") && row.contains("司机0"), "{row}");
    b.screenshot("orders-zh").await?;

    // The same car for the auto-approved order of unit 2: it is taken then (409 vehicle_busy).
    open_row(&b, "waiting", &other).await?;
    b.click("#order-assign").await?;
    b.wait_js("the car picker", "return document.querySelectorAll('#order-cars li[data-vin]').length === 3;", vec![])
        .await?;
    b.click(&format!("#order-cars li[data-vin='{}']", w.cars[0].0)).await?;
    b.click("#order-confirm").await?;
    let msg = b
        .wait_js(
            "the busy error",
            "const e = document.querySelector('#order-error'); return e && !e.hidden && e.textContent;",
            vec![],
        )
        .await?;
    assert!(msg.as_str().unwrap().contains("已有其他订单"), "vehicle_busy in plain words: {msg}");
    assert_eq!(server_order(&app, &w.admin, &other).await?["status"], "approved");

    // Cancel the second order: a reason is required, and recorded.
    open_row(&b, "pending", &second).await?;
    assert!(shown(&b, "#order-approve").await? && shown(&b, "#order-reject").await?);
    b.click("#order-cancel").await?;
    b.click("#order-confirm").await?;
    let msg = b
        .wait_js(
            "the missing reason",
            "const e = document.querySelector('#order-error'); return e && !e.hidden && e.textContent;",
            vec![],
        )
        .await?;
    assert!(msg.as_str().unwrap().contains("原因"), "{msg}");
    b.fill("#order-reason", "会议改期").await?;
    b.click("#order-confirm").await?;
    card_status(&b, "canceled").await?;
    b.wait_js(
        "the cancel in the history",
        "return document.querySelector('#order-history').textContent.includes('会议改期');",
        vec![],
    )
    .await?;
    assert!(
        !shown(&b, "#order-cancel").await? && !shown(&b, "#order-approve").await?,
        "nothing to do on a canceled order"
    );
    let v = server_order(&app, &w.admin, &second).await?;
    assert_eq!(v["status"], "canceled");
    assert_eq!(v["events"].as_array().unwrap().last().unwrap()["reason"], "会议改期");
    b.click("#order-filter-done").await?;
    b.wait_js(
        "the canceled order under done today",
        "return !!document.querySelector(`#order-list li[data-order='${arguments[0]}']`);",
        vec![json!(second)],
    )
    .await?;

    // Every action carried a key of its own (the one retry aside).
    let posts = b.js("return window.__posts;", vec![]).await?;
    let mut keys: Vec<&str> = posts.as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 5, "{posts}");
    keys.dedup();
    assert_eq!(keys.len(), 4, "fresh keys for new actions: {posts}");

    // A new order from the form: pickup typed in, dropoff clicked on the map.
    b.click("#order-new").await?;
    b.wait_js("the form", "return document.querySelector('#order-new-form').offsetParent !== null;", vec![]).await?;
    b.js("document.querySelector('#nf-unit').value = 'u2';", vec![]).await?;
    b.fill("#nf-passengers", "3").await?;
    b.fill("#nf-pickup-name", "沈家门码头").await?;
    b.fill("#nf-pickup-lat", "29.9512").await?;
    b.fill("#nf-pickup-lon", "122.3021").await?;
    b.click("#nf-dropoff-pick").await?;
    b.js(
        "const m = document.querySelector('#map'); const r = m.getBoundingClientRect(); \
         m.dispatchEvent(new MouseEvent('click', {bubbles: true, clientX: r.left + r.width * 0.8, clientY: r.top + r.height * 0.3}));",
        vec![],
    )
    .await?;
    let lat = b
        .wait_js("the dropoff from the map", "return document.querySelector('#nf-dropoff-lat').value;", vec![])
        .await?;
    let lat: f64 = lat.as_str().unwrap().parse()?;
    assert!((29.0..31.0).contains(&lat), "a latitude near Zhoushan: {lat}");
    b.fill("#nf-dropoff-name", "普陀山").await?;
    // The time as a Zhoushan clock shows it, whatever the browser's zone.
    let at = (Utc::now() + Duration::hours(3)).with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap());
    let local = at.format("%Y-%m-%dT%H:%M").to_string();
    b.js("document.querySelector('#nf-time').value = arguments[0];", vec![json!(local)]).await?;
    b.fill("#nf-purpose", "接待").await?;
    b.click("#nf-submit").await?;
    let created = b
        .wait_js("the new order opened", "const e = document.querySelector('#order-detail-title'); return e && e.offsetParent !== null && document.querySelector('#order-detail-status') && e.textContent;", vec![])
        .await?;
    let new_id = created.as_str().unwrap().rsplit('#').next().unwrap().to_owned();
    let v = server_order(&app, &w.admin, &new_id).await?;
    assert_eq!(
        (v["unit_id"].as_str(), v["passengers"].as_u64(), v["pickup"]["name"].as_str(), v["status"].as_str()),
        (Some("u2"), Some(3), Some("沈家门码头"), Some("approved"))
    );
    assert!((v["dropoff"]["lat"].as_f64().unwrap() - lat).abs() < 1e-9, "the clicked latitude was sent: {v}");
    let sent = chrono::DateTime::parse_from_rfc3339(v["pickup_at"].as_str().unwrap())?;
    assert_eq!(
        sent.with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap()).format("%Y-%m-%dT%H:%M").to_string(),
        local
    );

    // Both dictionaries hold the same keys, so English misses nothing.
    let same = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1]; Promise.all([import('/i18n/zh.js'), import('/i18n/en.js')]) \
             .then(([z, e]) => done(Object.keys(z.default).sort().join() === Object.keys(e.default).sort().join()));",
            vec![],
        )
        .await?;
    assert_eq!(same, json!(true), "zh.js and en.js have the same keys");
    b.click("#lang-switch").await?;
    b.wait_js("English", "return document.documentElement.lang.startsWith('en');", vec![]).await?;
    let card = b.text("#order-detail").await?;
    assert!(
        !card.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) && !"沈家门码头普陀山接待市财政局".contains(c)),
        "Chinese left in English: {card}"
    );
    b.screenshot("orders-en").await?;
    b.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_user_sees_only_its_own_orders_and_cannot_assign() -> anyhow::Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await;
    let w = world(&app, 1).await?;
    let mine = create(&app, &w.unit1, later("u1", 2)).await?;
    let (status, _) = post(&app, &w.dispatcher, &format!("/api/v1/orders/{mine}/approve"), json!({})).await?;
    assert_eq!(status, 200);
    let theirs = create(&app, &w.unit2, later("u2", 1)).await?; // approved too

    let b = Browser::start(1280, 800).await?;
    log_in(&b, &app, "unit1", "unit1-pass").await?;
    b.click("#order-filter-waiting").await?;
    b.wait_js(
        "its approved order",
        "return !!document.querySelector(`#order-list li[data-order='${arguments[0]}']`);",
        vec![json!(mine)],
    )
    .await?;
    assert_eq!(
        b.text("#order-filter-waiting .chip-count").await?,
        "1",
        "the other unit's approved order is not counted"
    );
    // Another unit's new order arrives live elsewhere, never here.
    let another = create(&app, &w.unit2, later("u2", 2)).await?;
    open_row(&b, "waiting", &mine).await?;
    assert!(!shown(&b, "#order-assign").await?, "a unit does not assign cars");
    assert!(shown(&b, "#order-cancel").await?, "a unit may cancel its own order");
    assert!(!shown(&b, "#order-approve").await?, "already approved");
    // A dispatcher assigns over HTTP: the unit's card follows live, still without assigning.
    let (status, v) =
        post(&app, &w.dispatcher, &format!("/api/v1/orders/{mine}/assign"), json!({"vin": w.cars[0].0})).await?;
    assert_eq!(status, 200, "{v}");
    card_status(&b, "assigned").await?;
    assert!(!shown(&b, "#order-assign").await?, "no reassignment either");
    b.wait_js(
        "the assignment in the history",
        "return document.querySelectorAll('#order-history li.tl-item').length === 3;",
        vec![],
    )
    .await?;
    let ids: Value = b
        .js("return [...document.querySelectorAll('#order-list li[data-order]')].map(e => e.dataset.order);", vec![])
        .await?;
    for chip in ["pending", "waiting", "active", "done"] {
        b.click(&format!("#order-filter-{chip}")).await?;
        let html = b.js("return document.querySelector('#order-list').innerHTML;", vec![]).await?;
        let html = html.as_str().unwrap();
        assert!(!html.contains(&theirs) && !html.contains(&another), "another unit's order under {chip}: {ids}");
    }
    // The form books for its own unit only.
    b.click("#order-new").await?;
    b.wait_js("the form", "return document.querySelector('#order-new-form').offsetParent !== null;", vec![]).await?;
    let unit = b
        .js("const s = document.querySelector('#nf-unit'); return [s.value, s.disabled, s.options.length];", vec![])
        .await?;
    assert_eq!(unit, json!(["u1", true, 1]));
    b.screenshot("orders-unit-zh").await?;
    b.close().await
}
