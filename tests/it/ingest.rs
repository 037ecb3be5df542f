//! Telemetry ingest end to end: real Mosquitto, real databases, fleetd in-process.

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use fleet_domain::{DeadLetterReason, Sample, SampleSource, Vin};
use fleet_ingest::decode::gbt32960::{self, Edition};
use fleet_sim::terminal;
use fleet_tests::{Publisher, both, random_vin};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).single().unwrap()
}

fn ts(s: i64) -> String {
    (t0() + ChronoDuration::seconds(s)).to_rfc3339()
}

fn sample(vin: &str, s: i64, source: SampleSource) -> Sample {
    let mut x = Sample::at(Vin::parse(vin).unwrap(), t0() + ChronoDuration::seconds(s), 30.0123, 122.1034, source);
    x.speed_kmh = Some(42.5);
    x.soc_pct = Some(77.0);
    x.odometer_km = Some(12345.6);
    x.battery_voltage_v = Some(380.2);
    x.battery_current_a = Some(21.5);
    x.charging = Some(false);
    x.ignition = Some(true);
    x
}

both!(json_single_sample_is_stored_and_moves_the_state, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    p.json(&vin, &json!({"ts": ts(0), "lat": 30.01, "lon": 122.10, "speed_kmh": 35.5, "heading_deg": 90, "soc_pct": 81.5, "charging": false, "unknown_field": "ignored"})).await?;
    app.wait_for_samples(&vin, 1).await?;
    let track =
        app.store.telemetry().track(&vin, t0() - ChronoDuration::hours(1), t0() + ChronoDuration::hours(1), 10).await?;
    assert_eq!(track.len(), 1);
    assert_eq!(track[0].speed_kmh, Some(35.5));
    assert_eq!(track[0].soc_pct, Some(81.5));
    assert_eq!(track[0].source, SampleSource::Json);
    let state = app.wait_for_state(&vin, "written", |_| true).await?;
    assert_eq!((state.lat, state.lon, state.ts), (Some(30.01), Some(122.10), t0()));
    // /metrics says when every committed sample's state is written.
    app.wait_until("no state left unwritten", || async {
        let metrics = app.http.get(app.url("/metrics")).send().await?.text().await?;
        Ok(metrics.lines().any(|l| l == "fleet_ingest_states_unwritten 0"))
    })
    .await?;
    assert!(app.dead_letters_of(&vin).await?.is_empty());
    Ok(())
});

both!(json_batch_keeps_valid_samples_and_dead_letters_the_invalid, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    // Epoch-millisecond and RFC 3339 times; one sample out of range, one missing lat.
    let ms = (t0() + ChronoDuration::seconds(1)).timestamp_millis();
    let batch = json!([
        {"ts": ts(0), "lat": 30.0, "lon": 122.0},
        {"ts": ms, "lat": 30.001, "lon": 122.001, "soc_pct": 80},
        {"ts": ts(2), "lat": 30.002, "lon": 122.002, "soc_pct": 180},
        {"ts": ts(3), "lon": 122.003},
        {"ts": ts(4), "lat": 30.004, "lon": 122.004, "speed_kmh": 50},
    ]);
    p.json(&vin, &batch).await?;
    app.wait_for_samples(&vin, 3).await?;
    app.wait_until("dead letter", || async { Ok(!app.dead_letters_of(&vin).await?.is_empty()) }).await?;
    let dead = app.dead_letters_of(&vin).await?;
    assert_eq!(dead.len(), 1, "one dead letter for the message: {dead:?}");
    assert_eq!(dead[0].reason, DeadLetterReason::InvalidSample);
    assert!(dead[0].detail.contains("2 of 5"), "{}", dead[0].detail);
    assert!(dead[0].detail.contains("soc_pct"), "{}", dead[0].detail);
    assert!(dead[0].detail.contains("lat"), "{}", dead[0].detail);
    assert_eq!(dead[0].topic, format!("fleet/v1/vehicles/{vin}/telemetry"));
    assert!(!dead[0].payload.is_empty());
    Ok(())
});

both!(duplicates_are_stored_once, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    let s = json!({"ts": ts(0), "lat": 30.0, "lon": 122.0});
    p.json(&vin, &s).await?;
    p.json(&vin, &s).await?;
    p.json(&vin, &json!([s.clone(), s.clone(), {"ts": ts(1), "lat": 30.0, "lon": 122.0}])).await?;
    // The GB/T frame of the same instant is the same sample too.
    p.gbt(&vin, terminal::encode_sample(Edition::V2016, false, &sample(&vin, 1, SampleSource::Gbt2016))).await?;
    // A marker published last: once it is stored, everything before it was processed.
    p.json(&vin, &json!({"ts": ts(99), "lat": 30.0, "lon": 122.0})).await?;
    app.wait_for_samples(&vin, 3).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.store.telemetry().count(Some(&vin)).await?, 3);
    Ok(())
});

