//! The GB/T 32960.3 TCP gateway end to end: a simulated terminal on a real socket, fleetd
//! in-process, both databases. Answers come only once a report is durable.

use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, SubsecRound, Utc};
use fleet_domain::{DeadLetterReason, Sample, SampleSource, Vin};
use fleet_ingest::decode::gbt32960::{self, Edition, FrameSplitter, Piece};
use fleet_sim::terminal;
use fleet_tests::{TestApp, both_with, random_vin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short, so the idle test is quick; every other test speaks well within it.
const IDLE: Duration = Duration::from_secs(2);
/// How long a test waits to be sure no answer comes.
const QUIET: Duration = Duration::from_millis(700);
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

fn gateway_on(s: &mut fleetd::config::Settings) {
    s.gbt32960_addr = Some("127.0.0.1:0".parse().expect("valid address"));
    s.gateway.idle = IDLE;
}

/// A recent whole second (frames carry seconds), inside the track's default window.
fn recent(seconds_ago: i64) -> DateTime<Utc> {
    (Utc::now() - ChronoDuration::seconds(seconds_ago)).trunc_subsecs(0)
}

fn beijing(t: DateTime<Utc>) -> NaiveDateTime {
    (t + ChronoDuration::hours(8)).naive_utc()
}

fn time_bytes(t: NaiveDateTime) -> Vec<u8> {
    t.format("%y %m %d %H %M %S").to_string().split(' ').map(|p| p.parse::<u8>().unwrap()).collect()
}

fn sample(vin: &str, at: DateTime<Utc>) -> Sample {
    let mut x = Sample::at(Vin::parse(vin).unwrap(), at, 30.0123, 122.1034, SampleSource::Gbt2016);
    x.speed_kmh = Some(42.5);
    x.soc_pct = Some(77.0);
    x.odometer_km = Some(12345.6);
    x
}

/// A command frame built by hand (for commands the encoders do not make).
fn command(edition: Edition, cmd: u8, vin: &str, data: &[u8]) -> Vec<u8> {
    let m = edition.marker();
    let mut f = vec![m, m, cmd, 0xFE];
    f.extend_from_slice(vin.as_bytes());
    f.push(0x01);
    f.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
    f.extend_from_slice(data);
    f.push(f[2..].iter().fold(0, |a, b| a ^ b));
    f
}

/// The simulated terminal.
struct Terminal {
    stream: TcpStream,
    splitter: FrameSplitter,
    frames: Vec<Vec<u8>>,
}

impl Terminal {
    async fn connect(app: &TestApp) -> anyhow::Result<Self> {
        let addr = app.gbt32960_addr().expect("the gateway runs");
        Ok(Self { stream: TcpStream::connect(addr).await?, splitter: FrameSplitter::new(), frames: Vec::new() })
    }

    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// The next frame within `within`; None if nothing came; an error if the socket closed.
    async fn next(&mut self, within: Duration) -> anyhow::Result<Option<Vec<u8>>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = [0u8; 1024];
        loop {
            if !self.frames.is_empty() {
                return Ok(Some(self.frames.remove(0)));
            }
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return Ok(None),
                Ok(r) => r?,
            };
            anyhow::ensure!(n > 0, "the gateway closed the connection");
            for piece in self.splitter.feed(&buf[..n]) {
                match piece {
                    Piece::Frame(f) => self.frames.push(f),
                    other => anyhow::bail!("the gateway sent a bad frame: {other:?}"),
                }
            }
        }
    }

    async fn answer(&mut self) -> anyhow::Result<Vec<u8>> {
        self.next(ANSWER_WITHIN).await?.ok_or_else(|| anyhow::anyhow!("no answer within {ANSWER_WITHIN:?}"))
    }

    async fn silence(&mut self) -> anyhow::Result<()> {
        match self.next(QUIET).await? {
            None => Ok(()),
            Some(f) => anyhow::bail!("an answer came where none was due: {f:02x?}"),
        }
    }

    /// True once the gateway has closed the connection (within `within`).
    async fn closed(&mut self, within: Duration) -> anyhow::Result<bool> {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(within, self.stream.read(&mut buf)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) | Ok(Err(_)) => Ok(true),
            Ok(Ok(n)) => anyhow::bail!("{n} unexpected bytes before the close"),
        }
    }
}

