//! Who may do what, route by route (issue 8): every route of the OpenAPI document × every
//! role in one table, plus no token at all; and the audit log of every write.

use std::collections::BTreeSet;

use fleet_tests::{Db, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::orders::{order_body, post, world};

/// Roles in the table's column order.
const ROLES: [&str; 6] = ["admin", "dispatcher", "auditor", "unit", "driver", "former driver"];

/// Expected answer per role: `Y` allowed (any answer but 401/403/404), `F` 403, `N` 404.
/// The "former driver" declined the order before it was reassigned to the driver's car.
#[derive(Clone, Copy, PartialEq, Debug)]
enum E {
    Y,
    F,
    N,
}
use E::{F, N, Y};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_table_says() -> anyhow::Result<()> {
    let app =
        TestApp::spawn_with(Db::Sqlite, |s| s.dispatch.batch_interval = std::time::Duration::from_secs(3600)).await;
    let w = world(&app, 2).await?;
    let (vin, driver_id, driver) = w.cars[0].clone();
    let (former_vin, _, former) = w.cars[1].clone();
    // An order of unit 1, approved, declined by the former driver, and assigned to the
    // driver's car.
    let (_, o) = post(&app, &w.unit1, "/api/v1/orders", order_body("u1", 1)).await?;
    let order = o["id"].as_str().unwrap().to_owned();
    post(&app, &w.unit1, &format!("/api/v1/orders/{order}/approve"), json!({})).await?;
    post(&app, &w.dispatcher, &format!("/api/v1/orders/{order}/assign"), json!({"vin": former_vin})).await?;
    assert_eq!(post(&app, &former, &format!("/api/v1/orders/{order}/decline"), json!({})).await?.0, 200);
    post(&app, &w.dispatcher, &format!("/api/v1/orders/{order}/assign"), json!({"vin": vin})).await?;
    let tokens =
        [w.admin.clone(), w.dispatcher.clone(), w.auditor.clone(), w.unit1.clone(), driver.clone(), former.clone()];
    // A user none of the columns is: edited and retired by the last rows.
    let (_, users) = crate::orders::get(&app, &w.admin, "/api/v1/users").await?;
    let unit2 = users["users"].as_array().unwrap().iter().find(|u| u["username"] == "unit2").unwrap()["id"].clone();
    let former_driver = w.cars[1].1.clone();

    let csv =
        "unit_id,passengers,pickup_name,pickup_lat,pickup_lon,dropoff_name,dropoff_lat,dropoff_lon,pickup_at,purpose\n";
    // (method, template, concrete path, body, expectations per role in ROLES order)
    let o = |a: &str| format!("/api/v1/orders/{order}/{a}");
    type Row<'a> = (Method, &'a str, String, Option<Value>, [E; 6]);
    let table: Vec<Row> = vec![
        (Method::GET, "/api/v1/me", "/api/v1/me".into(), None, [Y, Y, Y, Y, Y, Y]),
        (Method::GET, "/api/v1/users", "/api/v1/users".into(), None, [Y, F, F, F, F, F]),
        (Method::GET, "/api/v1/platforms", "/api/v1/platforms".into(), None, [Y, F, F, F, F, F]),
        (Method::GET, "/api/v1/units", "/api/v1/units".into(), None, [Y, Y, Y, Y, F, F]),
        (Method::GET, "/api/v1/units/{id}", "/api/v1/units/u1".into(), None, [Y, Y, Y, Y, F, F]),
        (Method::GET, "/api/v1/units/{id}/budget", "/api/v1/units/u1/budget".into(), None, [Y, Y, Y, Y, F, F]),
        (Method::GET, "/api/v1/vehicles", "/api/v1/vehicles".into(), None, [Y, Y, Y, Y, Y, Y]),
        (Method::GET, "/api/v1/vehicles/states", "/api/v1/vehicles/states".into(), None, [Y, Y, Y, Y, Y, Y]),
        // The car belongs to the pool, not to unit 1, and is not the former driver's.
        (Method::GET, "/api/v1/vehicles/{vin}", format!("/api/v1/vehicles/{vin}"), None, [Y, Y, Y, N, Y, N]),
        (
            Method::GET,
            "/api/v1/vehicles/{vin}/track",
            format!("/api/v1/vehicles/{vin}/track"),
            None,
            [Y, Y, Y, N, Y, N],
        ),
        (Method::GET, "/api/v1/drivers", "/api/v1/drivers".into(), None, [Y, Y, Y, Y, Y, Y]),
        (Method::GET, "/api/v1/drivers/{id}", format!("/api/v1/drivers/{driver_id}"), None, [Y, Y, Y, N, Y, N]),
        (Method::GET, "/api/v1/dead-letters", "/api/v1/dead-letters".into(), None, [Y, F, Y, F, F, F]),
        (Method::GET, "/api/v1/charging-stations", "/api/v1/charging-stations".into(), None, [Y, Y, Y, Y, Y, Y]),
        (Method::GET, "/api/v1/orders", "/api/v1/orders".into(), None, [Y, Y, Y, Y, Y, Y]),
        (Method::GET, "/api/v1/orders/{id}", format!("/api/v1/orders/{order}"), None, [Y, Y, Y, Y, Y, N]),
        (Method::GET, "/api/v1/trips", "/api/v1/trips".into(), None, [Y, Y, Y, Y, Y, Y]),
        (Method::GET, "/api/v1/stats/monthly", "/api/v1/stats/monthly".into(), None, [Y, Y, Y, Y, F, F]),
        (Method::GET, "/api/v1/alarms/misuse", "/api/v1/alarms/misuse".into(), None, [Y, Y, Y, Y, F, F]),
        (Method::GET, "/api/v1/audit", "/api/v1/audit".into(), None, [Y, F, Y, F, F, F]),
        (Method::GET, "/api/v1/map/config", "/api/v1/map/config".into(), None, [Y, Y, Y, Y, Y, Y]),
        (
            Method::POST,
            "/api/v1/units",
            "/api/v1/units".into(),
            Some(json!({"name": "新单位", "monthly_energy_budget_kwh": 10.0})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::POST,
            "/api/v1/users",
            "/api/v1/users".into(),
            Some(json!({"username": "x", "password": "x-password-1", "role": "auditor"})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::POST,
            "/api/v1/platforms",
            "/api/v1/platforms".into(),
            Some(json!({"name": "平台", "username": "sec-plat", "password": "sec-plat-pass"})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::POST,
            "/api/v1/vehicles",
            "/api/v1/vehicles".into(),
            Some(json!({"vin": "LSJA24U66NS000009"})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::POST,
            "/api/v1/drivers",
            "/api/v1/drivers".into(),
            Some(json!({"name": "x", "phone": "13800001111"})),
            [Y, F, F, F, F, F],
        ),
        (Method::POST, "/api/v1/orders", "/api/v1/orders".into(), Some(order_body("u1", 1)), [Y, Y, F, Y, F, F]),
        (Method::POST, "/api/v1/orders/import", "/api/v1/orders/import".into(), None, [Y, Y, F, Y, F, F]),
        (Method::POST, "/api/v1/orders/{id}/approve", o("approve"), Some(json!({})), [Y, Y, F, Y, F, N]),
        (Method::POST, "/api/v1/orders/{id}/reject", o("reject"), Some(json!({})), [Y, Y, F, Y, F, N]),
        (Method::POST, "/api/v1/orders/{id}/assign", o("assign"), Some(json!({"vin": vin})), [Y, Y, F, F, F, N]),
        (Method::POST, "/api/v1/orders/{id}/accept", o("accept"), Some(json!({})), [Y, Y, F, F, Y, N]),
        (Method::POST, "/api/v1/orders/{id}/decline", o("decline"), Some(json!({})), [Y, Y, F, F, Y, Y]),
        (Method::POST, "/api/v1/orders/{id}/pickup", o("pickup"), Some(json!({})), [Y, Y, F, F, Y, N]),
        (Method::POST, "/api/v1/orders/{id}/complete", o("complete"), Some(json!({})), [Y, Y, F, F, Y, N]),
        (Method::POST, "/api/v1/orders/{id}/cancel", o("cancel"), Some(json!({})), [Y, Y, F, Y, F, N]),
        // Fleet administration; the retiring rows come last (they end what they touch).
        (Method::GET, "/api/v1/reminders", "/api/v1/reminders".into(), None, [Y, Y, Y, Y, Y, Y]),
        (Method::GET, "/api/v1/tariff", "/api/v1/tariff".into(), None, [Y, Y, Y, Y, Y, Y]),
        (
            Method::PUT,
            "/api/v1/tariff",
            "/api/v1/tariff".into(),
            Some(json!({"periods": [{"from": "00:00", "to": "24:00", "yuan_per_kwh": 0.9}]})),
            [Y, F, F, F, F, F],
        ),
        (Method::GET, "/api/v1/costs", "/api/v1/costs".into(), None, [Y, Y, Y, Y, Y, Y]),
        (
            Method::POST,
            "/api/v1/costs",
            "/api/v1/costs".into(),
            Some(json!({"vin": vin, "on": "2026-01-05", "kind": "toll", "amount_yuan": 10.0})),
            [Y, F, F, F, F, F],
        ),
        (Method::POST, "/api/v1/costs/import", "/api/v1/costs/import".into(), None, [Y, F, F, F, F, F]),
        (Method::GET, "/api/v1/alarms", "/api/v1/alarms".into(), None, [Y, Y, Y, Y, Y, Y]),
        (
            Method::POST,
            "/api/v1/alarms/{id}/acknowledge",
            "/api/v1/alarms/999999/acknowledge".into(),
            None,
            [N, N, F, N, N, N],
        ),
        (Method::GET, "/api/v1/geofences", "/api/v1/geofences".into(), None, [Y, Y, Y, Y, F, F]),
        (
            Method::POST,
            "/api/v1/geofences",
            "/api/v1/geofences".into(),
            Some(
                json!({"name": "区", "kind": "zone", "geometry": {"type": "Point", "coordinates": [122.1, 30.0]}, "radius_m": 100.0}),
            ),
            [Y, Y, F, F, F, F],
        ),
        (Method::DELETE, "/api/v1/geofences/{id}", "/api/v1/geofences/999999".into(), None, [N, N, F, F, F, F]),
        (Method::GET, "/api/v1/webhooks", "/api/v1/webhooks".into(), None, [Y, F, F, F, F, F]),
        (
            Method::POST,
            "/api/v1/webhooks",
            "/api/v1/webhooks".into(),
            Some(json!({"url": "http://127.0.0.1:9/hook", "kinds": ["zone_entered"], "secret": "0123456789abcdef"})),
            [Y, F, F, F, F, F],
        ),
        (Method::DELETE, "/api/v1/webhooks/{id}", "/api/v1/webhooks/999999".into(), None, [N, F, F, F, F, F]),
        (Method::GET, "/api/v1/working-hours", "/api/v1/working-hours".into(), None, [Y, Y, Y, Y, Y, Y]),
        (
            Method::PUT,
            "/api/v1/working-hours",
            "/api/v1/working-hours".into(),
            Some(json!({"weekdays": [1, 2, 3, 4, 5], "start": "07:00", "end": "20:00"})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::GET,
            "/api/v1/vehicles/{vin}/maintenance",
            format!("/api/v1/vehicles/{vin}/maintenance"),
            None,
            [Y, Y, Y, N, Y, N],
        ),
        (
            Method::POST,
            "/api/v1/vehicles/{vin}/maintenance",
            format!("/api/v1/vehicles/{vin}/maintenance"),
            Some(json!({"on": "2026-01-05", "cost_yuan": 100.0})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::PATCH,
            "/api/v1/units/{id}",
            "/api/v1/units/u1".into(),
            Some(json!({"name": "新名"})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::PATCH,
            "/api/v1/vehicles/{vin}",
            format!("/api/v1/vehicles/{vin}"),
            Some(json!({"model": "BYD e6"})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::PATCH,
            "/api/v1/drivers/{id}",
            format!("/api/v1/drivers/{driver_id}"),
            Some(json!({"phone": "13800002222"})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::PATCH,
            "/api/v1/users/{id}",
            format!("/api/v1/users/{unit2}"),
            Some(json!({"unit_id": "u2"})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::POST,
            "/api/v1/vehicles/{vin}/retire",
            format!("/api/v1/vehicles/{former_vin}/retire"),
            Some(json!({})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::POST,
            "/api/v1/drivers/{id}/retire",
            format!("/api/v1/drivers/{former_driver}/retire"),
            Some(json!({})),
            [Y, F, F, F, F, F],
        ),
        (
            Method::POST,
            "/api/v1/users/{id}/retire",
            format!("/api/v1/users/{unit2}/retire"),
            Some(json!({})),
            [Y, F, F, F, F, F],
        ),
    ];
    // Routes answered by their own tests: the login, the token's own session, the WebSocket,
    // and a vehicle's MQTT secret.
    let elsewhere: BTreeSet<(&str, &str)> = [
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/password"),
        ("get", "/api/v1/live"),
        ("post", "/api/v1/vehicles/{vin}/mqtt-secret"),
        ("get", "/api/v1/openapi.json"),
    ]
    .into();

    // Every API route of the OpenAPI document is in the table (or answered elsewhere).
    let doc: Value = app.http.get(app.url("/api/v1/openapi.json")).send().await?.json().await?;
    let in_table: BTreeSet<(String, String)> =
        table.iter().map(|t| (t.0.as_str().to_ascii_lowercase(), t.1.to_owned())).collect();
    for (path, item) in doc["paths"].as_object().unwrap().iter().filter(|(p, _)| p.starts_with("/api/")) {
        for method in
            item.as_object().unwrap().keys().filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
        {
            let key = (method.clone(), path.clone());
            assert!(
                in_table.contains(&key) || elsewhere.contains(&(method.as_str(), path.as_str())),
                "route {method} {path} is missing from the table"
            );
        }
    }

    let send = |method: Method, path: String, body: Option<Value>, token: Option<String>| {
        let app = &app;
        async move {
            let mut req = app.http.request(method, app.url(&path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req = match (&body, path.ends_with("/import")) {
                (_, true) => req.header("content-type", "text/csv").body(csv.to_owned()),
                (Some(b), _) => req.json(b),
                (None, _) => req,
            };
            Ok::<_, anyhow::Error>(req.send().await?.status())
        }
    };
    // No token: 401 everywhere.
    for (method, _, path, body, _) in &table {
        let status = send(method.clone(), path.clone(), body.clone(), None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} without a token");
    }
    // Refusals first (before allowed writes change the order), then what is allowed.
    let mut failures = Vec::new();
    for pass in [false, true] {
        for (method, _, path, body, expect) in &table {
            for (r, role) in ROLES.iter().enumerate() {
                if (expect[r] == Y) != pass {
                    continue;
                }
                let status = send(method.clone(), path.clone(), body.clone(), Some(tokens[r].clone())).await?;
                let ok = match expect[r] {
                    Y => ![401, 403, 404].contains(&status.as_u16()),
                    F => status == StatusCode::FORBIDDEN,
                    N => status == StatusCode::NOT_FOUND,
                };
                if !ok {
                    failures.push(format!("{method} {path} as {role}: {status}, expected {:?}", expect[r]));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_is_in_the_audit_log_for_the_auditor() -> anyhow::Result<()> {
    let app = TestApp::spawn(Db::Postgres).await;
    let w = world(&app, 0).await?;
    let (_, o) = post(&app, &w.unit1, "/api/v1/orders", order_body("u1", 2)).await?;
    let id = o["id"].as_str().unwrap().to_owned();
    post(&app, &w.unit1, &format!("/api/v1/orders/{id}/approve"), json!({})).await?;
    assert_eq!(post(&app, &w.auditor, &format!("/api/v1/orders/{id}/cancel"), json!({})).await?.0, 403);
    let r = app.http.post(app.url("/api/v1/auth/logout")).bearer_auth(&w.unit2).send().await?;
    assert_eq!(r.status(), 204);

    let r = app.http.get(app.url("/api/v1/audit")).bearer_auth(&w.auditor).send().await?;
    assert_eq!(r.status(), 200);
    let entries: Value = r.json().await?;
    let seen: Vec<(String, String, String, u64)> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["username"].as_str().unwrap_or("-").to_owned(),
                e["method"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let has = |user: &str, path: &str, status: u64| seen.iter().any(|e| e.0 == user && e.2 == path && e.3 == status);
    assert!(has("unit1", "/api/v1/orders", 201), "{seen:?}");
    assert!(has("unit1", &format!("/api/v1/orders/{id}/approve"), 200), "{seen:?}");
    assert!(has("audit", &format!("/api/v1/orders/{id}/cancel"), 403), "refused writes are audited too: {seen:?}");
    assert!(has("unit2", "/api/v1/auth/logout", 204), "a logout is attributed to its user: {seen:?}");
    assert!(has("-", "/api/v1/auth/login", 200), "logins are audited (the token comes with the answer): {seen:?}");
    assert!(seen.iter().all(|e| e.1 != "GET"), "reads are not audited");
    assert_eq!(app.http.get(app.url("/api/v1/audit")).bearer_auth(&w.dispatcher).send().await?.status(), 403);
    // Nobody edits the log, not even with SQL.
    let fleet_storage::Store::Postgres(pool, _) = &app.store else { unreachable!("a PostgreSQL test") };
    let err = sqlx::query("DELETE FROM audit_log").execute(pool).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    Ok(())
}
