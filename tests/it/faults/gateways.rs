//! The TCP gateways under faults: fleetd killed with SIGKILL while GB/T 32960 and JT/T 808
//! terminals stream to it (they reconnect and send again what was not answered: nothing lost,
//! nothing doubled), and 10,000 connections opened at once (each answered as the contract
//! says, and ingest goes on meanwhile).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, SubsecRound, Utc};
use fleet_domain::{NewVehicle, Sample, SampleSource, Vin};
use fleet_ingest::decode::gbt32960::{self, Edition, FrameSplitter, Piece};
use fleet_jt808::{Authentication, Body, FrameReader, Header, Register, decode_message, encode_message, id};
use fleet_sim::terminal;
use fleet_storage::Store;
use fleet_tests::{Db, TestDb, random_vin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::process::{Broker, Fleetd, start_configured};

/// How long a terminal waits for one answer before it gives the connection up.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// The whole test's limit.
const DEADLINE: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

/// `fleetd run` with both gateways on fixed ports (a restart takes them back).
fn start_gateways(db_url: &str, broker: &Broker, gbt: u16, jt: u16, adjust: impl FnOnce(&mut Command)) -> Fleetd {
    let client_id = format!("fleetd-gw-faults-{}", rand::random::<u32>());
    start_configured(db_url, &client_id, broker.port, |c| {
        c.env("FLEET_GBT32960_ADDR", format!("127.0.0.1:{gbt}")).env("FLEET_JT808_ADDR", format!("127.0.0.1:{jt}"));
        adjust(c);
    })
    .0
}

fn beijing(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    (t + ChronoDuration::hours(8)).naive_utc()
}

/// A terminal of either kind, as real ones behave: connect, log in (or register and
/// authenticate), send each report and wait for its answer; when the answer does not come or
/// the connection drops, connect again and send again what was not answered.
struct Terminal {
    vin: Vin,
    /// The JT/T 808 terminal's phone; none: a GB/T 32960 T-box.
    phone: Option<String>,
    addr: SocketAddr,
    auth_code: Option<Vec<u8>>,
    serial: u16,
}

/// A connection and the frames that have come on it.
struct Link {
    stream: TcpStream,
    jt808: bool,
    gbt: FrameSplitter,
    jt: FrameReader,
    frames: Vec<Vec<u8>>,
}

impl Link {
    async fn open(addr: SocketAddr, jt808: bool) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        Ok(Self { stream, jt808, gbt: FrameSplitter::new(), jt: FrameReader::default(), frames: Vec::new() })
    }

    /// The next frame, waiting at most `within`.
    async fn next_within(&mut self, within: Duration) -> anyhow::Result<Vec<u8>> {
        let mut buf = [0u8; 512];
        loop {
            if !self.frames.is_empty() {
                return Ok(self.frames.remove(0));
            }
            if let Some(f) = self.jt.next_frame() {
                return Ok(f);
            }
            let n = tokio::time::timeout(within, self.stream.read(&mut buf)).await??;
            anyhow::ensure!(n > 0, "closed");
            if self.jt808 {
                self.jt.push(&buf[..n]);
            } else {
                for piece in self.gbt.feed(&buf[..n]) {
                    if let Piece::Frame(f) = piece {
                        self.frames.push(f);
                    }
                }
            }
        }
    }

    async fn next(&mut self) -> anyhow::Result<Vec<u8>> {
        self.next_within(ANSWER_WITHIN).await
    }
}

fn register_body() -> Body {
    Body::Register(Register {
        province: 33,
        city: 900,
        maker: fleet_jt808::GbkText::encode_lossy("ZS"),
        model: fleet_jt808::GbkText::encode_lossy("BD"),
        terminal_id: fleet_jt808::GbkText::encode_lossy("T1"),
        plate_colour: 5,
        plate: fleet_jt808::GbkText::encode_lossy("浙LD00001"),
    })
}

impl Terminal {
    fn header(&mut self, id: u16) -> Header {
        self.serial = self.serial.wrapping_add(1);
        Header::new(fleet_jt808::Edition::V2013, id, self.phone.clone().unwrap_or_default(), self.serial)
    }

