use chrono::TimeZone;
use fleet_gbt32960::{Command, decode_frame, report_sample};

use super::*;

const TICK: Duration = Duration::from_secs(5);

/// An outbox that records what it takes, up to an optional capacity.
#[derive(Default)]
struct Recorder {
    taken: Vec<(String, Vec<u8>)>,
    capacity: Option<usize>,
}

impl Outbox for Recorder {
    fn offer(&mut self, topic: &str, payload: Vec<u8>) -> Offer {
        if self.capacity.is_some_and(|c| self.taken.len() >= c) {
            return Offer::Full;
        }
        self.taken.push((topic.to_owned(), payload));
        Offer::Taken
    }
}

fn vin() -> Vin {
    Vin::parse("LZSEVS1M0SZ000001").unwrap()
}

fn sample(i: i64, source: SampleSource) -> Sample {
    let ts = Utc.with_ymd_and_hms(2025, 11, 26, 2, 0, 0).unwrap() + TimeDelta::seconds(5 * i);
    Sample {
        speed_kmh: Some(30.0),
        soc_pct: Some(70.0),
        odometer_km: Some(1_000.0 + i as f64 / 10.0),
        charging: Some(false),
        ignition: Some(true),
        battery_voltage_v: Some(380.0),
        battery_current_a: Some(20.0),
        battery_temp_c: Some(25.0),
        ..Sample::at(vin(), ts, 30.0, 122.1, source)
    }
}

fn commands(messages: &[(String, Vec<u8>)]) -> Vec<Command> {
    messages.iter().map(|(_, p)| decode_frame(p).unwrap().command).collect()
}

#[test]
fn a_json_car_sends_each_sample_as_one_object_on_its_telemetry_topic() {
    let mut up = Uplink::new(vin(), Protocol::Json, 1);
    let mut out = Recorder::default();
    for i in 0..3 {
        up.handle(sample(i, SampleSource::Json), TICK, Some(1), &mut out);
    }
    assert_eq!(out.taken.len(), 3);
    for (topic, payload) in &out.taken {
        assert_eq!(topic, "fleet/v1/vehicles/LZSEVS1M0SZ000001/telemetry");
        let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert!(v.is_object());
    }
}

#[test]
fn a_json_car_keeps_samples_while_the_link_is_down_and_uploads_them_as_one_batch() {
    let mut up = Uplink::new(vin(), Protocol::Json, 1);
    let mut out = Recorder::default();
    for i in 0..50 {
        up.handle(sample(i, SampleSource::Json), TICK, None, &mut out);
    }
    assert!(out.taken.is_empty());
    assert_eq!(up.backlog_len(), 50);
    up.handle(sample(50, SampleSource::Json), TICK, Some(1), &mut out);
    assert_eq!(out.taken.len(), 2, "the live sample, then the backlog");
    let batch = fleet_ingest::decode::json::decode(&vin(), &out.taken[1].1).unwrap();
    assert_eq!(batch.len(), 50);
    let first = batch[0].as_ref().unwrap();
    assert_eq!(first.ts, sample(0, SampleSource::Json).ts);
    assert_eq!(up.backlog_len(), 0);
}

#[test]
fn a_long_outage_is_uploaded_in_batches_of_at_most_a_thousand() {
    let mut up = Uplink::new(vin(), Protocol::Json, 1);
    let mut out = Recorder::default();
    for i in 0..2_400 {
        up.handle(sample(i, SampleSource::Json), TICK, None, &mut out);
    }
    let mut i = 2_400;
    while up.backlog_len() > 0 {
        up.handle(sample(i, SampleSource::Json), TICK, Some(1), &mut out);
        i += 1;
    }
    let mut total = 0;
    for (_, payload) in &out.taken {
        let n = fleet_ingest::decode::json::decode(&vin(), payload).unwrap().len();
        assert!(n <= 1_000);
        total += n;
    }
    assert_eq!(total, i as usize);
}

