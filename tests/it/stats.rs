//! Derived trips and energy budgets (issue 7): a hand-made drive over MQTT becomes a trip
//! with known distance and energy, tied to the order it served; the unit's budget counts it,
//! warns, and refuses new orders once spent unless an admin overrides.

use std::time::Duration;

use chrono::Utc;
use fleet_tests::{Publisher, Settings, TestApp, both_with};
use serde_json::{Value, json};

use crate::orders::{World, get, order_body, post, world};

fn quick(s: &mut Settings) {
    s.stats.interval = Duration::from_millis(200);
    // Dispatch's batches would race the manual assignment below.
    s.dispatch.batch_interval = Duration::from_secs(3600);
    // The scene's drive follows the pickup made now: it is stamped up to 13 minutes ahead,
    // past the default tolerance for a terminal's clock.
    s.ingest_max_clock_ahead = Duration::from_secs(3600);
}

/// The scene both statistics tests start from: two cars; unit u3 (budget `budget_kwh`,
/// auto-approving) has an order whose passengers car 0 picked up, then car 0 drove 4.329 km
/// on 2.796 kWh (stand, 39 steps of 111 m north at 36 km/h losing 0.1 % a step, stand);
/// car 1 made the same drive without any order. Answers the world, car 0's VIN and driver
/// token, the order, car 1's VIN, and the drive's start.
pub(crate) async fn served_drive(
    app: &TestApp,
    budget_kwh: f64,
) -> anyhow::Result<(World, String, String, String, String, chrono::DateTime<Utc>)> {
    let w = world(app, 2).await?;
    let (vin, _, driver) = w.cars[0].clone();
    let (status, _) = post(
        app,
        &w.admin,
        "/api/v1/units",
        json!({"id": "u3", "name": "市档案馆", "monthly_energy_budget_kwh": budget_kwh, "auto_approve": true}),
    )
    .await?;
    assert_eq!(status, 201);
    let (_, o) = post(app, &w.admin, "/api/v1/orders", order_body("u3", 1)).await?;
    let id = o["id"].as_str().unwrap().to_owned();
    for (token, path, body) in
        [(&w.dispatcher, "assign", json!({"vin": vin})), (&driver, "accept", json!({})), (&driver, "pickup", json!({}))]
    {
        let (status, v) = post(app, token, &format!("/api/v1/orders/{id}/{path}"), body).await?;
        assert_eq!(status, 200, "{path}: {v}");
    }
    let base = Utc::now();
    let at = |secs: i64| (base + chrono::Duration::seconds(secs)).to_rfc3339();
    let mut batch = Vec::new();
    for i in 0..2 {
        batch.push(json!({"ts": at(i * 30), "lat": 30.0, "lon": 122.1, "speed_kmh": 0.0, "soc_pct": 80.0, "odometer_km": 1000.0}));
    }
    for i in 0..40 {
        let f = i as f64;
        batch.push(json!({"ts": at(60 + i * 11), "lat": 30.0 + f * 0.001, "lon": 122.1, "speed_kmh": 36.0, "soc_pct": 80.0 - f * 0.1, "odometer_km": 1000.0 + f * 0.111}));
    }
    for i in 0..10 {
        batch.push(json!({"ts": at(60 + 40 * 11 + i * 30), "lat": 30.039, "lon": 122.1, "speed_kmh": 0.0, "soc_pct": 76.1, "odometer_km": 1004.329}));
    }
    let mut p = Publisher::connect().await?;
    p.json(&vin, &Value::Array(batch.clone())).await?;
    app.wait_for_samples(&vin, 52).await?;
    let joyride = w.cars[1].0.clone();
    p.json(&joyride, &Value::Array(batch)).await?;
    app.wait_for_samples(&joyride, 52).await?;
    Ok((w, vin, driver, id, joyride, base))
}