    /// A logged-in (authenticated) connection, or an error to try again.
    async fn connect(&mut self) -> anyhow::Result<Link> {
        let mut link = Link::open(self.addr, self.phone.is_some()).await?;
        match self.phone.clone() {
            None => {
                let login = terminal::encode_login(Edition::V2016, &self.vin, beijing(Utc::now()), 1);
                link.stream.write_all(&login).await?;
                let answer = link.next().await?;
                anyhow::ensure!(answer[2..4] == [0x01, 0x01], "login refused: {answer:02x?}");
            }
            Some(_) => {
                if self.auth_code.is_none() {
                    let header = self.header(id::REGISTER);
                    link.stream.write_all(&encode_message(&header, &register_body())?).await?;
                    match decode_message(&link.next().await?)?.body {
                        Body::RegisterResponse(r) if r.result == 0 => self.auth_code = Some(r.auth_code),
                        other => anyhow::bail!("registration refused: {other:?}"),
                    }
                }
                let header = self.header(id::AUTHENTICATION);
                let code = self.auth_code.clone().unwrap_or_default();
                let auth = Body::Authentication(Authentication { code, imei: None, software_version: None });
                link.stream.write_all(&encode_message(&header, &auth)?).await?;
                match decode_message(&link.next().await?)?.body {
                    Body::PlatformResponse(r) if r.result == 0 => {}
                    other => anyhow::bail!("authentication refused: {other:?}"),
                }
            }
        }
        Ok(link)
    }

    /// Sends one report and waits for its answer.
    async fn report(&mut self, link: &mut Link, at: DateTime<Utc>, resend: bool) -> anyhow::Result<()> {
        let mut sample = Sample::at(self.vin.clone(), at, 30.01, 122.10, SampleSource::Gbt2016);
        sample.speed_kmh = Some(30.0);
        sample.odometer_km = Some(1000.0);
        match self.phone {
            None => {
                link.stream.write_all(&terminal::encode_sample(Edition::V2016, resend, &sample)).await?;
                let answer = link.next().await?;
                let cmd = if resend { 0x03 } else { 0x02 };
                anyhow::ensure!(answer[2..4] == [cmd, 0x01], "report not answered success: {answer:02x?}");
            }
            Some(_) => {
                let header = self.header(id::LOCATION);
                let serial = header.serial;
                let location = Body::Location(fleet_jt808::sample_location(&sample));
                link.stream.write_all(&encode_message(&header, &location)?).await?;
                match decode_message(&link.next().await?)?.body {
                    Body::PlatformResponse(r) if r.serial == serial && r.result == 0 => {}
                    other => anyhow::bail!("location not answered success: {other:?}"),
                }
            }
        }
        Ok(())
    }

    /// Sends every report until each is answered; gives how many times it connected.
    async fn stream(mut self, reports: Vec<DateTime<Utc>>, gap: Duration) -> anyhow::Result<u32> {
        let deadline = Instant::now() + DEADLINE;
        let (mut next, mut connections, mut resend) = (0, 0, false);
        while next < reports.len() {
            anyhow::ensure!(Instant::now() < deadline, "{} of {} reports answered", next, reports.len());
            let mut link = match self.connect().await {
                Ok(l) => l,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            connections += 1;
            while next < reports.len() {
                if self.report(&mut link, reports[next], resend).await.is_err() {
                    // Not answered: sent again on the next connection, as a re-issued report.
                    resend = true;
                    break;
                }
                resend = false;
                next += 1;
                tokio::time::sleep(gap).await;
            }
        }
        Ok(connections)
    }
}

async fn register(store: &Store, n: usize, phones: bool) -> anyhow::Result<Vec<(Vin, Option<String>)>> {
    let mut cars = Vec::with_capacity(n);
    for i in 0..n {
        let phone = phones.then(|| format!("1390{:07}", rand::random::<u32>() % 10_000_000));
        let v = NewVehicle {
            vin: random_vin(),
            plate: format!("浙LD{}{i:04}", if phones { 8 } else { 7 }),
            model: "BYD e6".into(),
            seats: 5,
            battery_kwh: 71.7,
            consumption_kwh_per_100km: 17.0,
            unit_id: None,
            terminal_phone: phone.clone(),
            ..Default::default()
        };
        let vin = v.validate()?;
        store.vehicles().create(&vin, &v).await?;
        cars.push((vin, phone));
    }
    Ok(cars)
}

/// SIGKILL while 16 T-boxes and 16 Beidou terminals stream over TCP, then a restart on the
/// same ports: every report is stored exactly once, and every terminal got every answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_terminals_stream_over_tcp_loses_and_doubles_nothing() -> anyhow::Result<()> {
    let db = TestDb::create(Db::Postgres).await;
    let store = Store::connect(&db.url).await?;
    store.migrate().await?;
    let mut cars = register(&store, 16, false).await?;
    cars.extend(register(&store, 16, true).await?);
    let broker = Broker::start();
    let (gbt, jt) = (free_port(), free_port());
    let mut child = start_gateways(&db.url, &broker, gbt, jt, |_| {});

