//! The HTTP API (docs/api.md) over a real socket: login and tokens, the registry, who sees
//! what, and the error shape of every refusal.

use chrono::Utc;
use fleet_domain::{Sample, SampleSource, Vin};
use fleet_ingest::decode::gbt32960;
use fleet_tests::{ADMIN_PASSWORD, TestApp, both, random_vin};
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

both!(login_answers_a_token_and_the_user, |app: TestApp| async move {
    let (s, b) = call(
        &app,
        reqwest::Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    let token = b["token"].as_str().expect("a token");
    assert!(token.len() >= 32);
    assert_eq!(b["user"]["username"], "admin");
    assert_eq!(b["user"]["role"], "admin");
    assert!(b["user"]["id"].is_i64());
    assert!(b["user"].get("unit_id").is_some_and(Value::is_null));
    let (s, me) = get(&app, "/api/v1/me", token).await?;
    assert_eq!((s, me["username"].as_str()), (StatusCode::OK, Some("admin")));
    Ok(())
});

both!(wrong_password_and_unknown_user_get_the_same_401, |app: TestApp| async move {
    let login = |u: &'static str, p: &'static str| {
        call(&app, reqwest::Method::POST, "/api/v1/auth/login", None, Some(json!({"username": u, "password": p})))
    };
    let (s1, wrong_pw) = login("admin", "not-the-password").await?;
    let (s2, no_user) = login("nobody", "whatever").await?;
    assert_eq!((s1, s2), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(error_code(&wrong_pw, "invalid_credentials"), error_code(&no_user, "invalid_credentials"));
    Ok(())
});

both!(five_failed_logins_throttle_the_next_with_retry_after, |app: TestApp| async move {
    let admin = app.admin_token().await;
    create_user(&app, &admin, json!({"username": "victim", "password": "right-pass", "role": "dispatcher"})).await?;
    for i in 0..5 {
        let (s, b) = call(
            &app,
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "victim", "password": format!("guess{i}")})),
        )
        .await?;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}: {b}");
    }
    // From the failing address even the right password waits now.
    let res = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "victim", "password": "right-pass"}))
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers().get("retry-after").expect("Retry-After").to_str()?.parse()?;
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    error_code(&res.json().await?, "too_many_attempts");
    // Other usernames are not affected.
    assert!(app.login("admin", ADMIN_PASSWORD).await.is_ok());
    // Nobody locks the owner out: from an address that has not been failing, the right
    // password goes through, and so does a password change.
    let owner = from_address([127, 0, 0, 2]);
    let res = owner
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "victim", "password": "right-pass"}))
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::OK, "the owner from a clean address");
    let token = res.json::<Value>().await?["token"].as_str().unwrap().to_owned();
    let res = owner
        .post(app.url("/api/v1/auth/password"))
        .bearer_auth(&token)
        .json(&json!({"old_password": "right-pass", "new_password": "fresh-pass-1"}))
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "the owner changes the password meanwhile");
    Ok(())
});

/// A client of its own source address on loopback (Linux answers all of 127.0.0.0/8), so a
/// test can be several clients to the login throttle.
fn from_address(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).build().expect("a client")
}

both!(one_address_spraying_many_usernames_is_stopped_and_others_are_not, |app: TestApp| async move {
    let sprayer = from_address([127, 0, 0, 3]);
    for i in 0..20 {
        let res = sprayer
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"username": format!("user{i}"), "password": "Winter2026!"}))
            .send()
            .await?;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let res = sprayer
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "Winter2026!"}))
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "the address is held for every username");
    assert!(res.headers().get("retry-after").is_some());
    let res = from_address([127, 0, 0, 4])
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await?;
    assert_eq!(res.status(), StatusCode::OK, "another address is not");
    Ok(())
});

both!(a_login_never_takes_part_in_idempotency_replay, |app: TestApp| async move {
    let admin = app.admin_token().await;
    let login = |password: &'static str| {
        app.http
            .post(app.url("/api/v1/auth/login"))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "login-1")
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    let first = login(ADMIN_PASSWORD).await?;
    assert_eq!(first.status(), StatusCode::OK);
    let again = login("wrong-password").await?;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "a wrong password is never answered with the kept token");
    assert!(again.headers().get("idempotent-replayed").is_none());
    let kept: i64 = match &app.store {
        fleet_storage::Store::Sqlite(p, _) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys").fetch_one(p).await?
        }
        fleet_storage::Store::Postgres(p, _) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys").fetch_one(p).await?
        }
    };
    assert_eq!(kept, 0, "no login answer (token included) is kept");
    Ok(())
});

