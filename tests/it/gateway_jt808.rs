//! The JT/T 808 TCP gateway end to end: a Beidou terminal on a real socket (2013 and 2019
//! headers), fleetd in process, both databases. Registration gives a code the terminal
//! authenticates with; locations are answered only once durable.

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, SubsecRound, Utc};
use fleet_domain::{DeadLetterReason, Sample, SampleSource, Vin};
use fleet_jt808::{
    Authentication, Body, Edition, Extra, FrameReader, Header, Location, LocationBatch, Message, Register,
    decode_message, encode_message, id, sample_location,
};
use fleet_tests::{TestApp, both_with, random_vin};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE: Duration = Duration::from_secs(2);
/// How long a test waits to be sure no answer comes.
const QUIET: Duration = Duration::from_millis(700);
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

fn gateway_on(s: &mut fleetd::config::Settings) {
    s.jt808_addr = Some("127.0.0.1:0".parse().expect("valid address"));
    s.gateway.idle = IDLE;
}

/// An 11-digit phone no other test uses.
fn random_phone() -> String {
    format!("1{:010}", rand::rng().random_range(0..10_000_000_000u64))
}

fn recent(seconds_ago: i64) -> DateTime<Utc> {
    (Utc::now() - ChronoDuration::seconds(seconds_ago)).trunc_subsecs(0)
}

fn location(vin: &str, at: DateTime<Utc>) -> Location {
    let mut s = Sample::at(Vin::parse(vin).unwrap(), at, 30.0123, 122.1034, SampleSource::Jt808);
    s.speed_kmh = Some(42.5);
    s.heading_deg = Some(90.0);
    s.odometer_km = Some(12345.6);
    s.ignition = Some(true);
    let mut l = sample_location(&s);
    l.altitude_m = 12;
    l.extras.push(Extra { id: 0x30, value: vec![25] });
    l
}

/// A Beidou terminal on a socket.
struct Terminal {
    stream: TcpStream,
    reader: FrameReader,
    phone: String,
    edition: Edition,
    serial: u16,
}

impl Terminal {
    async fn connect(app: &TestApp, phone: &str, edition: Edition) -> anyhow::Result<Self> {
        let addr = app.jt808_addr().expect("the gateway runs");
        Ok(Self {
            stream: TcpStream::connect(addr).await?,
            reader: FrameReader::default(),
            phone: phone.to_owned(),
            edition,
            serial: 0,
        })
    }

    /// The frame of a message from this terminal, and its serial.
    fn frame(&mut self, id: u16, body: &Body) -> (Vec<u8>, u16) {
        self.serial += 1;
        let header = Header::new(self.edition, id, self.phone.clone(), self.serial);
        (encode_message(&header, body).expect("encodes"), self.serial)
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Sends a message; gives its serial.
    async fn say(&mut self, id: u16, body: Body) -> anyhow::Result<u16> {
        let (frame, serial) = self.frame(id, &body);
        self.send(&frame).await?;
        Ok(serial)
    }

    async fn next(&mut self, within: Duration) -> anyhow::Result<Option<Message>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = [0u8; 1024];
        loop {
            if let Some(frame) = self.reader.next_frame() {
                return Ok(Some(decode_message(&frame)?));
            }
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return Ok(None),
                Ok(r) => r?,
            };
            anyhow::ensure!(n > 0, "the gateway closed the connection");
            self.reader.push(&buf[..n]);
        }
    }

    async fn answer(&mut self) -> anyhow::Result<Message> {
        self.next(ANSWER_WITHIN).await?.ok_or_else(|| anyhow::anyhow!("no answer within {ANSWER_WITHIN:?}"))
    }

    async fn silence(&mut self) -> anyhow::Result<()> {
        match self.next(QUIET).await? {
            None => Ok(()),
            Some(m) => anyhow::bail!("an answer came where none was due: {m:?}"),
        }
    }

    /// Expects the platform's general response to message `id` with `serial`: gives its result.
    async fn general(&mut self, id: u16, serial: u16) -> anyhow::Result<u8> {
        let m = self.answer().await?;
        anyhow::ensure!(m.header.id == fleet_jt808::id::PLATFORM_RESPONSE, "not a general response: {m:?}");
        anyhow::ensure!(m.header.phone == self.phone && m.header.edition == self.edition, "header of {m:?}");
        let Body::PlatformResponse(r) = m.body else { anyhow::bail!("body of {m:?}") };
        anyhow::ensure!((r.id, r.serial) == (id, serial), "answers {:#06x}/{} not {id:#06x}/{serial}", r.id, r.serial);
        Ok(r.result)
    }

    /// Registers; gives the result and the code.
    async fn register(&mut self) -> anyhow::Result<(u8, Vec<u8>)> {
        let body = Body::Register(Register {
            province: 33,
            city: 900,
            maker: fleet_jt808::GbkText::encode_lossy("ZSGOV"),
            model: fleet_jt808::GbkText::encode_lossy("BD-1"),
            terminal_id: fleet_jt808::GbkText::encode_lossy("T0001"),
            plate_colour: 5,
            plate: fleet_jt808::GbkText::encode_lossy("浙LD12345"),
        });
        let serial = self.say(id::REGISTER, body).await?;
        let m = self.answer().await?;
        let Body::RegisterResponse(r) = m.body else { anyhow::bail!("not a registration response: {m:?}") };
        anyhow::ensure!(r.serial == serial, "answers serial {} not {serial}", r.serial);
        Ok((r.result, r.auth_code))
    }

    async fn authenticate(&mut self, code: &[u8]) -> anyhow::Result<u8> {
        let (imei, software_version) = match self.edition {
            Edition::V2013 => (None, None),
            Edition::V2019 => (
                Some(fleet_jt808::GbkText::encode_lossy("861234567890123")),
                Some(fleet_jt808::GbkText::encode_lossy("1.0.0")),
            ),
        };
        let body = Body::Authentication(Authentication { code: code.to_vec(), imei, software_version });
        let serial = self.say(id::AUTHENTICATION, body).await?;
        self.general(id::AUTHENTICATION, serial).await
    }

    async fn closed(&mut self, within: Duration) -> anyhow::Result<bool> {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(within, self.stream.read(&mut buf)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) | Ok(Err(_)) => Ok(true),
            Ok(Ok(n)) => anyhow::bail!("{n} unexpected bytes before the close"),
        }
    }
}