    const REPORTS: usize = 80;
    let t0 = (Utc::now() - ChronoDuration::hours(1)).trunc_subsecs(0);
    let mut terminals = Vec::new();
    for (i, (vin, phone)) in cars.iter().enumerate() {
        let port = if phone.is_some() { jt } else { gbt };
        let t = Terminal {
            vin: vin.clone(),
            phone: phone.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            auth_code: None,
            serial: 0,
        };
        let reports: Vec<_> =
            (0..REPORTS).map(|k| t0 + ChronoDuration::seconds((k * cars.len() + i) as i64 * 10)).collect();
        terminals.push(tokio::spawn(t.stream(reports, Duration::from_millis(15))));
    }

    let total = (REPORTS * cars.len()) as i64;
    let deadline = Instant::now() + DEADLINE;
    while store.telemetry().count(None).await? < total / 4 {
        anyhow::ensure!(Instant::now() < deadline, "the terminals never got a quarter of their reports in");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status()?;
    child.wait()?;
    let at_kill = store.telemetry().count(None).await?;
    anyhow::ensure!(at_kill < total, "killed in the middle of the stream");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut child = start_gateways(&db.url, &broker, gbt, jt, |_| {});

    let mut reconnected = 0;
    for t in terminals {
        let connections = t.await??;
        reconnected += u32::from(connections > 1);
    }
    assert!(reconnected > 0, "the kill cut some terminal's connection");
    for (vin, _) in &cars {
        assert_eq!(store.telemetry().count(Some(vin.as_str())).await?, REPORTS as i64, "every report of {vin} once");
    }
    assert_eq!(store.telemetry().count(None).await?, total, "killed at {at_kill} of {total}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    child.wait()?;
    store.close().await;
    Ok(())
}

/// 5,000 GB/T 32960 and 5,000 JT/T 808 connections opened at once: each is answered (a
/// heartbeat success; "no such terminal" for an unknown phone), and a registered terminal's
/// report is stored and answered while they are all open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connections_at_once_are_each_answered_and_ingest_goes_on() -> anyhow::Result<()> {
    const PER_GATEWAY: usize = 5_000;
    let db = TestDb::create(Db::Sqlite).await;
    let store = Store::connect(&db.url).await?;
    store.migrate().await?;
    let cars = register(&store, 1, false).await?;
    let broker = Broker::start();
    let (gbt, jt) = (free_port(), free_port());
    let mut child = start_gateways(&db.url, &broker, gbt, jt, |_| {});
    let gbt_addr = SocketAddr::from(([127, 0, 0, 1], gbt));
    let jt_addr = SocketAddr::from(([127, 0, 0, 1], jt));

    // Each connection, once answered, counts itself and stays open until all are.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (hold_tx, hold_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(2 * PER_GATEWAY);
    for i in 0..2 * PER_GATEWAY {
        let (mut hold, answered) = (hold_rx.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let jt808 = i % 2 == 1;
            let mut link = Link::open(if jt808 { jt_addr } else { gbt_addr }, jt808).await?;
            if jt808 {
                let header = Header::new(fleet_jt808::Edition::V2019, id::REGISTER, format!("1{i:010}"), 1);
                link.stream.write_all(&encode_message(&header, &register_body())?).await?;
                match decode_message(&link.next_within(DEADLINE).await?)?.body {
                    Body::RegisterResponse(r) if r.result == 4 => {}
                    other => anyhow::bail!("not \"no such terminal\": {other:?}"),
                }
            } else {
                let vin = Vin::parse(&random_vin())?;
                link.stream.write_all(&gbt32960::encode_heartbeat(Edition::V2016, &vin)).await?;
                let answer = link.next_within(DEADLINE).await?;
                anyhow::ensure!(answer[2..4] == [0x07, 0x01], "heartbeat not answered success: {answer:02x?}");
            }
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            hold.wait_for(|h| *h).await?;
            anyhow::Ok(())
        }));
    }
    // While they open: a registered T-box logs in and reports.
    let (vin, _) = cars[0].clone();
    let t = Terminal { vin: vin.clone(), phone: None, addr: gbt_addr, auth_code: None, serial: 0 };
    let at = (Utc::now() - ChronoDuration::seconds(30)).trunc_subsecs(0);
    t.stream(vec![at], Duration::ZERO).await?;
    assert_eq!(store.telemetry().count(Some(vin.as_str())).await?, 1);

    // Every connection answered while all are open; a failed one ends the test with its error.
    let deadline = Instant::now() + DEADLINE;
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 2 * PER_GATEWAY {
        if let Some(i) = tasks.iter().position(|t| t.is_finished()) {
            let failed = tasks.swap_remove(i).await?;
            anyhow::bail!("connection {i} ended before all were answered: {failed:?}");
        }
        anyhow::ensure!(Instant::now() < deadline, "{answered:?} of {} answered", 2 * PER_GATEWAY);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hold_tx.send(true)?;
    for t in tasks {
        t.await??;
    }
    assert!(child.running(), "fleetd still runs");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    child.wait()?;
    store.close().await;
    Ok(())
}

