//! What EMQX's GB/T 32960 and JT/T 808 gateways publish (`FLEET_EMQX_GATEWAYS`), published
//! here as EMQX would on the real Mosquitto: scaled into samples, bad messages dead-lettered,
//! and nothing read while the setting is off.

use chrono::{DateTime, Datelike, Duration as ChronoDuration, FixedOffset, TimeZone, Timelike, Utc};
use fleet_domain::{DeadLetter, DeadLetterReason, Sample, SampleSource};
use fleet_ingest::EmqxGateways;
use fleet_tests::{Db, Publisher, Settings, TestApp, both_with, random_vin};
use rand::Rng;
use serde_json::{Value, json};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).single().unwrap()
}

fn at(s: i64) -> DateTime<Utc> {
    t0() + ChronoDuration::seconds(s)
}

fn beijing(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
}

fn read_both(s: &mut Settings) {
    s.emqx_gateways = EmqxGateways::ALL;
}

/// A random phone of a terminal, as a mainland mobile number.
fn random_phone() -> String {
    let mut rng = rand::rng();
    format!("13{:09}", rng.random_range(0..1_000_000_000u64))
}

/// Registers a vehicle whose JT/T 808 terminal has `phone`.
async fn register_with_phone(app: &TestApp, vin: &str, phone: &str) -> anyhow::Result<()> {
    let token = app.admin_token().await;
    let plate = format!("浙LD{}", &phone[phone.len() - 5..]);
    let body = json!({"vin": vin, "plate": plate, "model": "BYD Han EV", "seats": 5, "battery_kwh": 76.9,
                      "consumption_kwh_per_100km": 15.0, "terminal_phone": phone});
    let r = app.http.post(app.url("/api/v1/vehicles")).bearer_auth(token).json(&body).send().await?;
    anyhow::ensure!(r.status() == 201, "registering {vin} with {phone}: {} {}", r.status(), r.text().await?);
    Ok(())
}

async fn track(app: &TestApp, vin: &str) -> anyhow::Result<Vec<Sample>> {
    Ok(app.store.telemetry().track(vin, at(-7200), at(7200), 100).await?)
}

/// Dead letters whose topic is `topic`.
async fn dead_letters_on(app: &TestApp, topic: &str) -> anyhow::Result<Vec<DeadLetter>> {
    let all = app.store.dead_letters().recent(100_000, None).await?;
    Ok(all.into_iter().filter(|d| d.topic == topic).collect())
}

fn gbt_topic(vin: &str, reissue: bool) -> String {
    format!("gbt32960/{vin}/upstream/{}", if reissue { "reinfo" } else { "info" })
}

/// A report as EMQX's GB/T 32960 gateway publishes it: the frame's raw integers.
fn gbt_report(vin: &str, t: DateTime<Utc>, infos: Vec<Value>) -> Vec<u8> {
    let b = beijing(t);
    let time = json!({"Year": b.year() - 2000, "Month": b.month(), "Day": b.day(), "Hour": b.hour(),
                      "Minute": b.minute(), "Second": b.second()});
    let cmd = 2;
    serde_json::to_vec(&json!({"Cmd": cmd, "Encrypt": 1, "Vin": vin, "Data": {"Time": time, "Infos": infos}})).unwrap()
}

fn gbt_vehicle(speed: u64, mileage: u64, voltage: u64, current: u64, soc: u64) -> Value {
    json!({"Type": "Vehicle", "Status": 1, "Charging": 3, "Mode": 1, "Speed": speed, "Mileage": mileage,
           "Voltage": voltage, "Current": current, "SOC": soc, "DC": 1, "Gear": 14, "Resistance": 5000,
           "AcceleratorPedal": 20, "BrakePedal": 0})
}

fn gbt_location(status: u64, lat_e6: u64, lon_e6: u64) -> Value {
    json!({"Type": "Location", "Status": status, "Longitude": lon_e6, "Latitude": lat_e6})
}

fn jt808_topic(phone: &str) -> String {
    format!("jt808/{phone}/{phone}/up")
}