async fn track(app: &TestApp, vin: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let token = app.admin_token().await;
    let r = app.http.get(app.url(&format!("/api/v1/vehicles/{vin}/track"))).bearer_auth(token).send().await?;
    anyhow::ensure!(r.status().is_success(), "track: {}", r.status());
    let body: serde_json::Value = r.json().await?;
    Ok(body["samples"].as_array().cloned().unwrap_or_default())
}

both_with!(a_registered_terminal_is_answered_once_its_locations_are_durable, gateway_on, |app: TestApp| async move {
    let vin = random_vin();
    let phone = random_phone();
    // Registered with the padding zeros a 2013 header's BCD[6] gives the number.
    let v = app.register_vehicle_with(&vin, serde_json::json!({"terminal_phone": format!("0{phone}")})).await?;
    assert_eq!(v["terminal_phone"], phone.as_str(), "kept without its leading zeros");

    let mut t = Terminal::connect(&app, &phone, Edition::V2013).await?;
    let (result, code) = t.register().await?;
    assert_eq!(result, 0, "a known phone is registered");
    assert!(!code.is_empty(), "with an authentication code");
    // Registering again (the answer lost) gives the same code.
    assert_eq!(t.register().await?, (0, code.clone()));
    assert_eq!(t.authenticate(&code).await?, 0);
    let serial = t.say(id::HEARTBEAT, Body::Heartbeat).await?;
    assert_eq!(t.general(id::HEARTBEAT, serial).await?, 0);

    // A location in one-byte writes: answered, and by then in the track with its fields.
    let at = recent(30);
    let (frame, serial) = t.frame(id::LOCATION, &Body::Location(location(&vin, at)));
    for b in &frame {
        t.send(&[*b]).await?;
    }
    assert_eq!(t.general(id::LOCATION, serial).await?, 0);
    let samples = track(&app, &vin).await?;
    assert_eq!(samples.len(), 1, "answered only once queryable");
    let s = &samples[0];
    assert_eq!(s["source"], "jt808");
    assert_eq!(s["ts"].as_str().map(|t| t.parse::<DateTime<Utc>>().ok()), Some(Some(at)));
    assert!(
        (s["lat"].as_f64().unwrap() - 30.0123).abs() < 1e-6 && (s["lon"].as_f64().unwrap() - 122.1034).abs() < 1e-6
    );
    assert_eq!((s["speed_kmh"].as_f64(), s["odometer_km"].as_f64()), (Some(42.5), Some(12345.6)));
    assert_eq!(s["heading_deg"].as_f64(), Some(90.0));
    let blocks = &s["blocks"]["jt808"];
    assert_eq!((blocks["altitude_m"].as_u64(), blocks["extras"][0]["id"].as_u64()), (Some(12), Some(0x30)));
    assert_eq!(blocks["extras"][0]["value_hex"], "19");

    // The same location sent again: answered again, stored once.
    t.send(&frame).await?;
    assert_eq!(t.general(id::LOCATION, serial).await?, 0);
    // A batch upload, with one location without a fix (kept in the track, never moving the
    // vehicle's position), and a logout, in one write.
    let (older, nofix_at) = (recent(600), recent(20));
    let mut nofix = location(&vin, nofix_at);
    nofix.status &= !0b10;
    nofix.latitude_e6 = 29_000_000;
    let batch = Body::LocationBatch(LocationBatch { kind: 1, locations: vec![location(&vin, older), nofix] });
    let (mut burst, batch_serial) = t.frame(id::LOCATION_BATCH, &batch);
    let (logout, logout_serial) = t.frame(id::LOGOUT, &Body::Logout);
    burst.extend(logout);
    t.send(&burst).await?;
    assert_eq!(t.general(id::LOCATION_BATCH, batch_serial).await?, 0);
    assert_eq!(t.general(id::LOGOUT, logout_serial).await?, 0);
    assert_eq!(app.store.telemetry().count(Some(&vin)).await?, 3, "the resent location is stored once");
    app.wait_until("the state written", || async {
        Ok(app.store.telemetry().state(&vin).await?.is_some_and(|s| s.ts >= nofix_at))
    })
    .await?;
    let state = app.store.telemetry().state(&vin).await?.expect("a state");
    assert_eq!(state.ts, nofix_at, "the newest report is the state's time");
    assert!((state.lat.unwrap() - 30.0123).abs() < 1e-6, "a location without fix moves no position");
    assert!(app.dead_letters_of(&vin).await?.is_empty());
    Ok(())
});

