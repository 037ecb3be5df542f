//! Fleet administration over HTTP (issue 21, first part): editing units, vehicles, drivers and
//! users with every refusal, retiring them (a retired user cannot log in, a retired car or
//! driver is never dispatched), the vehicle file with a car in the workshop, service records
//! and reminders.

use std::time::Duration;

use fleet_tests::{Publisher, Settings, both_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::orders::{feed, get, order_body, patch, post, world};

fn fast(s: &mut Settings) {
    s.dispatch.batch_interval = Duration::from_millis(150);
}

/// The field a 422 names.
fn field_of(v: &Value) -> String {
    v["error"]["message"].as_str().unwrap_or_default().split(':').next().unwrap_or_default().to_owned()
}

both_with!(edits_change_what_they_name_and_refuse_the_rest_by_field, fast, |app: TestApp| async move {
    let w = world(&app, 1).await?;
    let (vin, driver_id, _) = &w.cars[0];
    let car = format!("/api/v1/vehicles/{vin}");

    // A unit: budget and contact; the id stays.
    let (s, u) = patch(
        &app,
        &w.admin,
        "/api/v1/units/u1",
        json!({"monthly_energy_budget_kwh": 1234.0, "contact_email": "u1@zs.example"}),
    )
    .await?;
    assert_eq!(s, 200, "{u}");
    assert_eq!((u["monthly_energy_budget_kwh"].as_f64(), u["name"].as_str()), (Some(1234.0), Some("市委办公室")));
    let (_, again) = get(&app, &w.admin, "/api/v1/units/u1").await?;
    assert_eq!(again["contact_email"], "u1@zs.example");
    for (body, field) in [
        (json!({"id": "u7"}), "id"),
        (json!({"colour": "red"}), "colour"),
        (json!({"monthly_energy_budget_kwh": -1.0}), "monthly_energy_budget_kwh"),
        (json!({"contact_email": "nobody"}), "contact_email"),
        (json!({"name": ""}), "name"),
    ] {
        let (s, v) = patch(&app, &w.admin, "/api/v1/units/u1", body.clone()).await?;
        assert_eq!((s, field_of(&v)), (StatusCode::UNPROCESSABLE_ENTITY, field.to_owned()), "{body}: {v}");
    }
    let (s, _) = patch(&app, &w.admin, "/api/v1/units/u1", json!([1])).await?;
    assert_eq!(s, 400);
    let (s, _) = patch(&app, &w.admin, "/api/v1/units/u1", json!({})).await?;
    assert_eq!(s, 400);
    let (s, _) = patch(&app, &w.admin, "/api/v1/units/nope", json!({"name": "x"})).await?;
    assert_eq!(s, 404);
    let (s, _) = patch(&app, &w.dispatcher, "/api/v1/units/u1", json!({"name": "x"})).await?;
    assert_eq!(s, 403);
    let (s, _) = patch(&app, &w.auditor, "/api/v1/units/u1", json!({"name": "x"})).await?;
    assert_eq!(s, 403);
    let (_, unchanged) = get(&app, &w.admin, "/api/v1/units/u1").await?;
    assert_eq!(unchanged["monthly_energy_budget_kwh"].as_f64(), Some(1234.0), "a refused edit stores nothing");

    // A vehicle: moved to a unit, its file set; a null clears; bad values refused by name.
    let file = json!({"unit_id": "u2", "insurance_until": "2027-03-31", "maintenance_every_km": 10000.0,
        "maintenance_every_months": 12, "last_maintenance_on": "2026-06-01", "terminal_phone": "013912345678"});
    let (s, v) = patch(&app, &w.admin, &car, file).await?;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["unit_id"].as_str(), v["insurance_until"].as_str(), v["maintenance_every_months"].as_i64()),
        (Some("u2"), Some("2027-03-31"), Some(12))
    );
    assert_eq!((v["terminal_phone"].as_str(), v["plate"].as_str()), (Some("13912345678"), Some("浙L·D70000")));
    let (_, v) = patch(&app, &w.admin, &car, json!({"insurance_until": null})).await?;
    assert!(v["insurance_until"].is_null() && v["maintenance_every_km"].as_f64() == Some(10_000.0), "{v}");
    for (body, field, status) in [
        (json!({"unit_id": "no-such-unit"}), "unit_id", 422),
        (json!({"seats": 0}), "seats", 422),
        (json!({"maintenance_every_months": 0}), "maintenance_every_months", 422),
        (json!({"plate": "浙"}), "plate", 422),
        (json!({"retired": true}), "retired", 422),
        (json!({"vin": "LSJA24U66NS000001"}), "vin", 422),
        (json!({"inspection_due": "next year"}), "body", 422),
    ] {
        let (s, v) = patch(&app, &w.admin, &car, body.clone()).await?;
        assert_eq!((s.as_u16(), field_of(&v)), (status, field.to_owned()), "{body}: {v}");
    }
    // A plate another car has: 409.
    let other = fleet_tests::random_vin();
    app.register_vehicle(&other).await?;
    let (_, theirs) = get(&app, &w.admin, &format!("/api/v1/vehicles/{other}")).await?;
    let (s, _) = patch(&app, &w.admin, &car, json!({"plate": theirs["plate"]})).await?;
    assert_eq!(s, 409);

    // A driver changes cars.
    let (s, d) = patch(
        &app,
        &w.admin,
        &format!("/api/v1/drivers/{driver_id}"),
        json!({"vehicle_vin": other, "phone": "13900000000"}),
    )
    .await?;
    assert_eq!((s.as_u16(), d["vehicle_vin"].as_str()), (200, Some(other.as_str())), "{d}");
    let (s, v) =
        patch(&app, &w.admin, &format!("/api/v1/drivers/{driver_id}"), json!({"vehicle_vin": "LSJA24U66NS000009"}))
            .await?;
    assert_eq!((s.as_u16(), field_of(&v)), (422, "vehicle_vin".to_owned()), "{v}");
    Ok(())
});