/// A message as EMQX's JT/T 808 gateway publishes it (2013 header: the phone as 12 BCD digits).
fn jt808_message(phone: &str, msg_id: u16, body: Value) -> Vec<u8> {
    let header = json!({"msg_id": msg_id, "encrypt": 0, "len": 28, "phone": format!("{phone:0>12}"), "msg_sn": 1});
    serde_json::to_vec(&json!({"header": header, "body": body})).unwrap()
}

fn jt808_location(t: DateTime<Utc>, status: u64, lat_e6: u64, lon_e6: u64, speed: u64, mileage: u64) -> Value {
    json!({"alarm": 0, "status": status, "latitude": lat_e6, "longitude": lon_e6, "altitude": 8, "speed": speed,
           "direction": 90, "time": beijing(t).format("%y%m%d%H%M%S").to_string(),
           "extra": {"mileage": mileage, "rssi": 20}})
}

/// Status bits: ACC on and a fix.
const JT808_FIXED: u64 = 0b11;

both_with!(emqx_gbt32960_reports_are_scaled_into_samples, read_both, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let mut p = Publisher::connect().await?;
    // Login and logout come on other topics of the gateway, which fleetd does not read.
    p.publish(&format!("gbt32960/{vin}/upstream/vlogin"), b"{}".to_vec()).await?;
    let probes = json!({"Type": "ChargeableTemp", "Number": 1,
                        "SubSystems": [{"ChargeableSubsysNo": 1, "ProbeNum": 2, "ProbesTemp": [66, 68]}]});
    let report = vec![gbt_vehicle(425, 123_456, 3552, 9877, 77), gbt_location(0, 30_016_500, 122_106_800), probes];
    p.publish(&gbt_topic(&vin, false), gbt_report(&vin, at(0), report)).await?;
    // Abnormal (0xFE…) and invalid (0xFF…) values, and a fix flagged invalid, at a later time.
    let sentinels =
        vec![gbt_vehicle(0xFFFE, 0xFFFF_FFFF, 0xFFFF, 0xFFFE, 0xFE), gbt_location(1, 29_500_000, 121_500_000)];
    p.publish(&gbt_topic(&vin, false), gbt_report(&vin, at(10), sentinels)).await?;
    // A re-issued report of an hour ago.
    let old = vec![gbt_vehicle(0, 123_000, 3600, 10_000, 90), gbt_location(0, 30_000_000, 122_000_000)];
    p.publish(&gbt_topic(&vin, true), gbt_report(&vin, at(-3600), old)).await?;
    app.wait_for_samples(&vin, 3).await?;
    let track = track(&app, &vin).await?;
    let (reissued, s, flagged) = (&track[0], &track[1], &track[2]);
    assert_eq!((reissued.ts, s.ts, flagged.ts), (at(-3600), at(0), at(10)));
    assert!(track.iter().all(|s| s.source == SampleSource::Gbt2016));
    assert_eq!((s.lat, s.lon, s.position_valid), (30.0165, 122.1068, true));
    assert_eq!((s.speed_kmh, s.odometer_km, s.soc_pct), (Some(42.5), Some(12345.6), Some(77.0)));
    assert_eq!((s.battery_voltage_v, s.battery_current_a, s.battery_temp_c), (Some(355.2), Some(-12.3), Some(28.0)));
    assert_eq!((s.charging, s.ignition), (Some(false), Some(true)));
    assert_eq!((reissued.battery_current_a, reissued.odometer_km), (Some(0.0), Some(12300.0)));
    assert!(!flagged.position_valid);
    assert_eq!((flagged.speed_kmh, flagged.odometer_km, flagged.soc_pct), (None, None, None));
    assert_eq!((flagged.battery_voltage_v, flagged.battery_current_a), (None, None));
    // The newest sample's time counts, not its invalid position; the re-issued one moves nothing.
    let state = app.wait_for_state(&vin, "at the newest report", |s| s.ts == at(10)).await?;
    assert_eq!((state.lat, state.lon), (Some(30.0165), Some(122.1068)));
    assert!(app.dead_letters_of(&vin).await?.is_empty());
    Ok(())
});