both_with!(a_2019_terminal_and_a_wrong_or_unknown_one, gateway_on, |app: TestApp| async move {
    let vin = random_vin();
    let phone = format!("{}{}", random_phone(), "123");
    app.register_vehicle_with(&vin, serde_json::json!({"terminal_phone": phone})).await?;

    // An unknown phone: "no such terminal", and no code.
    let mut stranger = Terminal::connect(&app, &random_phone(), Edition::V2019).await?;
    let (result, code) = stranger.register().await?;
    assert_eq!((result, code.len()), (4, 0));
    // Authenticating anyway fails, and its locations are not taken.
    assert_eq!(stranger.authenticate(b"GUESSWORK").await?, 1);

    let mut t = Terminal::connect(&app, &phone, Edition::V2019).await?;
    // A location before authentication: a dead letter, no answer.
    t.say(id::LOCATION, Body::Location(location(&vin, recent(50)))).await?;
    t.silence().await?;
    let (result, code) = t.register().await?;
    assert_eq!(result, 0);
    assert_eq!(t.authenticate(b"NOT-THE-CODE").await?, 1, "a wrong code is refused");
    // Garbage before a frame is skipped; the authentication after it works.
    t.send(b"\x01\x02garbage").await?;
    assert_eq!(t.authenticate(&code).await?, 0);
    // A bad check code: a dead letter, no answer, and the connection goes on.
    let (mut broken, _) = t.frame(id::LOCATION, &Body::Location(location(&vin, recent(40))));
    let n = broken.len();
    broken[n - 2] ^= 0x01;
    if broken[n - 2] == 0x7e || broken[n - 2] == 0x7d {
        broken[n - 2] ^= 0x03;
    }
    t.send(&broken).await?;
    t.silence().await?;
    // A latitude past 90°: answered "bad message" once its dead letter is durable.
    let mut wild = location(&vin, recent(35));
    wild.latitude_e6 = 91_000_000;
    let serial = t.say(id::LOCATION, Body::Location(wild)).await?;
    assert_eq!(t.general(id::LOCATION, serial).await?, 2);
    // A message the gateway does not take: "unsupported".
    let serial = t.say(0x0900, Body::Other(vec![0xF0, 1, 2, 3])).await?;
    assert_eq!(t.general(0x0900, serial).await?, 3);
    let at = recent(30);
    let serial = t.say(id::LOCATION, Body::Location(location(&vin, at))).await?;
    assert_eq!(t.general(id::LOCATION, serial).await?, 0);
    assert_eq!(app.store.telemetry().count(Some(&vin)).await?, 1, "only the good location is stored");

    app.wait_until("the dead letters", || async { Ok(app.dead_letters_of(&vin).await?.len() >= 3) }).await?;
    let mut reasons: Vec<_> = app.dead_letters_of(&vin).await?.into_iter().map(|d| d.reason.as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["bad_checksum", "invalid_sample", "unsupported_command"], "the authenticated connection's");
    // The location before authentication is kept under no vehicle: nobody is known yet.
    let all = app.store.dead_letters().recent(1000, None).await?;
    assert!(
        all.iter()
            .any(|d| d.reason == DeadLetterReason::NotLoggedIn && d.topic.starts_with("jt808/tcp/") && d.vin.is_none()),
        "the early location"
    );

    // A silent connection is closed after the idle time.
    let mut idle = Terminal::connect(&app, &phone, Edition::V2013).await?;
    assert!(!idle.closed(IDLE / 2).await?, "closed before the idle time");
    assert!(idle.closed(IDLE * 3).await?, "still open well past the idle time");
    Ok(())
});