both_with!(a_served_drive_becomes_a_trip_and_spends_the_units_budget, quick, |app: TestApp| async move {
    let (w, vin, driver, id, joyride, base) = served_drive(&app, 2.5).await?;
    let path = format!(
        "/api/v1/trips?vin={vin}&from={}&to={}",
        urlencode(&(base - chrono::Duration::hours(1)).to_rfc3339()),
        urlencode(&(base + chrono::Duration::hours(1)).to_rfc3339())
    );
    app.wait_until("the trip derived and closed", || async {
        let (_, v) = get(&app, &w.admin, &path).await?;
        Ok(v["trips"].as_array().is_some_and(|t| t.len() == 1 && t[0]["open"] == false))
    })
    .await?;
    let (_, v) = get(&app, &w.admin, &path).await?;
    let t = &v["trips"][0];
    assert!((t["distance_km"].as_f64().unwrap() - 4.329).abs() < 1e-6, "{t}");
    let kwh = 3.9 / 100.0 * 71.7;
    assert!((t["energy_kwh"].as_f64().unwrap() - kwh).abs() < 1e-6, "{t}");
    assert_eq!(
        (t["order_id"].as_str(), t["unit_id"].as_str(), t["start_odometer_km"].as_f64(), t["end_odometer_km"].as_f64()),
        (Some(id.as_str()), Some("u3"), Some(1000.0), Some(1004.329))
    );

    let (_, budget) = get(&app, &w.admin, "/api/v1/units/u3/budget").await?;
    assert!((budget["used_kwh"].as_f64().unwrap() - kwh).abs() < 1e-6, "{budget}");
    assert_eq!((budget["budget_kwh"].as_f64(), budget["warning"].as_bool()), (Some(2.5), Some(true)));
    assert!(budget["share"].as_f64().unwrap() > 1.0);
    let (_, other) = get(&app, &w.admin, "/api/v1/units/u2/budget").await?;
    assert_eq!((other["used_kwh"].as_f64(), other["warning"].as_bool()), (Some(0.0), Some(false)));
    assert_eq!(get(&app, &w.unit1, "/api/v1/units/u3/budget").await?.0, 404, "another unit's budget");
    assert_eq!(get(&app, &w.admin, "/api/v1/units/u3/budget?month=2026-13").await?.0, 400);

    // The month's statistics: JSON, CSV (UTF-8 with BOM) and XLSX.
    let month = fleet_domain::trips::month_of(base);
    let (status, m) = get(&app, &w.admin, &format!("/api/v1/stats/monthly?month={month}")).await?;
    assert_eq!(status, 200, "{m}");
    let u3 = m["units"].as_array().unwrap().iter().find(|u| u["unit_id"] == "u3").unwrap().clone();
    assert_eq!(
        (u3["trips"].as_i64(), u3["orders"]["picked_up"].as_i64(), u3["budget_warning"].as_bool()),
        (Some(1), Some(1), Some(true)),
        "{u3}"
    );
    assert!(
        (u3["km"].as_f64().unwrap() - 4.329).abs() < 1e-6 && (u3["kwh"].as_f64().unwrap() - kwh).abs() < 1e-6,
        "{u3}"
    );
    let expected_co2 = 4.329 * 8.0 / 100.0 * 2.3 - kwh * 0.5703;
    assert!((u3["co2_avoided_kg"].as_f64().unwrap() - expected_co2).abs() < 1e-6, "{u3}");
    let car = m["vehicles"].as_array().unwrap().iter().find(|v| v["vin"] == vin.as_str()).unwrap().clone();
    assert_eq!((car["trips"].as_i64(), car["charging_sessions"].as_i64()), (Some(1), Some(0)));
    let d0 = m["drivers"].as_array().unwrap().iter().find(|d| d["driver_id"] == "d0").unwrap().clone();
    assert_eq!(d0["trips"], 1);
    assert_eq!(
        get(&app, &driver, &format!("/api/v1/stats/monthly?month={month}")).await?.0,
        403,
        "drivers have no statistics"
    );
    let (_, mine) = get(&app, &w.unit1, &format!("/api/v1/stats/monthly?month={month}")).await?;
    assert_eq!(
        mine["units"].as_array().unwrap().iter().map(|u| u["unit_id"].as_str().unwrap()).collect::<Vec<_>>(),
        ["u1"],
        "a unit sees itself"
    );
    assert_eq!(get(&app, &w.unit1, &format!("/api/v1/stats/monthly?month={month}&unit_id=u3")).await?.0, 404);

    let csv = app
        .http
        .get(app.url(&format!("/api/v1/stats/monthly?month={month}&format=csv&view=vehicles")))
        .bearer_auth(&w.admin)
        .send()
        .await?;
    assert!(csv.headers()["content-type"].to_str()?.starts_with("text/csv"));
    let bytes = csv.bytes().await?;
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 with BOM for Excel");
    let text = std::str::from_utf8(&bytes[3..])?;
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("车牌,VIN,所属单位,行程数,里程(km)"), "{text}");
    let row = text.lines().find(|l| l.contains(vin.as_str())).unwrap();
    assert!(row.starts_with("浙L·D70000,") && row.contains(",1,4.33,"), "{row}");
    // A name a spreadsheet would run as a formula comes out as text (a leading ').
    let (status, _) = post(
        &app,
        &w.admin,
        "/api/v1/units",
        json!({"id": "u9", "name": "=HYPERLINK(\"http://x.example\",\"看\")", "monthly_energy_budget_kwh": 1.0}),
    )
    .await?;
    assert_eq!(status, 201);
    let csv = app
        .http
        .get(app.url(&format!("/api/v1/stats/monthly?month={month}&format=csv&view=units")))
        .bearer_auth(&w.admin)
        .send()
        .await?;
    let bytes = csv.bytes().await?;
    let text = std::str::from_utf8(&bytes[3..])?;
    let row = text.lines().find(|l| l.contains("HYPERLINK")).unwrap_or_else(|| panic!("the unit's row: {text}"));
    assert!(row.contains("\"'=HYPERLINK(") && !row.contains(",=HYPERLINK") && !row.contains("\"=HYPERLINK"), "{row}");

    let xlsx = app
        .http
        .get(app.url(&format!("/api/v1/stats/monthly?month={month}&format=xlsx&lang=en")))
        .bearer_auth(&w.admin)
        .send()
        .await?;
    assert_eq!(xlsx.status(), 200);
    let mut book = zip::ZipArchive::new(std::io::Cursor::new(xlsx.bytes().await?.to_vec()))?;
    let read = |book: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str| -> anyhow::Result<String> {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut book.by_name(name)?, &mut s)?;
        Ok(s)
    };
    let workbook = read(&mut book, "xl/workbook.xml")?;
    for sheet in ["Units", "Vehicles", "Drivers"] {
        assert!(workbook.contains(&format!("name=\"{sheet}\"")), "{workbook}");
    }
    let strings = read(&mut book, "xl/sharedStrings.xml")?;
    assert!(
        strings.contains("浙L·D70000") && strings.contains("市档案馆") && strings.contains("CO2 avoided (kg)"),
        "{strings}"
    );
    assert_eq!(get(&app, &w.admin, &format!("/api/v1/stats/monthly?month={month}&format=pdf")).await?.0, 400);

    // Misuse: the drive without an order is listed with its track; the served one never as
    // `no_order`.
    let path = format!("/api/v1/alarms/misuse?month={month}");
    app.wait_until("the order-less drive derived", || async {
        Ok(get(&app, &w.auditor, &path).await?.1["alarms"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["vin"] == joyride.as_str())))
    })
    .await?;
    let (_, list) = get(&app, &w.auditor, &path).await?;
    let alarm = list["alarms"].as_array().unwrap().iter().find(|a| a["vin"] == joyride.as_str()).unwrap().clone();
    assert!(alarm["reasons"].as_array().unwrap().contains(&json!("no_order")), "{alarm}");
    assert!(alarm["order_id"].is_null());
    for a in list["alarms"].as_array().unwrap().iter().filter(|a| a["vin"] == vin.as_str()) {
        assert!(!a["reasons"].as_array().unwrap().contains(&json!("no_order")), "{a}");
    }
    let (status, track) = get(&app, &w.auditor, alarm["track"].as_str().unwrap()).await?;
    assert_eq!(status, 200, "{track}");
    assert!(track["samples"].as_array().unwrap().len() >= 40, "the track covers the trip");
    assert_eq!(get(&app, &driver, &path).await?.0, 403);

    // Spent: new orders are refused, an admin may override (recorded), nobody else may.
    let (status, v) = post(&app, &w.admin, "/api/v1/orders", order_body("u3", 1)).await?;
    assert_eq!((status.as_u16(), v["error"]["code"].as_str()), (409, Some("budget_exhausted")));
    let mut over = order_body("u3", 1);
    over["override_budget"] = json!(true);
    assert_eq!(post(&app, &w.dispatcher, "/api/v1/orders", over.clone()).await?.0, 403);
    let (status, o) = post(&app, &w.admin, "/api/v1/orders", over).await?;
    assert_eq!(status, 201, "{o}");
    let (_, detail) = get(&app, &w.admin, &format!("/api/v1/orders/{}", o["id"].as_str().unwrap())).await?;
    assert!(detail["events"][0]["reason"].as_str().unwrap().contains("budget_override"), "{detail}");
    Ok(())
});

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