both_with!(a_retired_user_cannot_log_in_and_an_edited_one_starts_again, fast, |app: TestApp| async move {
    let w = world(&app, 0).await?;
    let (_, users) = get(&app, &w.admin, "/api/v1/users").await?;
    let id_of =
        |name: &str| users["users"].as_array().unwrap().iter().find(|u| u["username"] == name).unwrap()["id"].clone();
    let (disp, unit1, admin_id) = (id_of("disp"), id_of("unit1"), id_of("admin"));

    // A role change ends the user's sessions; they log in again under the new role.
    let (s, u) = patch(&app, &w.admin, &format!("/api/v1/users/{unit1}"), json!({"unit_id": "u2"})).await?;
    assert_eq!((s.as_u16(), u["unit_id"].as_str()), (200, Some("u2")), "{u}");
    let (s, _) = get(&app, &w.unit1, "/api/v1/me").await?;
    assert_eq!(s, 401, "the old session ended");
    let fresh = app.login("unit1", "unit1-pass").await?;
    let (_, me) = get(&app, &fresh, "/api/v1/me").await?;
    assert_eq!(me["unit_id"], "u2");
    // A unit user needs a unit; an unknown driver is named.
    let (s, v) = patch(&app, &w.admin, &format!("/api/v1/users/{unit1}"), json!({"unit_id": null})).await?;
    assert_eq!((s.as_u16(), field_of(&v)), (422, "unit_id".to_owned()), "{v}");
    let (s, v) =
        patch(&app, &w.admin, &format!("/api/v1/users/{disp}"), json!({"role": "driver", "driver_id": "ghost"}))
            .await?;
    assert_eq!((s.as_u16(), field_of(&v)), (422, "driver_id".to_owned()), "{v}");
    let (s, v) = patch(&app, &w.admin, &format!("/api/v1/users/{disp}"), json!({"username": "someone"})).await?;
    assert_eq!((s.as_u16(), field_of(&v)), (422, "username".to_owned()), "{v}");

    // Retired: the token dies at once, the password no longer opens, the list still names them.
    let (s, u) = post(&app, &w.admin, &format!("/api/v1/users/{disp}/retire"), json!({})).await?;
    assert_eq!((s.as_u16(), u["retired"].as_bool()), (200, Some(true)), "{u}");
    let (s, _) = get(&app, &w.dispatcher, "/api/v1/orders").await?;
    assert_eq!(s, 401);
    let r = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "disp", "password": "disp-pass"}))
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    let (_, users) = get(&app, &w.admin, "/api/v1/users").await?;
    assert!(users["users"].as_array().unwrap().iter().any(|u| u["username"] == "disp" && u["retired"] == true));
    // Retiring again changes nothing; an admin cannot retire themselves or drop their own role.
    let (s, _) = post(&app, &w.admin, &format!("/api/v1/users/{disp}/retire"), json!({})).await?;
    assert_eq!(s, 200);
    let (s, _) = post(&app, &w.admin, &format!("/api/v1/users/{admin_id}/retire"), json!({})).await?;
    assert_eq!(s, 409);
    let (s, _) = patch(&app, &w.admin, &format!("/api/v1/users/{admin_id}"), json!({"role": "auditor"})).await?;
    assert_eq!(s, 409);
    let (s, _) = post(&app, &w.admin, "/api/v1/users/999999/retire", json!({})).await?;
    assert_eq!(s, 404);
    let (s, _) = post(&app, &w.auditor, &format!("/api/v1/users/{unit1}/retire"), json!({})).await?;
    assert_eq!(s, 403);
    Ok(())
});