both_with!(emqx_jt808_locations_are_scaled_into_samples, read_both, |app: TestApp| async move {
    let vin = random_vin();
    let phone = random_phone();
    register_with_phone(&app, &vin, &phone).await?;
    let mut p = Publisher::connect().await?;
    let topic = jt808_topic(&format!("0{phone}"));
    // Registration, authentication and heartbeat pass on the same topic: accepted, nothing stored.
    p.publish(&topic, jt808_message(&phone, 0x0100, json!({"province": 33, "city": 900, "license_number": "浙L"})))
        .await?;
    p.publish(&topic, jt808_message(&phone, 0x0102, json!({"code": "abc"}))).await?;
    p.publish(&topic, jt808_message(&phone, 0x0002, json!({}))).await?;
    p.publish(
        &topic,
        jt808_message(&phone, 0x0200, jt808_location(at(0), JT808_FIXED, 30_016_500, 122_106_800, 365, 123_456)),
    )
    .await?;
    // A batch: a point south and west without a fix, and one the standard could not place.
    let batch = json!({"type": 1, "length": 3, "location": [
        jt808_location(at(20), 0b1101, 30_000_000, 122_000_000, 0, 123_460),
        jt808_location(at(-60), JT808_FIXED, 30_010_000, 122_100_000, 300, 123_400),
        jt808_location(at(30), JT808_FIXED, 95_000_000, 122_000_000, 0, 123_460),
    ]});
    p.publish(&topic, jt808_message(&phone, 0x0704, batch)).await?;
    app.wait_for_samples(&vin, 3).await?;
    let track = track(&app, &vin).await?;
    let (earlier, s, no_fix) = (&track[0], &track[1], &track[2]);
    assert_eq!((earlier.ts, s.ts, no_fix.ts), (at(-60), at(0), at(20)));
    assert!(track.iter().all(|s| s.source == SampleSource::Jt808));
    assert_eq!((s.lat, s.lon, s.position_valid), (30.0165, 122.1068, true));
    assert_eq!(
        (s.speed_kmh, s.heading_deg, s.odometer_km, s.ignition),
        (Some(36.5), Some(90.0), Some(12345.6), Some(true))
    );
    assert_eq!((no_fix.lat, no_fix.lon, no_fix.position_valid), (-30.0, -122.0, false));
    assert_eq!(earlier.speed_kmh, Some(30.0));
    let state = app.wait_for_state(&vin, "at the newest location", |s| s.ts == at(20)).await?;
    assert_eq!((state.lat, state.lon), (Some(30.0165), Some(122.1068)), "a point without a fix never moves the car");
    app.wait_until("the batch's bad item is a dead letter", || async {
        Ok(!app.dead_letters_of(&vin).await?.is_empty())
    })
    .await?;
    let dead = app.dead_letters_of(&vin).await?;
    assert_eq!(dead.len(), 1, "only the batch's bad item: {dead:?}");
    assert_eq!((dead[0].reason, dead[0].topic.as_str()), (DeadLetterReason::InvalidSample, topic.as_str()));
    assert!(dead[0].detail.contains("1 of 3") && dead[0].detail.contains("lat"), "{}", dead[0].detail);
    Ok(())
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_emqx_messages_go_to_the_dead_letters_with_their_reason() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Db::Sqlite, read_both).await;
    let vin = random_vin();
    let phone = random_phone();
    register_with_phone(&app, &vin, &phone).await?;
    let unknown_vin = random_vin();
    let unknown_phone = random_phone();
    let mut p = Publisher::connect().await?;
    let info = gbt_topic(&vin, false);
    let good = || vec![gbt_vehicle(100, 1000, 3500, 10_000, 50), gbt_location(0, 30_000_000, 122_000_000)];
    p.publish(&info, b"##\x02 not json".to_vec()).await?;
    p.publish(&info, br#"{"Cmd": 2, "Encrypt": 1}"#.to_vec()).await?;
    p.publish(&info, gbt_report(&random_vin(), at(0), good())).await?;
    p.publish(&info, gbt_report(&vin, at(1), vec![gbt_vehicle(100, 1000, 3500, 10_000, 50)])).await?;
    p.publish(
        &info,
        gbt_report(
            &vin,
            at(2),
            vec![gbt_vehicle(100, 1000, 3500, 10_000, 101), gbt_location(0, 30_000_000, 122_000_000)],
        ),
    )
    .await?;
    let mut encrypted: Value = serde_json::from_slice(&gbt_report(&vin, at(3), good()))?;
    encrypted["Encrypt"] = json!(3);
    p.publish(&info, serde_json::to_vec(&encrypted)?).await?;
    let mut big = gbt_report(&vin, at(4), good());
    big.extend(std::iter::repeat_n(b' ', 300 * 1024));
    p.publish(&info, big).await?;
    p.publish(&gbt_topic(&unknown_vin, false), gbt_report(&unknown_vin, at(0), good())).await?;
    // JT/T 808: an unknown phone, a header naming another terminal, a location without its time.
    let location = jt808_location(at(0), JT808_FIXED, 30_000_000, 122_000_000, 100, 1000);
    p.publish(&jt808_topic(&unknown_phone), jt808_message(&unknown_phone, 0x0200, location.clone())).await?;
    p.publish(&jt808_topic(&phone), jt808_message(&random_phone(), 0x0200, location.clone())).await?;
    let mut timeless = location.clone();
    timeless["time"] = json!(null);
    p.publish(&jt808_topic(&phone), jt808_message(&phone, 0x0200, timeless)).await?;
    p.publish(&jt808_topic(&phone), b"[]".to_vec()).await?;
    // Encrypted: the gateway passes the body on undeciphered.
    let mut encrypted: Value = serde_json::from_slice(&jt808_message(&phone, 0x0200, location.clone()))?;
    encrypted["header"]["encrypt"] = json!(1);
    p.publish(&jt808_topic(&phone), serde_json::to_vec(&encrypted)?).await?;
    // Good input in between is kept.
    p.publish(&info, gbt_report(&vin, at(5), good())).await?;
    p.publish(
        &jt808_topic(&phone),
        jt808_message(&phone, 0x0200, jt808_location(at(6), JT808_FIXED, 30_000_000, 122_000_000, 0, 1000)),
    )
    .await?;
    app.wait_for_samples(&vin, 2).await?;
    app.wait_until("the dead letters of both topics", || async {
        Ok(dead_letters_on(&app, &info).await?.len() >= 7
            && dead_letters_on(&app, &jt808_topic(&phone)).await?.len() >= 4)
    })
    .await?;
    let dead_gbt = dead_letters_on(&app, &info).await?;
    let mut gbt: Vec<&str> = dead_gbt.iter().map(|d| d.reason.as_str()).collect();
    gbt.sort();
    assert_eq!(
        gbt,
        [
            "encrypted",
            "invalid_sample",
            "invalid_sample",
            "malformed_json",
            "malformed_json",
            "too_large",
            "vin_mismatch"
        ]
    );
    let dead_jt808 = dead_letters_on(&app, &jt808_topic(&phone)).await?;
    let mut jt808: Vec<&str> = dead_jt808.iter().map(|d| d.reason.as_str()).collect();
    jt808.sort();
    assert_eq!(jt808, ["encrypted", "invalid_sample", "malformed_json", "vin_mismatch"]);
    assert!(dead_jt808.iter().all(|d| d.vin.as_deref() == Some(vin.as_str())), "named by the phone's vehicle");
    app.wait_until("the unknown vehicles' dead letters", || async {
        Ok(!dead_letters_on(&app, &gbt_topic(&unknown_vin, false)).await?.is_empty()
            && !dead_letters_on(&app, &jt808_topic(&unknown_phone)).await?.is_empty())
    })
    .await?;
    assert_eq!(
        dead_letters_on(&app, &gbt_topic(&unknown_vin, false)).await?[0].reason,
        DeadLetterReason::UnknownVehicle
    );
    let unknown = &dead_letters_on(&app, &jt808_topic(&unknown_phone)).await?[0];
    assert_eq!((unknown.reason, unknown.vin.as_deref()), (DeadLetterReason::UnknownVehicle, None));
    assert!(unknown.detail.contains(&unknown_phone), "{}", unknown.detail);
    Ok(())
}

/// Publishes one report on each gateway's topic, then a JSON marker: once the marker is
/// stored, whatever fleetd was going to read of the reports it has read.
async fn publish_both_then_a_marker(p: &mut Publisher, vin: &str, phone: &str) -> anyhow::Result<()> {
    let report = vec![gbt_vehicle(100, 1000, 3500, 10_000, 50), gbt_location(0, 30_000_000, 122_000_000)];
    p.publish(&gbt_topic(vin, false), gbt_report(vin, at(0), report)).await?;
    let location = jt808_location(at(1), JT808_FIXED, 30_000_000, 122_000_000, 0, 1000);
    p.publish(&jt808_topic(phone), jt808_message(phone, 0x0200, location)).await?;
    p.json(vin, &json!({"ts": at(99).to_rfc3339(), "lat": 30.0, "lon": 122.0})).await
}

/// Waits for the marker of [`publish_both_then_a_marker`]. Batches commit in order, so the
/// reports, delivered before it, are stored by then if they are read at all.
async fn wait_for_the_marker(app: &TestApp, vin: &str) -> anyhow::Result<()> {
    app.wait_until("the JSON marker", || async {
        Ok(track(app, vin).await?.iter().any(|s| s.source == SampleSource::Json))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_setting_off_the_gateways_topics_are_not_read() -> anyhow::Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await;
    let vin = random_vin();
    let phone = random_phone();
    register_with_phone(&app, &vin, &phone).await?;
    let mut p = Publisher::connect().await?;
    publish_both_then_a_marker(&mut p, &vin, &phone).await?;
    wait_for_the_marker(&app, &vin).await?;
    let track = track(&app, &vin).await?;
    assert_eq!((track.len(), track[0].source), (1, SampleSource::Json), "only fleetd's own topic is read");
    assert!(app.dead_letters_of(&vin).await?.is_empty());
    assert!(dead_letters_on(&app, &jt808_topic(&phone)).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_gateways_named_are_read() -> anyhow::Result<()> {
    let app =
        TestApp::spawn_with(Db::Sqlite, |s| s.emqx_gateways = EmqxGateways { gbt32960: false, jt808: true }).await;
    let vin = random_vin();
    let phone = random_phone();
    register_with_phone(&app, &vin, &phone).await?;
    let mut p = Publisher::connect().await?;
    publish_both_then_a_marker(&mut p, &vin, &phone).await?;
    wait_for_the_marker(&app, &vin).await?;
    let sources: Vec<SampleSource> = track(&app, &vin).await?.iter().map(|s| s.source).collect();
    assert_eq!(sources, [SampleSource::Jt808, SampleSource::Json]);
    assert!(app.dead_letters_of(&vin).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_turned_off_is_no_longer_read_by_the_persistent_session() -> anyhow::Result<()> {
    let mut app = TestApp::spawn_with(Db::Sqlite, read_both).await;
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    app.stop().await;
    // Published while fleetd is down: the broker keeps it for the session's subscription.
    let mut p = Publisher::connect().await?;
    let report = || vec![gbt_vehicle(100, 1000, 3500, 10_000, 50), gbt_location(0, 30_000_000, 122_000_000)];
    p.publish(&gbt_topic(&vin, false), gbt_report(&vin, at(0), report())).await?;
    app.settings.emqx_gateways = EmqxGateways::default();
    app.restart().await;
    app.wait_until("the queued report dead-lettered unread", || async {
        Ok(app.dead_letters_of(&vin).await?.iter().any(|d| d.reason == DeadLetterReason::BadTopic))
    })
    .await?;
    // The subscription is gone: a report published now does not even arrive.
    p.publish(&gbt_topic(&vin, false), gbt_report(&vin, at(1), report())).await?;
    p.json(&vin, &json!({"ts": at(99).to_rfc3339(), "lat": 30.0, "lon": 122.0})).await?;
    wait_for_the_marker(&app, &vin).await?;
    assert_eq!(track(&app, &vin).await?.len(), 1, "only the marker is stored");
    assert_eq!(app.dead_letters_of(&vin).await?.len(), 1, "the report published after the restart never came");
    Ok(())
}