both!(older_samples_are_stored_but_never_move_the_state_back, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    p.json(&vin, &json!({"ts": ts(100), "lat": 30.1, "lon": 122.1, "soc_pct": 60})).await?;
    app.wait_for_samples(&vin, 1).await?;
    app.wait_for_state(&vin, "at the first sample", |s| s.ts == t0() + ChronoDuration::seconds(100)).await?;
    // A late batch from an offline period, older than what we have.
    p.json(&vin, &json!([{"ts": ts(10), "lat": 29.9, "lon": 121.9, "soc_pct": 90}, {"ts": ts(20), "lat": 29.95, "lon": 121.95, "soc_pct": 88}])).await?;
    app.wait_for_samples(&vin, 3).await?;
    // The track is in time order whatever the arrival order.
    let track = app.store.telemetry().track(&vin, t0(), t0() + ChronoDuration::hours(1), 100).await?;
    let times: Vec<_> = track.iter().map(|s| s.ts).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    // A graceful stop writes every committed sample's state, the late batch's too (and a
    // start would bring it up to the samples if the stop had not).
    let mut app = app;
    app.restart().await;
    let state = app.store.telemetry().state(&vin).await?.unwrap();
    assert_eq!(state.ts, t0() + ChronoDuration::seconds(100));
    assert_eq!((state.lat, state.soc_pct), (Some(30.1), Some(60.0)));
    Ok(())
});

both!(gbt32960_frames_of_both_editions_become_samples, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    let v = Vin::parse(&vin)?;
    let login_time = (t0() + ChronoDuration::hours(8)).naive_utc();
    p.gbt(&vin, terminal::encode_login(Edition::V2016, &v, login_time, 1)).await?;
    p.gbt(&vin, gbt32960::encode_heartbeat(Edition::V2016, &v)).await?;
    let report_2016 = terminal::encode_sample(Edition::V2016, false, &sample(&vin, 0, SampleSource::Gbt2016));
    p.gbt(&vin, report_2016.clone()).await?;
    p.gbt(&vin, terminal::encode_sample(Edition::V2025, false, &sample(&vin, 10, SampleSource::Gbt2025))).await?;
    // A re-issued (0x03) report of an older instant.
    p.gbt(&vin, terminal::encode_sample(Edition::V2025, true, &sample(&vin, -3600, SampleSource::Gbt2025))).await?;
    p.gbt(&vin, gbt32960::encode_logout(Edition::V2016, &v, login_time, 1)).await?;
    app.wait_for_samples(&vin, 3).await?;
    let track =
        app.store.telemetry().track(&vin, t0() - ChronoDuration::hours(2), t0() + ChronoDuration::hours(1), 10).await?;
    assert_eq!(
        track.iter().map(|s| s.source).collect::<Vec<_>>(),
        [SampleSource::Gbt2025, SampleSource::Gbt2016, SampleSource::Gbt2025]
    );
    let s = &track[1];
    assert_eq!(s.ts, t0());
    assert!((s.lat - 30.0123).abs() < 1e-6 && (s.lon - 122.1034).abs() < 1e-6, "{s:?}");
    assert_eq!((s.speed_kmh, s.soc_pct, s.odometer_km), (Some(42.5), Some(77.0), Some(12345.6)));
    assert_eq!(s.frame.as_ref(), Some(&report_2016), "the other blocks are kept with the sample, in the frame");
    let blocks = gbt32960::blocks_json(&report_2016).expect("the stored frame decodes");
    assert_eq!(blocks["edition"], "2016");
    assert!(blocks["motors"][0]["speed_rpm"].is_u64(), "{blocks}");
    app.wait_for_state(&vin, "at the newest report", |s| s.ts == t0() + ChronoDuration::seconds(10)).await?;
    assert!(app.dead_letters_of(&vin).await?.is_empty(), "login, heartbeat and logout are accepted");
    Ok(())
});