/// Checks an answer: the request's command and VIN, the flag, and its data.
fn check_answer(answer: &[u8], cmd: u8, flag: u8, vin: &str, data: &[u8]) {
    assert_eq!((answer[2], answer[3]), (cmd, flag), "command and flag of {answer:02x?}");
    assert_eq!(&answer[4..21], vin.as_bytes());
    assert_eq!(&answer[24..answer.len() - 1], data, "data of {answer:02x?}");
}

async fn track_len(app: &TestApp, vin: &str) -> anyhow::Result<usize> {
    let token = app.admin_token().await;
    let r = app.http.get(app.url(&format!("/api/v1/vehicles/{vin}/track"))).bearer_auth(token).send().await?;
    anyhow::ensure!(r.status().is_success(), "track: {}", r.status());
    let body: serde_json::Value = r.json().await?;
    Ok(body["samples"].as_array().map_or(0, Vec::len))
}

both_with!(a_logged_in_terminal_is_answered_once_its_reports_are_durable, gateway_on, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let v = Vin::parse(&vin)?;
    let mut t = Terminal::connect(&app).await?;
    let login_at = beijing(recent(30));
    t.send(&terminal::encode_login(Edition::V2016, &v, login_at, 1)).await?;
    check_answer(&t.answer().await?, 0x01, 0x01, &vin, &time_bytes(login_at));

    // A report in one-byte writes: answered with its time, and by then in the track.
    let at = recent(20);
    let report = terminal::encode_sample(Edition::V2016, false, &sample(&vin, at));
    for b in &report {
        t.send(&[*b]).await?;
    }
    check_answer(&t.answer().await?, 0x02, 0x01, &vin, &time_bytes(beijing(at)));
    assert_eq!(track_len(&app, &vin).await?, 1, "answered only once queryable");

    // Sent again (the answer was lost, say): answered again, stored once.
    t.send(&report).await?;
    check_answer(&t.answer().await?, 0x02, 0x01, &vin, &time_bytes(beijing(at)));
    // A re-issued report of the 2025 edition, a heartbeat and a time calibration in one write.
    let older = recent(600);
    let mut reissued = sample(&vin, older);
    reissued.source = SampleSource::Gbt2025;
    let mut burst = terminal::encode_sample(Edition::V2025, true, &reissued);
    burst.extend(gbt32960::encode_heartbeat(Edition::V2016, &v));
    burst.extend(command(Edition::V2016, 0x08, &vin, &[]));
    t.send(&burst).await?;
    let first = t.answer().await?;
    check_answer(&first, 0x03, 0x01, &vin, &time_bytes(beijing(older)));
    assert_eq!(&first[..2], b"$$", "answered in the request's edition");
    check_answer(&t.answer().await?, 0x07, 0x01, &vin, &[]);
    let calibration = t.answer().await?;
    assert_eq!((calibration[2], calibration[3], calibration.len()), (0x08, 0x01, 31));
    let now_bj = beijing(Utc::now());
    let told = NaiveDateTime::parse_from_str(
        &format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}",
            calibration[24], calibration[25], calibration[26], calibration[27], calibration[28], calibration[29]
        ),
        "%y%m%d%H%M%S",
    )?;
    assert!((now_bj - told).num_seconds().abs() <= 5, "Beijing time now: {told} vs {now_bj}");
    assert_eq!(app.store.telemetry().count(Some(&vin)).await?, 2, "the resent report is stored once");

    t.send(&gbt32960::encode_logout(Edition::V2016, &v, login_at, 1)).await?;
    check_answer(&t.answer().await?, 0x04, 0x01, &vin, &time_bytes(login_at));
    assert!(app.dead_letters_of(&vin).await?.is_empty());
    Ok(())
});

