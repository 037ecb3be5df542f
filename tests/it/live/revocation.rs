//! Live sockets do not outlive their token (issue 17.2): a logout closes the sockets opened
//! with that token (4001), a password change those of the user's other tokens (4002) while
//! the changing session's own stays open, an expired token's socket closes (4003), and a
//! revocation found on a resynchronisation closes it too (4004).

use std::time::Duration;

use fleet_tests::live::LiveClient;
use fleet_tests::{TestApp, both};
use serde_json::{Value, json};

use super::post;

both!(a_live_socket_closes_when_its_token_is_revoked, |app: TestApp| async move {
    let admin = app.admin_token().await;
    post(&app, &admin, "/api/v1/users", json!({"username": "alice", "password": "alice-pass-1", "role": "dispatcher"}))
        .await?;
    let (t1, t2, t3) = (
        app.login("alice", "alice-pass-1").await?,
        app.login("alice", "alice-pass-1").await?,
        app.login("alice", "alice-pass-1").await?,
    );
    let mut s1 = LiveClient::connect(&app.live_url(&t1, "")).await?;
    let mut s2 = LiveClient::connect(&app.live_url(&t2, "")).await?;
    let mut s3 = LiveClient::connect(&app.live_url(&t3, "")).await?;
    for s in [&mut s1, &mut s2, &mut s3] {
        s.snapshot().await?;
    }
    let r = app.http.post(app.url("/api/v1/auth/logout")).bearer_auth(&t1).send().await?;
    assert_eq!(r.status(), 204);
    assert_eq!(s1.closed().await?, (4001, "logged out".to_owned()));
    let r = app
        .http
        .post(app.url("/api/v1/auth/password"))
        .bearer_auth(&t2)
        .json(&json!({"old_password": "alice-pass-1", "new_password": "alice-pass-2"}))
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    assert_eq!(s3.closed().await?, (4002, "password changed".to_owned()));
    // The session that changed the password keeps its feed: the next order reaches it.
    post(&app, &admin, "/api/v1/units", json!({"id": "u1", "name": "市委办公室", "monthly_energy_budget_kwh": 100.0}))
        .await?;
    let order = post(
        &app,
        &t2,
        "/api/v1/orders",
        json!({"unit_id": "u1", "passengers": 1, "pickup": {"lat": 30.0, "lon": 122.1, "name": "甲"},
        "dropoff": {"lat": 30.01, "lon": 122.11, "name": "乙"}, "purpose": "会议"}),
    )
    .await?;
    s2.wait_for("the order on the changing session's feed", |m| {
        (m["type"] == "order" && m["order"]["id"] == order["id"]).then_some(())
    })
    .await?;
    Ok(())
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_socket_closes_when_its_token_expires() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(fleet_tests::Db::Sqlite, |s| s.token_ttl = Duration::from_secs(2)).await;
    let token = app.admin_token().await;
    let mut feed = LiveClient::connect(&app.live_url(&token, "")).await?;
    feed.snapshot().await?;
    assert_eq!(feed.closed().await?, (4003, "token expired".to_owned()));
    Ok(())
}

/// On a cluster, a logout through one instance closes the socket held by another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_closes_the_socket_on_another() -> anyhow::Result<()> {
    let first = TestApp::spawn_with(fleet_tests::Db::Postgres, |s| s.cluster = true).await;
    let second = first.sibling().await;
    let token = first.admin_token().await;
    let mut feed = LiveClient::connect(&second.live_url(&token, "")).await?;
    feed.snapshot().await?;
    let r = first.http.post(first.url("/api/v1/auth/logout")).bearer_auth(&token).send().await?;
    assert_eq!(r.status(), 204);
    assert_eq!(feed.closed().await?, (4001, "logged out".to_owned()));
    Ok(())
}

/// A revocation that reached no event (here: made in storage directly) is found when the
/// feed resynchronises after lost events: the socket closes with 4004.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_finds_a_token_revoked_without_an_event() -> anyhow::Result<()> {
    let app = TestApp::spawn(fleet_tests::Db::Sqlite).await;
    let token = app.admin_token().await;
    let me: Value = app.http.get(app.url("/api/v1/me")).bearer_auth(&token).send().await?.json().await?;
    let user_id = me["id"].as_i64().expect("the user's id");
    let mut feed = LiveClient::connect(&app.live_url(&token, "")).await?;
    feed.snapshot().await?;
    app.store.tokens().revoke_all_for(user_id, None).await?;
    app.bus().publish(fleet_bus::Event::Resync);
    assert_eq!(feed.closed().await?, (4004, "token revoked".to_owned()));
    Ok(())
}