/// fleetd prints its listeners on stdout; a starter that stopped reading it (the pipe's
/// reading end closed) must not stop fleetd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetd_keeps_serving_when_nobody_reads_its_stdout() -> anyhow::Result<()> {
    let db = TestDb::create(Db::Sqlite).await;
    let broker = Broker::start();
    let (gbt, jt) = (free_port(), free_port());
    let (reader, writer) = std::io::pipe()?;
    drop(reader);
    let mut child = Fleetd(
        Command::new(super::process::fleetd())
            .args(["run", "--http-addr", "127.0.0.1:0"])
            .env("FLEET_DATABASE_URL", &db.url)
            .env("FLEET_MQTT_URL", format!("mqtt://127.0.0.1:{}", broker.port))
            .env("FLEET_MQTT_CLIENT_ID", format!("fleetd-stdout-{}", rand::random::<u32>()))
            .env("FLEET_ADMIN_PASSWORD", fleet_tests::ADMIN_PASSWORD)
            .env("FLEET_GBT32960_ADDR", format!("127.0.0.1:{gbt}"))
            .env("FLEET_JT808_ADDR", format!("127.0.0.1:{jt}"))
            .env("FLEET_LOG", "warn")
            .stdout(writer)
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    // It answers on the gateway (bound before anything is printed) once it runs, and is
    // still running after its lines went nowhere.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut link = loop {
        match Link::open(SocketAddr::from(([127, 0, 0, 1], gbt)), false).await {
            Ok(l) => break l,
            Err(e) => {
                anyhow::ensure!(child.running(), "fleetd exited");
                anyhow::ensure!(Instant::now() < deadline, "the gateway never listened: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let vin = Vin::parse(&random_vin())?;
    link.stream.write_all(&gbt32960::encode_heartbeat(Edition::V2016, &vin)).await?;
    let answer = link.next().await?;
    assert_eq!(answer[2..4], [0x07, 0x01]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(child.running(), "fleetd still runs");
    Ok(())
}
