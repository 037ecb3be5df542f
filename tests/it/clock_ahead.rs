//! Samples stamped ahead of the receiving clock (issue 17): stored and shown flagged in the
//! track, never moving the vehicle's state, at ingest or at the start-up catch-up.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use fleet_domain::{Sample, SampleSource, Vin};
use fleet_tests::{Publisher, TestApp, both, random_vin};
use serde_json::{Value, json};

/// Now, in whole milliseconds (what a sample's time keeps).
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now is a valid time")
}

async fn publish(p: &mut Publisher, vin: &str, ts: DateTime<Utc>, lat: f64, soc: f64) -> anyhow::Result<()> {
    p.json(vin, &json!({"ts": ts.timestamp_millis(), "lat": lat, "lon": 122.1, "soc_pct": soc})).await
}

/// The vehicle's track through the API, from an hour ago to a day ahead.
async fn track(app: &TestApp, vin: &str) -> anyhow::Result<Vec<Value>> {
    let token = app.admin_token().await;
    let from = (Utc::now() - ChronoDuration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (Utc::now() + ChronoDuration::hours(25)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let r = app
        .http
        .get(app.url(&format!("/api/v1/vehicles/{vin}/track")))
        .query(&[("from", from), ("to", to)])
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "track: {}", r.status());
    let body: Value = r.json().await?;
    Ok(body["samples"].as_array().cloned().unwrap_or_default())
}

both!(a_sample_from_the_future_is_stored_flagged_and_does_not_freeze_the_car, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    let now = now_ms();
    let future = now + ChronoDuration::hours(23);
    publish(&mut p, &vin, future, 30.5, 10.0).await?;
    publish(&mut p, &vin, now, 30.1, 80.0).await?;
    app.wait_for_samples(&vin, 2).await?;
    let state = app.wait_for_state(&vin, "at the real sample", |s| s.ts == now).await?;
    assert_eq!((state.lat, state.soc_pct), (Some(30.1), Some(80.0)));

    // A later real sample still moves the car.
    let later = now + ChronoDuration::seconds(5);
    publish(&mut p, &vin, later, 30.2, 79.0).await?;
    app.wait_for_state(&vin, "at the later real sample", |s| s.ts == later && s.lat == Some(30.2)).await?;

    let samples = track(&app, &vin).await?;
    let flags: Vec<(i64, bool)> = samples
        .iter()
        .map(|s| {
            (
                DateTime::parse_from_rfc3339(s["ts"].as_str().unwrap_or_default()).map_or(0, |t| t.timestamp_millis()),
                s["clock_ahead"] == true,
            )
        })
        .collect();
    assert_eq!(
        flags,
        [(now.timestamp_millis(), false), (later.timestamp_millis(), false), (future.timestamp_millis(), true)],
        "the future sample is in the track, flagged: {samples:?}"
    );
    let vehicle: Value = app
        .http
        .get(app.url(&format!("/api/v1/vehicles/{vin}")))
        .bearer_auth(app.admin_token().await)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(vehicle["state"]["lat"], 30.2, "{vehicle}");
    Ok(())
});

both!(a_sample_a_minute_ahead_is_taken_as_the_present, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    let ahead = now_ms() + ChronoDuration::minutes(1);
    publish(&mut p, &vin, ahead, 30.3, 70.0).await?;
    app.wait_for_state(&vin, "at the sample a minute ahead", |s| s.ts == ahead && s.lat == Some(30.3)).await?;
    let samples = track(&app, &vin).await?;
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0]["clock_ahead"], false);
    Ok(())
});

both!(the_catch_up_at_start_passes_a_flagged_sample_by, |app: TestApp| async move {
    let mut app = app;
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    let now = now_ms();
    publish(&mut p, &vin, now, 30.1, 80.0).await?;
    app.wait_for_state(&vin, "at the real sample", |s| s.ts == now).await?;

    // Samples stored without their state, as a crash before the state writer leaves them:
    // one real, one from the future (flagged).
    let v = Vin::parse(&vin)?;
    let mut real = Sample::at(v.clone(), now + ChronoDuration::seconds(10), 30.15, 122.1, SampleSource::Json);
    real.soc_pct = Some(79.5);
    let mut future = Sample::at(v, now + ChronoDuration::hours(23), 30.9, 122.1, SampleSource::Json);
    future.soc_pct = Some(5.0);
    future.clock_ahead = true;
    app.store.telemetry().commit_samples(&[real, future], &[]).await?;
    app.restart().await;

    // The restart has caught up (before ingest subscribes): the real sample is folded in,
    // the future one is not.
    let state = app.store.telemetry().state(&vin).await?.expect("a state");
    assert_eq!((state.ts, state.lat, state.soc_pct), (now + ChronoDuration::seconds(10), Some(30.15), Some(79.5)));
    Ok(())
});