both_with!(a_terminal_phone_is_validated_and_unique, gateway_on, |app: TestApp| async move {
    let phone = random_phone();
    app.register_vehicle_with(&random_vin(), serde_json::json!({"terminal_phone": phone})).await?;
    let token = app.admin_token().await;
    let body = |vin: &str, phone: &str| {
        serde_json::json!({"vin": vin, "plate": format!("浙L{}", &vin[12..]), "model": "BYD Han EV", "seats": 5,
            "battery_kwh": 76.9, "consumption_kwh_per_100km": 15.0, "terminal_phone": phone})
    };
    let post = |b: serde_json::Value| app.http.post(app.url("/api/v1/vehicles")).bearer_auth(&token).json(&b).send();
    let taken = post(body(&random_vin(), &format!("00{phone}"))).await?;
    assert_eq!(taken.status().as_u16(), 409, "the same terminal, padded");
    let text = taken.text().await?;
    assert!(text.contains("terminal_phone"), "{text}");
    let bad = post(body(&random_vin(), "139-0000")).await?;
    assert_eq!(bad.status().as_u16(), 422);
    assert!(bad.text().await?.contains("terminal_phone"));
    Ok(())
});

both_with!(a_car_with_a_beidou_terminal_and_a_t_box_has_one_state, gateway_on, |app: TestApp| async move {
    let vin = random_vin();
    let phone = random_phone();
    app.register_vehicle_with(&vin, serde_json::json!({"terminal_phone": phone})).await?;
    // The T-box (here over MQTT, as GB/T 32960) reports charge and a position.
    let (t1, t2, t0) = (recent(60), recent(30), recent(90));
    let mut tbox = Sample::at(Vin::parse(&vin)?, t1, 30.0500, 122.2000, SampleSource::Gbt2016);
    tbox.soc_pct = Some(64.0);
    let mut p = fleet_tests::Publisher::connect().await?;
    p.gbt(&vin, fleet_sim::terminal::encode_sample(fleet_ingest::decode::gbt32960::Edition::V2016, false, &tbox))
        .await?;
    app.wait_for_state(&vin, "the T-box's report", |s| s.ts == t1).await?;

    // The Beidou terminal's newer location moves the car; its charge stays the T-box's.
    let mut t = Terminal::connect(&app, &phone, Edition::V2013).await?;
    let (_, code) = t.register().await?;
    assert_eq!(t.authenticate(&code).await?, 0);
    let serial = t.say(id::LOCATION, Body::Location(location(&vin, t2))).await?;
    assert_eq!(t.general(id::LOCATION, serial).await?, 0);
    let state = app.wait_for_state(&vin, "the terminal's location", |s| s.ts == t2).await?;
    assert!((state.lat.unwrap() - 30.0123).abs() < 1e-6, "the newest position, from either way in");
    assert_eq!(state.soc_pct, Some(64.0), "the battery from the one that reports it");

    // An older T-box report is stored, and moves nothing.
    let mut old = Sample::at(Vin::parse(&vin)?, t0, 29.9, 122.0, SampleSource::Gbt2016);
    old.soc_pct = Some(90.0);
    p.gbt(&vin, fleet_sim::terminal::encode_sample(fleet_ingest::decode::gbt32960::Edition::V2016, false, &old))
        .await?;
    app.wait_for_samples(&vin, 3).await?;
    app.wait_until("every committed state written", || async {
        let metrics = app.http.get(app.url("/metrics")).send().await?.text().await?;
        Ok(metrics.lines().any(|l| l == "fleet_ingest_states_unwritten 0"))
    })
    .await?;
    let state = app.wait_for_state(&vin, "unchanged", |_| true).await?;
    assert_eq!((state.ts, state.soc_pct), (t2, Some(64.0)));
    assert!((state.lat.unwrap() - 30.0123).abs() < 1e-6);
    Ok(())
});