#[test]
fn a_gbt_car_logs_in_then_reports_and_reissues_its_backlog_after_an_outage() {
    let mut up = Uplink::new(vin(), Protocol::Gbt32960(Edition::V2025), 1);
    let mut out = Recorder::default();
    up.handle(sample(0, SampleSource::Gbt2025), TICK, Some(1), &mut out);
    assert_eq!(commands(&out.taken), [Command::Login, Command::RealtimeReport, Command::Heartbeat]);
    assert_eq!(out.taken[0].0, "fleet/v1/vehicles/LZSEVS1M0SZ000001/gbt32960");
    out.taken.clear();
    for i in 1..=5 {
        up.handle(sample(i, SampleSource::Gbt2025), TICK, None, &mut out);
    }
    // Back on a new connection: a new session.
    up.handle(sample(6, SampleSource::Gbt2025), TICK, Some(2), &mut out);
    let cmds = commands(&out.taken);
    assert_eq!(cmds[..2], [Command::Login, Command::RealtimeReport]);
    assert_eq!(cmds[2..].iter().filter(|c| **c == Command::ReissueReport).count(), 5);
    let reissued: Vec<Sample> = out.taken[2..]
        .iter()
        .map(|(_, p)| decode_frame(p).unwrap())
        .filter(|f| f.command == Command::ReissueReport)
        .map(|f| report_sample(&f, &vin()).unwrap().unwrap())
        .collect();
    assert_eq!(reissued[0].ts, sample(1, SampleSource::Gbt2025).ts);
    assert_eq!(reissued[0].source, SampleSource::Gbt2025);
}

#[test]
fn a_gbt_car_in_a_dead_spot_logs_in_again_when_it_returns() {
    let mut up = Uplink::new(vin(), Protocol::Gbt32960(Edition::V2016), 7);
    let mut out = Recorder::default();
    up.handle(sample(0, SampleSource::Gbt2016), TICK, Some(1), &mut out);
    // So long a step that a dead spot is certain.
    up.handle(sample(1, SampleSource::Gbt2016), Duration::from_secs(3_600 * 10_000), Some(1), &mut out);
    assert!(up.is_offline());
    out.taken.clear();
    let mut i = 2;
    while up.is_offline() || up.backlog_len() > 0 {
        up.handle(sample(i, SampleSource::Gbt2016), Duration::ZERO, Some(1), &mut out);
        i += 1;
        assert!(i < 1_000, "the dead spot lasts minutes");
    }
    let cmds = commands(&out.taken);
    assert_eq!(cmds[0], Command::Login);
    assert!(cmds.contains(&Command::ReissueReport));
    // Login serials count up within a day.
    let serials: Vec<u16> = out
        .taken
        .iter()
        .filter_map(|(_, p)| match decode_frame(p).unwrap().body {
            fleet_gbt32960::Body::Login(l) => Some(l.serial),
            _ => None,
        })
        .collect();
    assert_eq!(serials, [2]);
}

#[test]
fn a_full_outbox_loses_nothing() {
    let mut up = Uplink::new(vin(), Protocol::Json, 1);
    let mut out = Recorder { capacity: Some(0), ..Recorder::default() };
    for i in 0..10 {
        let d = up.handle(sample(i, SampleSource::Json), TICK, Some(1), &mut out);
        assert_eq!(d, Delivery::default());
    }
    assert_eq!(up.backlog_len(), 10);
    out.capacity = None;
    up.handle(sample(10, SampleSource::Json), TICK, Some(1), &mut out);
    assert_eq!(up.backlog_len(), 0);
}

#[test]
fn logout_repeats_the_login_serial_and_ends_the_session() {
    let mut up = Uplink::new(vin(), Protocol::Gbt32960(Edition::V2016), 1);
    let mut out = Recorder::default();
    up.handle(sample(0, SampleSource::Gbt2016), TICK, Some(3), &mut out);
    out.taken.clear();
    up.logout(sample(1, SampleSource::Gbt2016).ts, Some(3), &mut out);
    assert_eq!(commands(&out.taken), [Command::Logout]);
    up.logout(sample(2, SampleSource::Gbt2016).ts, Some(3), &mut out);
    assert_eq!(out.taken.len(), 1, "only once");
}