both_with!(frames_out_of_turn_or_broken_are_dead_letters_without_answer, gateway_on, |app: TestApp| async move {
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let v = Vin::parse(&vin)?;
    let mut t = Terminal::connect(&app).await?;
    // A report before the login.
    let early = terminal::encode_sample(Edition::V2016, false, &sample(&vin, recent(40)));
    t.send(&early).await?;
    t.silence().await?;
    // Garbage, then the login in the same write: the garbage is skipped.
    let login_at = beijing(recent(30));
    let mut noisy = b"\x00\xffjunk#".to_vec();
    noisy.extend(terminal::encode_login(Edition::V2016, &v, login_at, 7));
    t.send(&noisy).await?;
    check_answer(&t.answer().await?, 0x01, 0x01, &vin, &time_bytes(login_at));
    // A report with a broken BCC: no answer, and the connection goes on.
    let mut broken = terminal::encode_sample(Edition::V2016, false, &sample(&vin, recent(20)));
    *broken.last_mut().unwrap() ^= 0x5A;
    t.send(&broken).await?;
    t.silence().await?;
    let at = recent(10);
    t.send(&terminal::encode_sample(Edition::V2016, false, &sample(&vin, at))).await?;
    check_answer(&t.answer().await?, 0x02, 0x01, &vin, &time_bytes(beijing(at)));
    assert_eq!(app.store.telemetry().count(Some(&vin)).await?, 1, "only the good report is stored");

    app.wait_until("the two dead letters", || async { Ok(app.dead_letters_of(&vin).await?.len() >= 2) }).await?;
    let mut reasons: Vec<_> = app.dead_letters_of(&vin).await?.into_iter().map(|d| d.reason).collect();
    reasons.sort_by_key(|r| r.as_str());
    assert_eq!(reasons, [DeadLetterReason::BadChecksum, DeadLetterReason::NotLoggedIn]);
    Ok(())
});

both_with!(an_unregistered_terminal_is_refused_and_disconnected, gateway_on, |app: TestApp| async move {
    let vin = random_vin();
    let mut t = Terminal::connect(&app).await?;
    let login_at = beijing(recent(5));
    t.send(&terminal::encode_login(Edition::V2025, &Vin::parse(&vin)?, login_at, 1)).await?;
    check_answer(&t.answer().await?, 0x01, 0x02, &vin, &time_bytes(login_at));
    assert!(t.closed(ANSWER_WITHIN).await?, "the connection is closed after the error");

    // A silent connection is closed after the idle time, not before.
    let mut idle = Terminal::connect(&app).await?;
    assert!(!idle.closed(IDLE / 2).await?, "closed before the idle time");
    assert!(idle.closed(IDLE * 3).await?, "still open well past the idle time");

    // The idle time counts from the last bytes heard, whatever they were: a connection that
    // keeps speaking stays open well past it, then closes once silent.
    let mut chatty = Terminal::connect(&app).await?;
    for _ in 0..4 {
        assert!(!chatty.closed(IDLE / 2).await?, "closed while the terminal kept speaking");
        chatty.send(b"\x00").await?;
    }
    assert!(chatty.closed(IDLE * 3).await?, "still open well past the idle time after its last bytes");
    Ok(())
});

fn platform_login(edition: Edition, at: NaiveDateTime, username: &str, password: &str) -> Vec<u8> {
    let mut data = time_bytes(at);
    data.extend_from_slice(&1u16.to_be_bytes());
    data.extend(username.bytes().chain(std::iter::repeat(0)).take(12));
    data.extend(password.bytes().chain(std::iter::repeat(0)).take(20));
    data.push(0x01);
    // A platform's login names the platform's own code where a VIN would be.
    command(edition, 0x05, "PLATFORM000000001", &data)
}

