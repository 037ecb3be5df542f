//! The registry: units, vehicles, drivers and users created, listed and fetched, and what a
//! registration that cannot be made says.

use fleet_tests::{both, random_vin};
use reqwest::StatusCode;
use serde_json::json;

use super::{create_unit, create_vehicle, error_code, get, post, vehicle};

both!(registry_objects_are_created_listed_and_fetched, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let (s, unit) = post(
        &app,
        "/api/v1/units",
        &admin,
        json!({"id": "u-water", "name": "舟山市水利局", "monthly_energy_budget_kwh": 1200.0, "auto_approve": true}),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{unit}");
    assert_eq!(unit["auto_approve"], true);
    let (s, generated) =
        post(&app, "/api/v1/units", &admin, json!({"name": "舟山市交通局", "monthly_energy_budget_kwh": 900.0}))
            .await?;
    assert_eq!(s, StatusCode::CREATED, "{generated}");
    let generated_id = generated["id"].as_str().expect("a generated id").to_owned();
    let (s, units) = get(&app, "/api/v1/units", &admin).await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(units["units"].as_array().map(Vec::len), Some(2));
    let (s, one) = get(&app, &format!("/api/v1/units/{generated_id}"), &admin).await?;
    assert_eq!((s, one["name"].as_str()), (StatusCode::OK, Some("舟山市交通局")));
    assert_eq!(get(&app, "/api/v1/units/nope", &admin).await?.0, StatusCode::NOT_FOUND);

    let vin = random_vin();
    let (s, v) = post(&app, "/api/v1/vehicles", &admin, vehicle(&vin, "浙LD10001", Some("u-water"))).await?;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, list) = get(&app, "/api/v1/vehicles", &admin).await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["vehicles"][0]["vin"], vin.as_str());
    let (s, one) = get(&app, &format!("/api/v1/vehicles/{vin}"), &admin).await?;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["plate"], "浙LD10001");
    assert_eq!(one["unit_id"], "u-water");
    assert!(one["state"].is_null(), "never reported: {one}");

    let (s, d) = post(
        &app,
        "/api/v1/drivers",
        &admin,
        json!({"id": "d-wang", "name": "王师傅", "phone": "13800000001", "vehicle_vin": vin}),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let (s, d2) = post(&app, "/api/v1/drivers", &admin, json!({"name": "李师傅", "phone": "13800000002"})).await?;
    assert_eq!(s, StatusCode::CREATED, "{d2}");
    assert!(d2["id"].as_str().is_some_and(|id| !id.is_empty()));
    let (s, drivers) = get(&app, "/api/v1/drivers", &admin).await?;
    assert_eq!((s, drivers["drivers"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)));
    let (s, one) = get(&app, "/api/v1/drivers/d-wang", &admin).await?;
    assert_eq!((s, one["vehicle_vin"].as_str()), (StatusCode::OK, Some(vin.as_str())));
    let (s, b) = post(
        &app,
        "/api/v1/drivers",
        &admin,
        json!({"name": "赵师傅", "phone": "13800000003", "vehicle_vin": random_vin()}),
    )
    .await?;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_code(&b, "validation_failed").contains("vehicle_vin"));

    let (s, u) = post(
        &app,
        "/api/v1/users",
        &admin,
        json!({"username": "water01", "password": "pass-water", "role": "unit", "unit_id": "u-water"}),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert!(u.get("password").is_none() && u.get("password_hash").is_none(), "no secrets in answers: {u}");
    let (s, b) = post(
        &app,
        "/api/v1/users",
        &admin,
        json!({"username": "water01", "password": "pass-other", "role": "auditor"}),
    )
    .await?;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(error_code(&b, "conflict").contains("username"));
    let (s, b) =
        post(&app, "/api/v1/users", &admin, json!({"username": "orphan", "password": "pass-orphan", "role": "unit"}))
            .await?;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_code(&b, "validation_failed").contains("unit_id"));
    let (s, users) = get(&app, "/api/v1/users", &admin).await?;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = users["users"].as_array().unwrap().iter().filter_map(|u| u["username"].as_str()).collect();
    assert!(names.contains(&"admin") && names.contains(&"water01"), "{names:?}");
    assert_eq!(app.login("water01", "pass-water").await.map(|t| !t.is_empty()).ok(), Some(true));

    let (s, stations) = get(&app, "/api/v1/charging-stations", &admin).await?;
    assert_eq!(s, StatusCode::OK);
    assert!(stations["charging_stations"].is_array());
    Ok(())
});

both!(vehicle_registration_names_what_is_wrong, |app: TestApp| async move {
    let admin = app.admin_token().await;
    create_unit(&app, &admin, "u1").await?;
    let vin = random_vin();
    create_vehicle(&app, &admin, &vin, "浙LD20001", Some("u1")).await?;

    let (s, b) = post(&app, "/api/v1/vehicles", &admin, vehicle("NOT-A-VIN", "浙LD20002", None)).await?;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_code(&b, "validation_failed").contains("vin"), "{b}");

    let (s, b) = post(&app, "/api/v1/vehicles", &admin, vehicle(&random_vin(), "浙LD20001", None)).await?;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(error_code(&b, "conflict").contains("plate"), "{b}");

    let (s, b) = post(&app, "/api/v1/vehicles", &admin, vehicle(&vin, "浙LD20003", None)).await?;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(error_code(&b, "conflict").contains("VIN"), "{b}");

    let (s, b) =
        post(&app, "/api/v1/vehicles", &admin, vehicle(&random_vin(), "浙LD20004", Some("no-such-unit"))).await?;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_code(&b, "validation_failed").contains("unit_id"), "{b}");

    let (s, b) = post(&app, "/api/v1/vehicles", &admin, json!({"vin": random_vin(), "plate": "浙LD20005"})).await?;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "missing fields: {b}");
    error_code(&b, "validation_failed");
    Ok(())
});
