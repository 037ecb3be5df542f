//! Costs (issue 21): the time-of-use tariff with its refusals, costs entered and imported from
//! CSV (good rows kept, bad ones named by line), and a charge costed by the periods it spans
//! in the monthly statistics beside the other costs, per car and per unit.

use std::time::Duration;

use fleet_tests::{Publisher, Settings, TestApp, both_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::orders::{get, patch, post, put, world};

fn quick(s: &mut Settings) {
    s.stats.interval = Duration::from_millis(200);
    s.dispatch.batch_interval = Duration::from_secs(3600);
}

async fn upload(app: &TestApp, token: &str, mime: &str, csv: &str) -> anyhow::Result<(StatusCode, Value)> {
    let r = app
        .http
        .post(app.url("/api/v1/costs/import"))
        .bearer_auth(token)
        .header("content-type", mime)
        .body(csv.to_owned())
        .send()
        .await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

fn period(from: &str, to: &str, price: f64) -> Value {
    json!({"from": from, "to": to, "yuan_per_kwh": price})
}

both_with!(the_tariff_tiles_the_day_and_costs_come_in_one_by_one_or_by_file, quick, |app: TestApp| async move {
    let w = world(&app, 2).await?;
    let (car, other) = (w.cars[0].0.clone(), w.cars[1].0.clone());

    // No tariff set: one flat price all day.
    let (_, t) = get(&app, &w.dispatcher, "/api/v1/tariff").await?;
    assert_eq!(t, json!({"periods": [period("00:00", "24:00", 0.8)]}));
    // Periods in any order come back in day order.
    let tou = json!({"periods": [period("08:00", "22:00", 1.1), period("22:00", "24:00", 0.35), period("00:00", "08:00", 0.35)]});
    let (s, t) = put(&app, &w.admin, "/api/v1/tariff", tou).await?;
    assert_eq!(s, 200, "{t}");
    let day_order = json!({"periods": [period("00:00", "08:00", 0.35), period("08:00", "22:00", 1.1), period("22:00", "24:00", 0.35)]});
    assert_eq!(t, day_order);
    for (bad, says) in [
        (json!({"periods": [period("00:00", "08:00", 0.3), period("09:00", "24:00", 1.0)]}), "gap from 08:00 to 09:00"),
        (json!({"periods": [period("00:00", "10:00", 0.3), period("08:00", "24:00", 1.0)]}), "overlap"),
        (json!({"periods": [period("00:00", "23:00", 0.3)]}), "gap from 23:00 to 24:00"),
        (json!({"periods": [period("00:00", "24:00", -0.1)]}), "yuan_per_kwh"),
        (json!({"periods": [period("00:00", "24:60", 1.0)]}), "HH:MM"),
        (json!({"periods": []}), "periods"),
    ] {
        let (s, v) = put(&app, &w.admin, "/api/v1/tariff", bad.clone()).await?;
        assert_eq!(s, 422, "{bad}: {v}");
        assert!(v["error"]["message"].as_str().unwrap_or_default().contains(says), "{bad}: {v}");
    }
    let (s, _) = put(&app, &w.dispatcher, "/api/v1/tariff", day_order.clone()).await?;
    assert_eq!(s, 403);
    let (_, t) = get(&app, &w.auditor, "/api/v1/tariff").await?;
    assert_eq!(t, day_order, "refused tariffs left the stored one as it was");

    // One cost, and the refusals by field.
    let (s, c) = post(
        &app,
        &w.admin,
        "/api/v1/costs",
        json!({"vin": car, "on": "2026-11-03", "kind": "toll", "amount_yuan": 35.0, "note": "舟山跨海大桥"}),
    )
    .await?;
    assert_eq!((s.as_u16(), c["kind"].as_str(), c["amount_yuan"].as_f64()), (201, Some("toll"), Some(35.0)), "{c}");
    for (bad, field) in [
        (json!({"vin": "LSJA24U66NS000009", "on": "2026-11-03", "kind": "toll", "amount_yuan": 1.0}), "vin"),
        (json!({"vin": car, "on": "2099-01-01", "kind": "toll", "amount_yuan": 1.0}), "on"),
        (json!({"vin": car, "on": "2026-11-03", "kind": "toll", "amount_yuan": -1.0}), "amount_yuan"),
        (json!({"vin": car, "on": "2026-11-03", "kind": "fuel", "amount_yuan": 1.0}), "body"),
    ] {
        let (s, v) = post(&app, &w.admin, "/api/v1/costs", bad.clone()).await?;
        let named = v["error"]["message"].as_str().unwrap_or_default().split(':').next().unwrap_or_default().to_owned();
        assert_eq!((s.as_u16(), named.as_str()), (422, field), "{bad}: {v}");
    }
    let (s, _) = post(
        &app,
        &w.dispatcher,
        "/api/v1/costs",
        json!({"vin": car, "on": "2026-11-03", "kind": "toll", "amount_yuan": 1.0}),
    )
    .await?;
    assert_eq!(s, 403);

    // A file: good rows kept, each bad one named by its line (the header is line 1).
    let csv = format!(
        "vin,on,kind,amount_yuan,note\n\
         {car},2026-11-10,parking,12.5,临城停车场\n\
         {car},2026-11-11,fuel,3,\n\
         LSJA24U66NS000009,2026-11-11,toll,3,\n\
         {car},11/12/2026,toll,3,\n\
         \n\
         {other},2026-11-12,repair,880,\"更换雨刮, 补胎\"\n\
         {car},2026-11-13,toll,abc,\n\
         {car},2026-11-13,toll\n"
    );
    let (s, r) = upload(&app, &w.admin, "text/csv; charset=utf-8", &csv).await?;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["created"].as_array().map(Vec::len), Some(2), "{r}");
    let lines: Vec<i64> = r["errors"].as_array().unwrap().iter().map(|e| e["line"].as_i64().unwrap()).collect();
    assert_eq!(lines, vec![3, 4, 5, 8, 9], "{r}");
    let messages: Vec<&str> = r["errors"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    for (m, says) in messages.iter().zip(["kind", "vin", "on", "amount_yuan", "fields"]) {
        assert!(m.contains(says), "{m:?} should name {says}");
    }
    let (s, _) = upload(&app, &w.admin, "text/csv", "vin,day,kind,amount_yuan,note\n").await?;
    assert_eq!(s, 400, "a wrong header refuses the file");
    let (s, _) = upload(&app, &w.admin, "application/json", &csv).await?;
    assert_eq!(s, 400);
    let (s, _) = upload(&app, &w.dispatcher, "text/csv", &csv).await?;
    assert_eq!(s, 403);

    // Listed by day; a unit sees only its own cars' costs.
    let (_, list) = get(&app, &w.auditor, "/api/v1/costs?month=2026-11").await?;
    let days: Vec<(&str, &str)> = list["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["on"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(days, vec![("2026-11-03", "toll"), ("2026-11-10", "parking"), ("2026-11-12", "repair")]);
    let (_, one) = get(&app, &w.admin, &format!("/api/v1/costs?month=2026-11&vin={other}")).await?;
    assert_eq!(one["costs"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["costs"][0]["note"], "更换雨刮, 补胎");
    let (s, _) = patch(&app, &w.admin, &format!("/api/v1/vehicles/{other}"), json!({"unit_id": "u1"})).await?;
    assert_eq!(s, 200);
    let (_, mine) = get(&app, &w.unit1, "/api/v1/costs?month=2026-11").await?;
    assert_eq!(mine["costs"].as_array().map(Vec::len), Some(1), "{mine}");
    let (s, _) = get(&app, &w.admin, "/api/v1/costs?month=2026-13").await?;
    assert_eq!(s, 400);
    Ok(())
});

both_with!(
    a_charge_is_costed_by_the_periods_it_spans_and_the_month_adds_the_other_costs,
    quick,
    |app: TestApp| async move {
        let w = world(&app, 1).await?;
        let vin = w.cars[0].0.clone();
        let (s, _) = patch(&app, &w.admin, &format!("/api/v1/vehicles/{vin}"), json!({"unit_id": "u1"})).await?;
        assert_eq!(s, 200);
        // Valley 0.3 until 08:00, 1.2 after.
        let tariff = json!({"periods": [period("00:00", "08:00", 0.3), period("08:00", "24:00", 1.2)]});
        let (s, _) = put(&app, &w.admin, "/api/v1/tariff", tariff).await?;
        assert_eq!(s, 200);

        // 07:00–09:00 Beijing time on 20 November: 20 % → 60 % evenly (71.7 kWh pack), then unplugged.
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-20T07:00:00+08:00")?.with_timezone(&chrono::Utc);
        let at = |secs: i64| (t0 + chrono::Duration::seconds(secs)).to_rfc3339();
        let mut batch: Vec<Value> = (0..=40)
        .map(|i| json!({"ts": at(i * 180), "lat": 30.0, "lon": 122.1, "speed_kmh": 0.0, "charging": true, "soc_pct": 20.0 + i as f64}))
        .collect();
        batch.push(json!({"ts": at(41 * 180), "lat": 30.0, "lon": 122.1, "speed_kmh": 0.0, "charging": false, "soc_pct": 60.0}));
        let n = batch.len() as i64;
        Publisher::connect().await?.json(&vin, &Value::Array(batch)).await?;
        app.wait_for_samples(&vin, n).await?;

        // A toll and a service the same month; a toll of December does not count.
        for (on, amount) in [("2026-11-21", 50.0), ("2026-12-01", 9.0)] {
            let (s, v) = post(
                &app,
                &w.admin,
                "/api/v1/costs",
                json!({"vin": vin, "on": on, "kind": "toll", "amount_yuan": amount}),
            )
            .await?;
            assert_eq!(s, 201, "{v}");
        }
        let (s, v) = post(
            &app,
            &w.admin,
            &format!("/api/v1/vehicles/{vin}/maintenance"),
            json!({"on": "2026-11-22", "cost_yuan": 300.0}),
        )
        .await?;
        assert_eq!(s, 201, "{v}");

        let kwh = 0.4 * 71.7;
        let want = kwh / 2.0 * 0.3 + kwh / 2.0 * 1.2;
        app.wait_until("the charge derived", || async {
            let (_, m) = get(&app, &w.admin, "/api/v1/stats/monthly?month=2026-11").await?;
            Ok(m["vehicles"][0]["charging_sessions"] == 1)
        })
        .await?;
        let (_, month) = get(&app, &w.admin, "/api/v1/stats/monthly?month=2026-11").await?;
        let car = &month["vehicles"][0];
        assert!((car["charging_kwh"].as_f64().unwrap() - kwh).abs() < 1e-6, "{car}");
        assert!((car["charging_cost_yuan"].as_f64().unwrap() - want).abs() < 1e-6, "{car}: want {want}");
        assert!((car["other_costs_yuan"].as_f64().unwrap() - 350.0).abs() < 1e-9, "{car}");
        let unit = month["units"].as_array().unwrap().iter().find(|u| u["unit_id"] == "u1").unwrap();
        assert!((unit["charging_cost_yuan"].as_f64().unwrap() - want).abs() < 1e-6, "{unit}");
        assert!((unit["other_costs_yuan"].as_f64().unwrap() - 350.0).abs() < 1e-9, "{unit}");
        let u2 = month["units"].as_array().unwrap().iter().find(|u| u["unit_id"] == "u2").unwrap();
        assert_eq!((u2["charging_cost_yuan"].as_f64(), u2["other_costs_yuan"].as_f64()), (Some(0.0), Some(0.0)));
        // The download carries the columns.
        let csv = app
            .http
            .get(app.url("/api/v1/stats/monthly?month=2026-11&format=csv&view=vehicles"))
            .bearer_auth(&w.admin)
            .send()
            .await?
            .text()
            .await?;
        let header = csv.lines().next().unwrap_or_default();
        assert!(header.contains("充电费用(元)") && header.contains("其他费用(元)"), "{header}");
        Ok(())
    }
);