both!(invalid_gbt32960_position_is_stored_but_does_not_move_the_car, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    p.gbt(&vin, terminal::encode_sample(Edition::V2016, false, &sample(&vin, 0, SampleSource::Gbt2016))).await?;
    let mut stale = sample(&vin, 5, SampleSource::Gbt2016);
    stale.position_valid = false;
    stale.lat = 29.5;
    stale.soc_pct = Some(70.0);
    p.gbt(&vin, terminal::encode_sample(Edition::V2016, false, &stale)).await?;
    app.wait_for_samples(&vin, 2).await?;
    let state = app
        .wait_for_state(&vin, "the newer sample's time counts", |s| s.ts == t0() + ChronoDuration::seconds(5))
        .await?;
    assert_eq!(state.soc_pct, Some(70.0));
    assert!((state.lat.unwrap() - 30.0123).abs() < 1e-6, "but not its invalid position");
    Ok(())
});

both!(bad_messages_go_to_dead_letters_with_their_reason, |app: TestApp| async move {
    let vin = random_vin();
    let other = random_vin();
    let unknown = random_vin();
    app.register_vehicle(&vin).await?;
    app.register_vehicle(&other).await?;
    let mut p = Publisher::connect().await?;
    let good = terminal::encode_sample(Edition::V2016, false, &sample(&vin, 0, SampleSource::Gbt2016));
    let mut broken = good.clone();
    let last = broken.len() - 1;
    broken[last] ^= 0x5A;
    p.gbt(&vin, broken).await?;
    let mut short = good.clone();
    short.truncate(good.len() - 5);
    p.gbt(&vin, short).await?;
    // A frame of another car on this car's topic.
    p.gbt(&vin, terminal::encode_sample(Edition::V2016, false, &sample(&other, 0, SampleSource::Gbt2016))).await?;
    p.publish(&format!("fleet/v1/vehicles/{vin}/telemetry"), b"{not json".to_vec()).await?;
    p.publish(&format!("fleet/v1/vehicles/{vin}/telemetry"), b"42".to_vec()).await?;
    let mut big = br#"{"ts":"2026-11-20T08:00:00+08:00","lat":30,"lon":122,"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 300 * 1024));
    big.extend(br#""}"#);
    p.publish(&format!("fleet/v1/vehicles/{vin}/telemetry"), big).await?;
    p.json(&unknown, &json!({"ts": ts(0), "lat": 30.0, "lon": 122.0})).await?;
    // Good input in between is kept.
    p.gbt(&vin, good).await?;
    p.json(&vin, &json!({"ts": ts(1), "lat": 30.0, "lon": 122.0})).await?;
    app.wait_for_samples(&vin, 2).await?;
    app.wait_until("six dead letters", || async { Ok(app.dead_letters_of(&vin).await?.len() >= 6) }).await?;
    let mut reasons: Vec<&str> = Vec::new();
    let dead = app.dead_letters_of(&vin).await?;
    for d in &dead {
        reasons.push(d.reason.as_str());
    }
    reasons.sort();
    assert_eq!(
        reasons,
        ["bad_checksum", "malformed_frame", "malformed_json", "malformed_json", "too_large", "vin_mismatch"]
    );
    let too_large = dead.iter().find(|d| d.reason == DeadLetterReason::TooLarge).unwrap();
    assert_eq!(too_large.payload.len(), 64 * 1024, "the first 64 KiB are kept");
    assert!(too_large.size > 300 * 1024);
    app.wait_until("unknown vehicle dead letter", || async { Ok(!app.dead_letters_of(&unknown).await?.is_empty()) })
        .await?;
    assert_eq!(app.dead_letters_of(&unknown).await?[0].reason, DeadLetterReason::UnknownVehicle);
    assert_eq!(app.store.telemetry().count(Some(&unknown)).await?, 0);
    // Counted in /metrics.
    let metrics = app.http.get(app.url("/metrics")).send().await?.text().await?;
    assert!(metrics.contains("fleet_ingest_dead_letters_total"), "{metrics}");
    Ok(())
});

both!(messages_published_while_fleetd_is_down_are_ingested_once_after_restart, |app: TestApp| async move {
    let mut app = app;
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    for i in 0..50 {
        p.json(&vin, &json!({"ts": ts(i), "lat": 30.0, "lon": 122.0})).await?;
    }
    app.wait_for_samples(&vin, 50).await?;
    app.stop().await;
    // While fleetd is down: new samples, some of them repeats of stored ones.
    for i in 40..250 {
        p.json(&vin, &json!({"ts": ts(i), "lat": 30.0, "lon": 122.0})).await?;
    }
    p.json(&vin, &json!((250..300).map(|i| json!({"ts": ts(i), "lat": 30.0, "lon": 122.0})).collect::<Vec<_>>()))
        .await?;
    app.restart().await;
    app.wait_for_samples(&vin, 300).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.store.telemetry().count(Some(&vin)).await?, 300, "none lost, none doubled");
    Ok(())
});