both_with!(
    a_trip_across_midnight_counts_in_the_month_it_starts_and_charging_is_counted,
    quick,
    |app: TestApp| async move {
        let w = world(&app, 1).await?;
        let vin = w.cars[0].0.clone();
        // 23:50 to 00:10 in Shanghai across 31 October / 1 November 2026, then a charge at 01:00.
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-10-31T15:50:00Z")?.with_timezone(&Utc);
        let at = |secs: i64| (t0 + chrono::Duration::seconds(secs)).to_rfc3339();
        let mut batch = vec![
            json!({"ts": at(-60), "lat": 30.0, "lon": 122.1, "speed_kmh": 0.0, "soc_pct": 60.0, "odometer_km": 500.0}),
        ];
        for i in 0..110 {
            let f = i as f64;
            batch.push(json!({"ts": at(i * 11), "lat": 30.0 + f * 0.001, "lon": 122.1, "speed_kmh": 36.0, "soc_pct": 60.0 - f * 0.1, "odometer_km": 500.0 + f * 0.111}));
        }
        for i in 0..10 {
            batch.push(json!({"ts": at(110 * 11 + i * 30), "lat": 30.109, "lon": 122.1, "speed_kmh": 0.0, "soc_pct": 49.1, "odometer_km": 512.099}));
        }
        for i in 0..20 {
            batch.push(json!({"ts": at(70 * 60 + i * 180), "lat": 30.109, "lon": 122.1, "speed_kmh": 0.0, "charging": true, "soc_pct": 49.1 + i as f64 * 2.0, "odometer_km": 512.099}));
        }
        batch.push(json!({"ts": at(70 * 60 + 20 * 180), "lat": 30.109, "lon": 122.1, "speed_kmh": 0.0, "charging": false, "soc_pct": 87.1, "odometer_km": 512.099}));
        let n = batch.len() as i64;
        let mut p = Publisher::connect().await?;
        p.json(&vin, &Value::Array(batch)).await?;
        app.wait_for_samples(&vin, n).await?;

        let car = |m: &Value| {
            m["vehicles"]
                .as_array()
                .and_then(|v| v.iter().find(|c| c["vin"] == vin.as_str()).cloned())
                .unwrap_or(Value::Null)
        };
        let october = {
            let deadline = tokio::time::Instant::now() + fleet_tests::DEFAULT_DEADLINE;
            loop {
                let (_, m) = get(&app, &w.admin, "/api/v1/stats/monthly?month=2026-10").await?;
                if car(&m)["trips"] == 1 {
                    break car(&m);
                }
                anyhow::ensure!(tokio::time::Instant::now() < deadline, "the October trip never appeared: {m}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        assert!((october["km"].as_f64().unwrap() - 109.0 * 0.111).abs() < 1e-6, "{october}");
        assert!((october["kwh"].as_f64().unwrap() - 10.9 / 100.0 * 71.7).abs() < 1e-6, "{october}");
        assert_eq!(october["charging_sessions"], 0);
        let (_, november) = get(&app, &w.admin, "/api/v1/stats/monthly?month=2026-11").await?;
        let november = car(&november);
        assert_eq!(
            (november["trips"].as_i64(), november["charging_sessions"].as_i64()),
            (Some(0), Some(1)),
            "{november}"
        );
        assert!((november["charging_kwh"].as_f64().unwrap() - 0.38 * 71.7).abs() < 1e-6, "{november}");
        assert_eq!(november["previous"]["trips"], 1, "the month before is October");
        Ok(())
    }
);

/// Registers a car and publishes a drive of it (stand, 40 steps at 36 km/h, stand) that
/// derives into one closed trip; answers the car's VIN once the samples are stored.
async fn publish_a_drive(app: &TestApp) -> anyhow::Result<String> {
    let vin = fleet_tests::random_vin();
    app.register_vehicle(&vin).await?;
    let base = Utc::now();
    let at = |secs: i64| (base + chrono::Duration::seconds(secs)).to_rfc3339();
    let mut batch = Vec::new();
    for i in 0..2 {
        batch.push(json!({"ts": at(i * 30), "lat": 30.0, "lon": 122.1, "speed_kmh": 0.0, "soc_pct": 80.0}));
    }
    for i in 0..40 {
        batch.push(json!({"ts": at(60 + i * 11), "lat": 30.0 + i as f64 * 0.001, "lon": 122.1, "speed_kmh": 36.0, "soc_pct": 80.0 - i as f64 * 0.1}));
    }
    for i in 0..10 {
        batch.push(
            json!({"ts": at(60 + 40 * 11 + i * 30), "lat": 30.039, "lon": 122.1, "speed_kmh": 0.0, "soc_pct": 76.1}),
        );
    }
    Publisher::connect().await?.json(&vin, &Value::Array(batch)).await?;
    app.wait_for_samples(&vin, 52).await?;
    Ok(vin)
}

/// The car's derived trips, as the API lists them.
async fn trips_of(app: &TestApp, token: &str, vin: &str) -> anyhow::Result<Vec<Value>> {
    let (from, to) = (Utc::now() - chrono::Duration::hours(1), Utc::now() + chrono::Duration::hours(1));
    let path =
        format!("/api/v1/trips?vin={vin}&from={}&to={}", urlencode(&from.to_rfc3339()), urlencode(&to.to_rfc3339()));
    let (status, v) = get(app, token, &path).await?;
    anyhow::ensure!(status == 200, "trips of {vin}: {status} {v}");
    Ok(v["trips"].as_array().cloned().unwrap_or_default())
}

/// Milliseconds trip derivation has given way to ingest, from `/metrics` (0 before it first did).
/// The metrics recorder is the process's: these figures are this test's own because
/// `tests/run` runs every test in a process of its own (cargo-nextest); under `cargo test`
/// the other test's waits would add to them.
async fn yielded_ms(app: &TestApp) -> anyhow::Result<u64> {
    let text = app.http.get(app.url("/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("fleet_stats_yielded_milliseconds_total "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap_or(0.0) as u64))
}

/// While ingest holds a backlog (here: the count of messages in hand held up by the test, as
/// a burst holds it), derivation waits; once the backlog is gone it derives what it waited with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_derivation_gives_way_while_ingest_holds_a_backlog() {
    let app = TestApp::spawn_with(fleet_tests::Db::Sqlite, quick).await;
    let r: anyhow::Result<()> = async {
        let admin = app.admin_token().await;
        let in_hand = app.bus().ingest_in_hand();
        in_hand.fetch_add(fleet_stats::YIELD_IN_HAND, std::sync::atomic::Ordering::Relaxed);
        let vin = publish_a_drive(&app).await?;
        app.wait_until("derivation giving way for half a second", || async { Ok(yielded_ms(&app).await? >= 500) })
            .await?;
        assert!(trips_of(&app, &admin, &vin).await?.is_empty(), "derived while ingest held a backlog");
        in_hand.fetch_sub(fleet_stats::YIELD_IN_HAND, std::sync::atomic::Ordering::Relaxed);
        app.wait_until("the trip derived once the backlog is gone", || async {
            Ok(trips_of(&app, &admin, &vin).await?.len() == 1)
        })
        .await
    }
    .await;
    r.unwrap();
}

/// Under a backlog that does not end, each pass gives way for at most its allowance and then
/// derives anyway: statistics are late, never stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_derivation_under_a_lasting_backlog_goes_on_after_its_allowance() {
    let app = TestApp::spawn_with(fleet_tests::Db::Sqlite, |s| {
        quick(s);
        s.stats.max_yield_per_pass = Duration::from_millis(300);
    })
    .await;
    let r: anyhow::Result<()> = async {
        let admin = app.admin_token().await;
        app.bus().ingest_in_hand().fetch_add(fleet_stats::YIELD_IN_HAND, std::sync::atomic::Ordering::Relaxed);
        let vin = publish_a_drive(&app).await?;
        app.wait_until("the trip derived despite the backlog", || async {
            Ok(trips_of(&app, &admin, &vin).await?.len() == 1)
        })
        .await?;
        assert!(yielded_ms(&app).await? >= 300, "derivation gave way first");
        Ok(())
    }
    .await;
    r.unwrap();
}
