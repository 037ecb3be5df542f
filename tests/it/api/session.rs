//! Sessions: the password rules, tokens that are missing or revoked, logout and password change.

use fleet_tests::both;
use reqwest::StatusCode;
use serde_json::json;

use super::{call, create_user, error_code, get, post};

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