both!(passwords_are_8_characters_not_the_username_and_not_the_old_one, |app: TestApp| async move {
    let admin = app.admin_token().await;
    for (password, why) in [("short12", "too short"), ("Clerk-01", "the username")] {
        let (s, b) = post(
            &app,
            "/api/v1/users",
            &admin,
            json!({"username": "clerk-01", "password": password, "role": "dispatcher"}),
        )
        .await?;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {b}");
        assert!(error_code(&b, "validation_failed").contains("password"), "{b}");
    }
    create_user(&app, &admin, json!({"username": "clerk-01", "password": "first-pass", "role": "dispatcher"})).await?;
    let token = app.login("clerk-01", "first-pass").await?;
    for (new, why) in [("first-pass", "the old one"), ("clerk-01", "the username"), ("1234567", "too short")] {
        let (s, b) =
            post(&app, "/api/v1/auth/password", &token, json!({"old_password": "first-pass", "new_password": new}))
                .await?;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {b}");
        assert!(error_code(&b, "validation_failed").contains("new_password"), "{b}");
    }
    assert!(app.login("clerk-01", "first-pass").await.is_ok(), "nothing changed");
    Ok(())
});

both!(missing_or_garbage_tokens_are_401, |app: TestApp| async move {
    let (s, b) = call(&app, reqwest::Method::GET, "/api/v1/units", None, None).await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    error_code(&b, "unauthorized");
    let (s, b) = get(&app, "/api/v1/units", "garbage").await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    error_code(&b, "unauthorized");
    let (s, _) = get(&app, "/api/v1/units", &"ab".repeat(32)).await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a well-formed token nobody was given");
    let res = app.http.get(app.url("/api/v1/units")).header("authorization", "Basic YWRtaW46eA==").send().await?;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    Ok(())
});

both!(logout_revokes_the_token, |app: TestApp| async move {
    let token = app.admin_token().await;
    let other = app.admin_token().await;
    assert_eq!(get(&app, "/api/v1/me", &token).await?.0, StatusCode::OK);
    let (s, _) = call(&app, reqwest::Method::POST, "/api/v1/auth/logout", Some(&token), None).await?;
    assert!(s.is_success(), "{s}");
    let (s, b) = get(&app, "/api/v1/me", &token).await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    error_code(&b, "unauthorized");
    assert_eq!(get(&app, "/api/v1/me", &other).await?.0, StatusCode::OK, "only the one token is revoked");
    Ok(())
});

both!(password_change_replaces_the_password_and_revokes_other_sessions, |app: TestApp| async move {
    let admin = app.admin_token().await;
    create_user(&app, &admin, json!({"username": "clerk", "password": "old-pass", "role": "dispatcher"})).await?;
    let this = app.login("clerk", "old-pass").await?;
    let elsewhere = app.login("clerk", "old-pass").await?;

    let (s, b) =
        post(&app, "/api/v1/auth/password", &this, json!({"old_password": "wrong", "new_password": "new-pass"}))
            .await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    error_code(&b, "invalid_credentials");
    let (s, b) =
        post(&app, "/api/v1/auth/password", &this, json!({"old_password": "old-pass", "new_password": "x"})).await?;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_code(&b, "validation_failed").contains("new_password"));

    let (s, b) =
        post(&app, "/api/v1/auth/password", &this, json!({"old_password": "old-pass", "new_password": "new-pass"}))
            .await?;
    assert!(s.is_success(), "{s} {b}");
    assert!(app.login("clerk", "old-pass").await.is_err(), "the old password no longer works");
    assert!(app.login("clerk", "new-pass").await.is_ok());
    assert_eq!(get(&app, "/api/v1/me", &elsewhere).await?.0, StatusCode::UNAUTHORIZED, "other sessions revoked");
    assert_eq!(get(&app, "/api/v1/me", &this).await?.0, StatusCode::OK, "this session stays");
    Ok(())
});

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