both_with!(a_platform_logs_in_with_its_account_and_forwards_any_vehicle, gateway_on, |app: TestApp| async move {
    let (a, b) = (random_vin(), random_vin());
    app.register_vehicle(&a).await?;
    app.register_vehicle(&b).await?;
    let token = app.admin_token().await;
    let body = serde_json::json!({"name": "Zhoushan carmaker", "username": "zs-oem", "password": "oem-pass-2026"});
    let r = app.http.post(app.url("/api/v1/platforms")).bearer_auth(&token).json(&body).send().await?;
    anyhow::ensure!(r.status().as_u16() == 201, "creating the platform: {}", r.status());

    // A wrong password: an error, and the connection is closed.
    let mut wrong = Terminal::connect(&app).await?;
    let at = beijing(recent(5));
    wrong.send(&platform_login(Edition::V2016, at, "zs-oem", "not-the-pass")).await?;
    check_answer(&wrong.answer().await?, 0x05, 0x02, "PLATFORM000000001", &time_bytes(at));
    assert!(wrong.closed(ANSWER_WITHIN).await?);

    let mut t = Terminal::connect(&app).await?;
    t.send(&platform_login(Edition::V2025, at, "zs-oem", "oem-pass-2026")).await?;
    check_answer(&t.answer().await?, 0x05, 0x01, "PLATFORM000000001", &time_bytes(at));
    // Reports of two vehicles on one connection, in one write; answered in order.
    let (ta, tb) = (recent(20), recent(15));
    let mut two = terminal::encode_sample(Edition::V2016, false, &sample(&a, ta));
    two.extend(terminal::encode_sample(Edition::V2016, false, &sample(&b, tb)));
    t.send(&two).await?;
    check_answer(&t.answer().await?, 0x02, 0x01, &a, &time_bytes(beijing(ta)));
    check_answer(&t.answer().await?, 0x02, 0x01, &b, &time_bytes(beijing(tb)));
    assert_eq!((track_len(&app, &a).await?, track_len(&app, &b).await?), (1, 1));
    // After the platform's logout, reports are out of turn again.
    t.send(&command(Edition::V2025, 0x06, "PLATFORM000000001", &[&time_bytes(at)[..], &[0, 1]].concat())).await?;
    check_answer(&t.answer().await?, 0x06, 0x01, "PLATFORM000000001", &time_bytes(at));
    t.send(&terminal::encode_sample(Edition::V2016, false, &sample(&a, recent(10)))).await?;
    t.silence().await?;
    app.wait_until("the report after logout dead-lettered", || async {
        Ok(app.dead_letters_of(&a).await?.iter().any(|d| d.reason == DeadLetterReason::NotLoggedIn))
    })
    .await?;
    Ok(())
});

/// The binary prints both gateways' listeners and serves on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetd_prints_the_gateway_listeners_and_answers_on_them() -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let db = fleet_tests::TestDb::create(fleet_tests::Db::Sqlite).await;
    let exe = std::env::current_exe()?;
    let bin = exe.parent().and_then(|d| d.parent()).expect("target dir").join("fleetd");
    anyhow::ensure!(bin.exists(), "{} is missing: build it with `cargo build -p fleetd`", bin.display());
    let mut child = Command::new(bin)
        .args(["run", "--http-addr", "127.0.0.1:0", "--gbt32960-addr", "127.0.0.1:0", "--jt808-addr", "127.0.0.1:0"])
        .env("FLEET_DATABASE_URL", &db.url)
        .env("FLEET_MQTT_URL", format!("mqtt://{}:{}", fleet_tests::MQTT_HOST, fleet_tests::MQTT_PORT))
        .env("FLEET_MQTT_CLIENT_ID", format!("fleetd-gw-{}", &random_vin()[9..]))
        .env("FLEET_ADMIN_PASSWORD", fleet_tests::ADMIN_PASSWORD)
        .env("FLEET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout");
    let (addr, jt808) = tokio::task::spawn_blocking(move || {
        let (mut gbt, mut jt) = (None, None);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("gbt32960 listening on ") {
                gbt = Some(a.to_owned());
            }
            if let Some(a) = line.strip_prefix("jt808 listening on ") {
                jt = Some(a.to_owned());
            }
            if gbt.is_some() && jt.is_some() {
                break;
            }
        }
        (gbt, jt)
    })
    .await?;
    let served = async {
        let jt808 = jt808.ok_or_else(|| anyhow::anyhow!("no `jt808 listening on` line"))?;
        // An unknown terminal's registration is answered "no such terminal".
        let mut stream = TcpStream::connect(&jt808).await?;
        let register = fleet_jt808::Body::Register(fleet_jt808::Register {
            province: 33,
            city: 900,
            maker: fleet_jt808::GbkText::encode_lossy("ZS"),
            model: fleet_jt808::GbkText::encode_lossy("M"),
            terminal_id: fleet_jt808::GbkText::encode_lossy("T"),
            plate_colour: 5,
            plate: fleet_jt808::GbkText::encode_lossy("浙LD00001"),
        });
        let header = fleet_jt808::Header::new(fleet_jt808::Edition::V2013, fleet_jt808::id::REGISTER, "13900000001", 1);
        stream.write_all(&fleet_jt808::encode_message(&header, &register)?).await?;
        let mut reader = fleet_jt808::FrameReader::default();
        let mut buf = [0u8; 256];
        let frame = loop {
            if let Some(f) = reader.next_frame() {
                break f;
            }
            let n = tokio::time::timeout(ANSWER_WITHIN, stream.read(&mut buf)).await??;
            anyhow::ensure!(n > 0, "the jt808 gateway closed the connection");
            reader.push(&buf[..n]);
        };
        let answer = fleet_jt808::decode_message(&frame)?;
        assert!(matches!(answer.body, fleet_jt808::Body::RegisterResponse(ref r) if r.result == 4), "{answer:?}");

        let addr = addr.ok_or_else(|| anyhow::anyhow!("no `gbt32960 listening on` line"))?;
        let mut stream = TcpStream::connect(&addr).await?;
        let vin = random_vin();
        stream.write_all(&gbt32960::encode_heartbeat(Edition::V2016, &Vin::parse(&vin)?)).await?;
        let mut answer = [0u8; 25];
        tokio::time::timeout(ANSWER_WITHIN, stream.read_exact(&mut answer)).await??;
        check_answer(&answer, 0x07, 0x01, &vin, &[]);
        anyhow::Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    served
}