both_with!(cars_in_the_workshop_or_retired_and_retired_drivers_are_never_dispatched, fast, |app: TestApp| async move {
    let w = world(&app, 3).await?;
    let mut p = Publisher::connect().await?;
    let (shop, gone, driverless) = (&w.cars[0], &w.cars[1], &w.cars[2]);
    // All three near the pickup and charged; the nearest goes to the workshop.
    feed(&app, &mut p, &shop.0, 30.0124, 122.1035, 90.0).await?;
    feed(&app, &mut p, &gone.0, 30.0130, 122.1040, 90.0).await?;
    feed(&app, &mut p, &driverless.0, 30.0140, 122.1050, 90.0).await?;
    let (s, v) =
        patch(&app, &w.admin, &format!("/api/v1/vehicles/{}", shop.0), json!({"in_maintenance": true})).await?;
    assert_eq!((s.as_u16(), v["in_maintenance"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = post(&app, &w.admin, &format!("/api/v1/vehicles/{}/retire", gone.0), json!({})).await?;
    assert_eq!((s.as_u16(), v["retired"].as_bool()), (200, Some(true)), "{v}");
    let (s, _) = post(&app, &w.admin, &format!("/api/v1/drivers/{}/retire", driverless.1), json!({})).await?;
    assert_eq!(s, 200);
    let (_, states) = get(&app, &w.dispatcher, "/api/v1/vehicles/states").await?;
    let status = |vin: &str| {
        states["vehicles"].as_array().unwrap().iter().find(|c| c["vin"] == vin).map(|c| c["status"].clone())
    };
    assert_eq!(status(&shop.0), Some(json!("maintenance")), "{states}");

    let (s, o) = post(&app, &w.unit2, "/api/v1/orders", order_body("u2", 2)).await?;
    assert_eq!(s, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    // Several batches pass and the order still waits.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        let (_, o) = get(&app, &w.admin, &format!("/api/v1/orders/{id}")).await?;
        assert_eq!(o["status"], "approved", "no car may take it: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // By hand neither: the workshop's car and the retired one are refused.
    for vin in [&shop.0, &gone.0] {
        let (s, v) = post(&app, &w.dispatcher, &format!("/api/v1/orders/{id}/assign"), json!({"vin": vin})).await?;
        assert_eq!(s, 409, "{v}");
    }
    // Out of the workshop, the car takes the order.
    let (s, _) =
        patch(&app, &w.admin, &format!("/api/v1/vehicles/{}", shop.0), json!({"in_maintenance": false})).await?;
    assert_eq!(s, 200);
    let deadline = tokio::time::Instant::now() + fleet_tests::DEFAULT_DEADLINE;
    let o = loop {
        let (_, o) = get(&app, &w.admin, &format!("/api/v1/orders/{id}")).await?;
        if o["status"] == "assigned" || tokio::time::Instant::now() > deadline {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((o["status"].as_str(), o["vin"].as_str()), (Some("assigned"), Some(shop.0.as_str())), "{o}");
    // A car holding an order cannot be retired.
    let (s, v) = post(&app, &w.admin, &format!("/api/v1/vehicles/{}/retire", shop.0), json!({})).await?;
    assert_eq!(s, 409, "{v}");
    // Retired records still show.
    let (_, gone_car) = get(&app, &w.admin, &format!("/api/v1/vehicles/{}", gone.0)).await?;
    assert_eq!(gone_car["retired"], true);
    let (_, d) = get(&app, &w.admin, &format!("/api/v1/drivers/{}", driverless.1)).await?;
    assert_eq!(d["retired"], true);
    Ok(())
});

both_with!(services_move_the_file_on_and_reminders_follow_the_odometer, fast, |app: TestApp| async move {
    let w = world(&app, 2).await?;
    let mut p = Publisher::connect().await?;
    let (car, quiet) = (&w.cars[0].0, &w.cars[1].0);
    let today = chrono::Utc::now().with_timezone(&fleet_domain::trips::china_offset()).date_naive();
    let day = |d: i64| (today + chrono::TimeDelta::days(d)).format("%Y-%m-%d").to_string();
    let file = json!({"insurance_until": day(10), "inspection_due": day(-1), "maintenance_every_km": 10000.0,
        "last_maintenance_km": 20000.0});
    let (s, v) = patch(&app, &w.admin, &format!("/api/v1/vehicles/{car}"), file).await?;
    assert_eq!(s, 200, "{v}");
    let (s, _) =
        patch(&app, &w.admin, &format!("/api/v1/vehicles/{quiet}"), json!({"insurance_until": day(31)})).await?;
    assert_eq!(s, 200);
    // The odometer 400 km short of the service.
    p.json(car, &json!({"ts": chrono::Utc::now().to_rfc3339(), "lat": 30.0, "lon": 122.1, "odometer_km": 29600.0}))
        .await?;
    app.wait_for_state(car, "the odometer read", |s| s.odometer_km == Some(29_600.0)).await?;
    let (_, r) = get(&app, &w.dispatcher, "/api/v1/reminders").await?;
    let list = r["reminders"].as_array().unwrap();
    let kinds: Vec<(&str, &str, bool)> = list
        .iter()
        .map(|r| (r["vin"].as_str().unwrap(), r["kind"].as_str().unwrap(), r["overdue"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (car.as_str(), "inspection", true),
            (car.as_str(), "insurance", false),
            (car.as_str(), "maintenance", false)
        ],
        "overdue first, then by date; nothing for the car 31 days out: {r}"
    );
    assert_eq!(list[2]["due_km"].as_f64(), Some(30_000.0));

    // A service at 29,700 km: the file moves on, the reminder goes.
    let svc = json!({"on": day(0), "odometer_km": 29700.0, "note": "一级保养", "cost_yuan": 680.0});
    let (s, rec) = post(&app, &w.admin, &format!("/api/v1/vehicles/{car}/maintenance"), svc).await?;
    assert_eq!(s, 201, "{rec}");
    let (_, v) = get(&app, &w.admin, &format!("/api/v1/vehicles/{car}")).await?;
    assert_eq!(
        (v["last_maintenance_on"].as_str(), v["last_maintenance_km"].as_f64()),
        (Some(day(0).as_str()), Some(29_700.0))
    );
    let (_, r) = get(&app, &w.dispatcher, "/api/v1/reminders").await?;
    assert!(!r["reminders"].as_array().unwrap().iter().any(|r| r["kind"] == "maintenance"), "{r}");
    // An older service is kept but does not move the file back.
    let old = json!({"on": day(-400), "odometer_km": 5000.0});
    let (s, _) = post(&app, &w.admin, &format!("/api/v1/vehicles/{car}/maintenance"), old).await?;
    assert_eq!(s, 201);
    let (_, v) = get(&app, &w.admin, &format!("/api/v1/vehicles/{car}")).await?;
    assert_eq!(v["last_maintenance_km"].as_f64(), Some(29_700.0));
    let (_, recs) = get(&app, &w.auditor, &format!("/api/v1/vehicles/{car}/maintenance")).await?;
    let ons: Vec<&str> = recs["records"].as_array().unwrap().iter().map(|r| r["on"].as_str().unwrap()).collect();
    assert_eq!(ons, vec![day(0).as_str(), day(-400).as_str()]);
    assert_eq!(recs["records"][0]["cost_yuan"].as_f64(), Some(680.0));

    // Bad records: named, nothing stored.
    for (body, field) in [
        (json!({"on": day(5)}), "on"),
        (json!({"on": day(0), "odometer_km": -1.0}), "odometer_km"),
        (json!({"on": day(0), "cost_yuan": -5.0}), "cost_yuan"),
        (json!({"on": day(0), "note": "x".repeat(501)}), "note"),
    ] {
        let (s, v) = post(&app, &w.admin, &format!("/api/v1/vehicles/{car}/maintenance"), body.clone()).await?;
        assert_eq!((s.as_u16(), field_of(&v)), (422, field.to_owned()), "{body}: {v}");
    }
    let (s, v) = post(&app, &w.admin, &format!("/api/v1/vehicles/{car}/maintenance"), json!({"on": "soon"})).await?;
    assert_eq!((s.as_u16(), field_of(&v)), (422, "body".to_owned()), "{v}");
    let (s, _) = post(&app, &w.admin, "/api/v1/vehicles/LSJA24U66NS000009/maintenance", json!({"on": day(0)})).await?;
    assert_eq!(s, 404);
    let (s, _) =
        post(&app, &w.dispatcher, &format!("/api/v1/vehicles/{car}/maintenance"), json!({"on": day(0)})).await?;
    assert_eq!(s, 403);
    let (_, recs) = get(&app, &w.admin, &format!("/api/v1/vehicles/{car}/maintenance")).await?;
    assert_eq!(recs["records"].as_array().unwrap().len(), 2);
    // A unit user sees only its own cars' reminders (these cars are in the pool: none).
    let (_, r) = get(&app, &w.unit1, "/api/v1/reminders").await?;
    assert_eq!(r["reminders"], json!([]));
    Ok(())
});
