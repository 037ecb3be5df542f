//! Login: tokens for the right password, one refusal for every wrong one, and the throttle on
//! failing addresses and usernames.

use fleet_tests::{ADMIN_PASSWORD, both};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{call, create_user, error_code, get};

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
