//! Derived trips and energy budgets (issue 7): a hand-made drive over MQTT becomes a trip
//! with known distance and energy, tied to the order it served; the unit's budget counts it,
//! warns, and refuses new orders once spent unless an admin overrides.

use std::time::Duration;

use chrono::Utc;
use fleet_tests::{Publisher, Settings, both_with};
use serde_json::{Value, json};

use crate::orders::{get, order_body, post, world};

fn quick(s: &mut Settings) {
    s.stats.interval = Duration::from_millis(200);
    // Dispatch's batches would race the manual assignment below.
    s.dispatch.batch_interval = Duration::from_secs(3600);
}

both_with!(a_served_drive_becomes_a_trip_and_spends_the_units_budget, quick, |app: TestApp| async move {
    let w = world(&app, 1).await?;
    let (vin, _, driver) = w.cars[0].clone();
    let (status, _) = post(&app, &w.admin, "/api/v1/units", json!({"id": "u3", "name": "市档案馆", "monthly_energy_budget_kwh": 2.5, "auto_approve": true})).await?;
    assert_eq!(status, 201);
    let (_, o) = post(&app, &w.admin, "/api/v1/orders", order_body("u3", 1)).await?;
    let id = o["id"].as_str().unwrap().to_owned();
    for (token, path, body) in [
        (&w.dispatcher, "assign", json!({"vin": vin})),
        (&driver, "accept", json!({})),
        (&driver, "pickup", json!({})),
    ] {
        let (status, v) = post(&app, token, &format!("/api/v1/orders/{id}/{path}"), body).await?;
        assert_eq!(status, 200, "{path}: {v}");
    }
    // Stand, drive north 39 steps of 111 m at 36 km/h losing 0.1 % a step, stand again.
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
    p.json(&vin, &Value::Array(batch)).await?;
    app.wait_for_samples(&vin, 52).await?;

    let path = format!("/api/v1/trips?vin={vin}&from={}&to={}", urlencode(&(base - chrono::Duration::hours(1)).to_rfc3339()), urlencode(&(base + chrono::Duration::hours(1)).to_rfc3339()));
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
    assert_eq!((t["order_id"].as_str(), t["unit_id"].as_str(), t["start_odometer_km"].as_f64(), t["end_odometer_km"].as_f64()), (Some(id.as_str()), Some("u3"), Some(1000.0), Some(1004.329)));

    let (_, budget) = get(&app, &w.admin, "/api/v1/units/u3/budget").await?;
    assert!((budget["used_kwh"].as_f64().unwrap() - kwh).abs() < 1e-6, "{budget}");
    assert_eq!((budget["budget_kwh"].as_f64(), budget["warning"].as_bool()), (Some(2.5), Some(true)));
    assert!(budget["share"].as_f64().unwrap() > 1.0);
    let (_, other) = get(&app, &w.admin, "/api/v1/units/u2/budget").await?;
    assert_eq!((other["used_kwh"].as_f64(), other["warning"].as_bool()), (Some(0.0), Some(false)));
    assert_eq!(get(&app, &w.unit1, "/api/v1/units/u3/budget").await?.0, 404, "another unit's budget");
    assert_eq!(get(&app, &w.admin, "/api/v1/units/u3/budget?month=2026-13").await?.0, 400);

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
