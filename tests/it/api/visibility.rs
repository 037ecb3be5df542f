//! Who sees what: a unit's users its own cars, a driver their own car, an auditor everything
//! without changing anything.

use fleet_tests::{both, random_vin};
use reqwest::StatusCode;
use serde_json::json;

use super::{call, create_unit, create_user, create_vehicle, error_code, get, post, vehicle};

both!(a_unit_user_sees_only_its_own_vehicles, |app: TestApp| async move {
    let admin = app.admin_token().await;
    create_unit(&app, &admin, "u1").await?;
    create_unit(&app, &admin, "u2").await?;
    let (mine, theirs) = (random_vin(), random_vin());
    create_vehicle(&app, &admin, &mine, "浙LD30001", Some("u1")).await?;
    create_vehicle(&app, &admin, &theirs, "浙LD30002", Some("u2")).await?;
    create_user(
        &app,
        &admin,
        json!({"username": "unit01", "password": "pass-unit01", "role": "unit", "unit_id": "u1"}),
    )
    .await?;
    let unit = app.login("unit01", "pass-unit01").await?;

    let (s, list) = get(&app, "/api/v1/vehicles", &unit).await?;
    assert_eq!(s, StatusCode::OK);
    let vins: Vec<&str> = list["vehicles"].as_array().unwrap().iter().filter_map(|v| v["vin"].as_str()).collect();
    assert_eq!(vins, vec![mine.as_str()]);
    assert_eq!(get(&app, &format!("/api/v1/vehicles/{mine}"), &unit).await?.0, StatusCode::OK);
    let (s, b) = get(&app, &format!("/api/v1/vehicles/{theirs}"), &unit).await?;
    assert_eq!(s, StatusCode::NOT_FOUND, "another unit's car is outside the view");
    error_code(&b, "not_found");
    assert_eq!(get(&app, &format!("/api/v1/vehicles/{theirs}/track"), &unit).await?.0, StatusCode::NOT_FOUND);
    let (_, states) = get(&app, "/api/v1/vehicles/states", &unit).await?;
    assert_eq!(states["vehicles"].as_array().map(Vec::len), Some(1));

    let (s, units) = get(&app, "/api/v1/units", &unit).await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(units["units"].as_array().map(Vec::len), Some(1));
    assert_eq!(get(&app, "/api/v1/units/u2", &unit).await?.0, StatusCode::NOT_FOUND);
    let (s, b) = post(&app, "/api/v1/units", &unit, json!({"name": "x", "monthly_energy_budget_kwh": 1.0})).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    error_code(&b, "forbidden");
    assert_eq!(get(&app, "/api/v1/users", &unit).await?.0, StatusCode::FORBIDDEN);
    Ok(())
});

both!(a_driver_sees_only_their_own_car, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let (own, other) = (random_vin(), random_vin());
    create_vehicle(&app, &admin, &own, "浙LD40001", None).await?;
    create_vehicle(&app, &admin, &other, "浙LD40002", None).await?;
    let (s, b) = post(
        &app,
        "/api/v1/drivers",
        &admin,
        json!({"id": "d1", "name": "陈师傅", "phone": "13900000001", "vehicle_vin": own}),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = post(
        &app,
        "/api/v1/drivers",
        &admin,
        json!({"id": "d2", "name": "周师傅", "phone": "13900000002", "vehicle_vin": other}),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    create_user(
        &app,
        &admin,
        json!({"username": "driver01", "password": "pass-driver01", "role": "driver", "driver_id": "d1"}),
    )
    .await?;
    let driver = app.login("driver01", "pass-driver01").await?;

    let (s, list) = get(&app, "/api/v1/vehicles", &driver).await?;
    assert_eq!(s, StatusCode::OK);
    let vins: Vec<&str> = list["vehicles"].as_array().unwrap().iter().filter_map(|v| v["vin"].as_str()).collect();
    assert_eq!(vins, vec![own.as_str()]);
    assert_eq!(get(&app, &format!("/api/v1/vehicles/{own}"), &driver).await?.0, StatusCode::OK);
    assert_eq!(get(&app, &format!("/api/v1/vehicles/{other}"), &driver).await?.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/api/v1/drivers/d2", &driver).await?.0, StatusCode::NOT_FOUND, "another driver");
    let (s, me) = get(&app, "/api/v1/drivers", &driver).await?;
    assert_eq!((s, me["drivers"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    assert_eq!(get(&app, "/api/v1/units", &driver).await?.0, StatusCode::FORBIDDEN);
    Ok(())
});

both!(an_auditor_reads_everything_and_changes_nothing, |app: TestApp| async move {
    let admin = app.admin_token().await;
    create_user(&app, &admin, json!({"username": "audit", "password": "pass-audit", "role": "auditor"})).await?;
    let auditor = app.login("audit", "pass-audit").await?;
    assert_eq!(get(&app, "/api/v1/units", &auditor).await?.0, StatusCode::OK);
    assert_eq!(get(&app, "/api/v1/vehicles", &auditor).await?.0, StatusCode::OK);
    assert_eq!(get(&app, "/api/v1/dead-letters", &auditor).await?.0, StatusCode::OK);
    let (s, b) = post(&app, "/api/v1/units", &auditor, json!({"name": "x", "monthly_energy_budget_kwh": 1.0})).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    error_code(&b, "forbidden");
    let (s, _) = post(&app, "/api/v1/vehicles", &auditor, vehicle(&random_vin(), "浙LD50001", None)).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&app, reqwest::Method::POST, "/api/v1/auth/logout", Some(&auditor), None).await?;
    assert!(s.is_success(), "an auditor may log out: {s}");
    Ok(())
});