/// With a server certificate the gateway speaks TLS only: a terminal that trusts the CA logs
/// in and reports over it; one that speaks plain TCP to it gets no answer and is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_speaks_tls_when_given_a_certificate() -> anyhow::Result<()> {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    let dir = std::env::temp_dir().join(format!("fleet-gw-tls-{}", &random_vin()[9..]));
    crate::mqtt_security::broker::make_certs(&dir, "fleet test gateway CA")?;
    let tls = fleetd::gateway_tls::load(Some(&dir.join("server.crt")), Some(&dir.join("server.key")))?;
    let app = TestApp::spawn_with(fleet_tests::Db::Sqlite, move |s| {
        gateway_on(s);
        s.gbt32960_tls = tls;
    })
    .await;
    let vin = random_vin();
    app.register_vehicle(&vin).await?;
    let addr = app.gbt32960_addr().expect("the gateway runs");

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("ca.crt"))? {
        roots.add(cert?)?;
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let mut stream = connector.connect(ServerName::try_from("localhost")?, TcpStream::connect(addr).await?).await?;
    let at = recent(10);
    let v = Vin::parse(&vin)?;
    stream.write_all(&terminal::encode_login(Edition::V2016, &v, beijing(at), 1)).await?;
    stream.write_all(&terminal::encode_sample(Edition::V2016, false, &sample(&vin, at))).await?;
    let mut splitter = FrameSplitter::new();
    let mut answers = Vec::new();
    let mut buf = [0u8; 512];
    while answers.len() < 2 {
        let n = tokio::time::timeout(ANSWER_WITHIN, stream.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "the gateway closed the TLS connection");
        for piece in splitter.feed(&buf[..n]) {
            if let Piece::Frame(f) = piece {
                answers.push(f);
            }
        }
    }
    check_answer(&answers[0], 0x01, 0x01, &vin, &time_bytes(beijing(at)));
    check_answer(&answers[1], 0x02, 0x01, &vin, &time_bytes(beijing(at)));
    assert_eq!(app.store.telemetry().count(Some(&vin)).await?, 1);

    // Plain TCP to the TLS port: the frame is not a handshake; nothing answers, and the
    // connection is closed.
    let mut plain = Terminal::connect(&app).await?;
    plain.send(&terminal::encode_login(Edition::V2016, &v, beijing(at), 2)).await?;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(ANSWER_WITHIN, plain.stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(_)) | Ok(Err(_))), "the plain connection is let go");
    assert!(!rest.starts_with(b"##"), "no GB/T answer over plain TCP: {rest:02x?}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
