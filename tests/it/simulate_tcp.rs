//! The simulator's TCP terminals against fleetd's gateways, in process, both databases:
//! GB/T 32960 terminals log in and JT/T 808 terminals register and authenticate, they report
//! and are answered once their reports are stored; when a connection drops with reports
//! unanswered, those come again (re-issued reports, blind-area batch uploads) and are stored
//! once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_ingest::decode::gbt32960::{FrameSplitter, Piece};
use fleet_jt808::{Body, FrameReader, decode_message, id};
use fleet_sim::tcp::TcpCounts;
use fleet_sim::{SimConfig, SimStats, SimVehicle, TcpConfig, TcpProtocol, TcpStats, TcpTiming};
use fleet_tests::{both_with, random_vin};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const LOGIN: u8 = 0x01;
const REALTIME: u8 = 0x02;
const REISSUE: u8 = 0x03;
const DEADLINE: Duration = Duration::from_secs(30);

fn gbt_gateway_on(s: &mut fleetd::config::Settings) {
    s.gbt32960_addr = Some("127.0.0.1:0".parse().expect("valid address"));
}

fn jt808_gateway_on(s: &mut fleetd::config::Settings) {
    s.jt808_addr = Some("127.0.0.1:0".parse().expect("valid address"));
}

/// An 11-digit phone no other test uses.
fn random_phone() -> String {
    format!("1{:010}", rand::rng().random_range(0..10_000_000_000u64))
}

/// Quick reconnections; answers and the last ones at the stop waited for generously (a
/// busy test machine commits slowly).
fn timing() -> TcpTiming {
    TcpTiming {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        reply_timeout: Duration::from_secs(15),
        drain_grace: Duration::from_secs(15),
        ..TcpTiming::default()
    }
}

/// The simulator running cars (VIN and terminal phone) as terminals of `gateway`, a report
/// a second (whole seconds apart: no two reports of a car share the time on the wire).
struct Sim {
    stats: Arc<TcpStats>,
    stop: CancellationToken,
    task: JoinHandle<Result<SimStats, fleet_sim::SimError>>,
}

impl Sim {
    fn start(protocol: TcpProtocol, cars: &[(String, Option<String>)], gateway: String) -> Self {
        let mut tcp = TcpConfig::new(protocol, gateway);
        tcp.timing = timing();
        let stats = Arc::clone(&tcp.stats);
        let vehicles = cars
            .iter()
            .map(|(vin, phone)| SimVehicle {
                vin: fleet_domain::Vin::parse(vin).expect("a valid VIN"),
                battery_kwh: 60.0,
                consumption_kwh_per_100km: 15.0,
                terminal_phone: phone.clone(),
            })
            .collect();
        let cfg = SimConfig::over_tcp(tcp, vehicles, Duration::from_secs(1), 3);
        let stop = CancellationToken::new();
        let task = tokio::spawn(fleet_sim::run(cfg, stop.clone()));
        Self { stats, stop, task }
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&TcpCounts) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let c = self.stats.counts();
            if done(&c) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}: {c:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn stop(self) -> anyhow::Result<TcpCounts> {
        self.stop.cancel();
        tokio::time::timeout(DEADLINE, self.task).await???;
        Ok(self.stats.counts())
    }
}

/// Checks that every car reported, that nothing was dead-lettered, and that the samples
/// stored are the reports answered.
async fn stored_as_answered(app: &fleet_tests::TestApp, vins: &[String], c: &TcpCounts) -> anyhow::Result<()> {
    let mut stored = 0;
    for vin in vins {
        let n = app.store.telemetry().count(Some(vin)).await?;
        anyhow::ensure!(n >= 1, "{vin} reported nothing");
        stored += n;
        anyhow::ensure!(app.dead_letters_of(vin).await?.is_empty(), "dead letters of {vin}");
    }
    anyhow::ensure!(stored as u64 == c.acked, "{stored} stored, {} answered", c.acked);
    Ok(())
}

both_with!(
    gbt_terminals_report_over_tcp_and_every_report_is_acknowledged_once_stored,
    gbt_gateway_on,
    |app: TestApp| async move {
        let vins: Vec<String> = (0..3).map(|_| random_vin()).collect();
        for vin in &vins {
            app.register_vehicle(vin).await?;
        }
        let cars: Vec<_> = vins.iter().map(|v| (v.clone(), None)).collect();
        let gateway = app.gbt32960_addr().expect("the gateway runs").to_string();
        let sim = Sim::start(TcpProtocol::Gbt32960, &cars, gateway);
        sim.wait_for("three answered reports a car", |c| c.acked >= 9).await?;
        let c = sim.stop().await?;

        assert_eq!(c.sent, c.acked, "every report answered: {c:?}");
        assert_eq!((c.sessions, c.reconnects, c.abandoned, c.refused, c.login_refused), (3, 0, 0, 0, 0), "{c:?}");
        stored_as_answered(&app, &vins, &c).await
    }
);

both_with!(
    jt808_terminals_register_report_over_tcp_and_every_location_is_acknowledged_once_stored,
    jt808_gateway_on,
    |app: TestApp| async move {
        let cars: Vec<(String, Option<String>)> = (0..4).map(|_| (random_vin(), Some(random_phone()))).collect();
        for (vin, phone) in &cars {
            app.register_vehicle_with(vin, serde_json::json!({ "terminal_phone": phone })).await?;
        }
        let gateway = app.jt808_addr().expect("the gateway runs").to_string();
        // Half of them with 2019 headers.
        let sim = Sim::start(TcpProtocol::Jt808 { v2019_share: 0.5 }, &cars, gateway);
        sim.wait_for("three answered locations a car", |c| c.acked >= 12).await?;
        let c = sim.stop().await?;

        assert_eq!(c.sent, c.acked, "every location answered: {c:?}");
        assert_eq!((c.sessions, c.reconnects, c.abandoned, c.refused, c.login_refused), (4, 0, 0, 0, 0), "{c:?}");
        let vins: Vec<String> = cars.into_iter().map(|(v, _)| v).collect();
        stored_as_answered(&app, &vins, &c).await
    }
);

both_with!(
    a_jt808_terminal_with_an_unknown_phone_is_refused_and_keeps_trying,
    jt808_gateway_on,
    |app: TestApp| async move {
        let cars = [(random_vin(), Some(random_phone()))];
        let gateway = app.jt808_addr().expect("the gateway runs").to_string();
        let sim = Sim::start(TcpProtocol::Jt808 { v2019_share: 0.0 }, &cars, gateway);
        sim.wait_for("two refused registrations", |c| c.login_refused >= 2).await?;
        let c = sim.stop().await?;
        assert_eq!((c.sessions, c.sent), (0, 0), "{c:?}");
        Ok(())
    }
);

both_with!(
    gbt_reports_unanswered_when_the_connection_dropped_come_again_reissued_and_are_stored_once,
    gbt_gateway_on,
    |app: TestApp| async move {
        let vin = random_vin();
        app.register_vehicle(&vin).await?;
        let proxy = Proxy::start(app.gbt32960_addr().expect("the gateway runs"), Wire::Gbt32960, 3).await?;
        let sim = Sim::start(TcpProtocol::Gbt32960, &[(vin.clone(), None)], proxy.addr.clone());
        sim.wait_for("a reconnection and the lost reports sent again", |c| c.reconnects >= 1 && c.resent >= 3).await?;
        let live_again = |conns: &[Vec<Vec<u8>>]| conns.get(1).is_some_and(|f| f.iter().any(|f| f[2] == REALTIME));
        proxy.wait_for("a live report on the new connection", live_again).await?;
        let c = sim.stop().await?;

        let conns = proxy.frames();
        let reports = |frames: &[Vec<u8>]| -> Vec<(u8, Vec<u8>)> {
            frames.iter().filter(|f| matches!(f[2], REALTIME | REISSUE)).map(|f| (f[2], f[24..30].to_vec())).collect()
        };
        // On the first connection the gateway stored the reports, but the terminal never heard.
        let lost = reports(&conns[0]);
        assert!(lost.len() >= 3 && lost.iter().all(|(cmd, _)| *cmd == REALTIME), "{lost:?}");
        let second = &conns[1];
        assert_eq!(second[0][2], LOGIN, "a new session");
        let again = reports(second);
        assert!(again[..lost.len()].iter().all(|(cmd, _)| *cmd == REISSUE), "{again:?}");
        let times = |r: &[(u8, Vec<u8>)]| r.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>();
        assert_eq!(times(&again[..lost.len()]), times(&lost), "the lost reports first, in order");

        let mut distinct: Vec<Vec<u8>> = conns.iter().flat_map(|f| times(&reports(f))).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!((c.sent, c.acked, c.abandoned), (distinct.len() as u64, c.sent, 0), "{c:?}");
        app.wait_for_samples(&vin, distinct.len() as i64).await?;
        assert!(app.dead_letters_of(&vin).await?.is_empty());
        Ok(())
    }
);

both_with!(
    jt808_locations_unanswered_when_the_connection_dropped_come_again_as_a_blind_area_batch_stored_once,
    jt808_gateway_on,
    |app: TestApp| async move {
        let (vin, phone) = (random_vin(), random_phone());
        app.register_vehicle_with(&vin, serde_json::json!({ "terminal_phone": phone })).await?;
        let proxy = Proxy::start(app.jt808_addr().expect("the gateway runs"), Wire::Jt808, 3).await?;
        let sim =
            Sim::start(TcpProtocol::Jt808 { v2019_share: 1.0 }, &[(vin.clone(), Some(phone))], proxy.addr.clone());
        sim.wait_for("a reconnection and the lost locations sent again", |c| c.reconnects >= 1 && c.resent >= 3)
            .await?;
        let live_again = |conns: &[Vec<Vec<u8>>]| {
            conns.get(1).is_some_and(|f| f.iter().any(|f| decode_message(f).is_ok_and(|m| m.header.id == id::LOCATION)))
        };
        proxy.wait_for("a live location on the new connection", live_again).await?;
        let c = sim.stop().await?;

        let conns = proxy.frames();
        let messages =
            |frames: &[Vec<u8>]| frames.iter().map(|f| decode_message(f).expect("a message")).collect::<Vec<_>>();
        let lost: Vec<_> = messages(&conns[0])
            .into_iter()
            .filter_map(|m| match m.body {
                Body::Location(l) => Some(l.time),
                _ => None,
            })
            .collect();
        assert!(lost.len() >= 3, "{lost:?}");
        let second = messages(&conns[1]);
        assert_eq!(second[0].header.id, id::AUTHENTICATION, "the code kept: no new registration");
        let Body::LocationBatch(batch) = &second[1].body else { panic!("a batch upload first: {:?}", second[1]) };
        assert_eq!(batch.kind, 1, "a blind-area upload");
        let times: Vec<_> = batch.locations.iter().map(|l| l.time).collect();
        assert_eq!(times[..lost.len()], lost[..], "the lost locations first, in order");

        let mut distinct: Vec<_> = conns
            .iter()
            .flat_map(|f| messages(f))
            .flat_map(|m| match m.body {
                Body::Location(l) => vec![l.time],
                Body::LocationBatch(b) => b.locations.into_iter().map(|l| l.time).collect(),
                _ => Vec::new(),
            })
            .collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!((c.sent, c.acked, c.abandoned), (distinct.len() as u64, c.sent, 0), "{c:?}");
        app.wait_for_samples(&vin, distinct.len() as i64).await?;
        assert!(app.dead_letters_of(&vin).await?.is_empty());
        Ok(())
    }
);

/// Frames each connection's terminal sent, in order.
type Recorded = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

/// Cuts a byte stream into whole frames.
type Splitter = Box<dyn FnMut(&[u8]) -> Vec<Vec<u8>> + Send>;

/// The protocol a proxy carries.
#[derive(Debug, Clone, Copy)]
enum Wire {
    Gbt32960,
    Jt808,
}

impl Wire {
    /// A cutter of the stream into whole frames.
    fn splitter(self) -> Splitter {
        match self {
            Wire::Gbt32960 => {
                let mut s = FrameSplitter::new();
                Box::new(move |bytes| {
                    s.feed(bytes)
                        .into_iter()
                        .filter_map(|p| match p {
                            Piece::Frame(f) => Some(f),
                            _ => None,
                        })
                        .collect()
                })
            }
            Wire::Jt808 => {
                let mut r = FrameReader::default();
                Box::new(move |bytes| {
                    r.push(bytes);
                    std::iter::from_fn(|| r.next_frame()).collect()
                })
            }
        }
    }

    /// Whether a frame from the gateway answers a report.
    fn answers_a_report(self, frame: &[u8]) -> bool {
        match self {
            Wire::Gbt32960 => matches!(frame[2], REALTIME | REISSUE),
            Wire::Jt808 => decode_message(frame).is_ok_and(
                |m| matches!(m.body, Body::PlatformResponse(r) if r.id == id::LOCATION || r.id == id::LOCATION_BATCH),
            ),
        }
    }
}

/// A proxy in front of a gateway that, on its first connection, keeps the gateway's answers
/// to reports from the terminal and closes once it has kept `swallow` of them; later
/// connections pass through. It records what terminals send.
struct Proxy {
    addr: String,
    frames: Recorded,
}

impl Proxy {
    async fn start(gateway: std::net::SocketAddr, wire: Wire, swallow: usize) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let frames: Recorded = Arc::default();
        let recorded = Arc::clone(&frames);
        tokio::spawn(async move {
            while let Ok((terminal, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(gateway).await else { return };
                let conn = {
                    let mut all = recorded.lock().unwrap_or_else(|e| e.into_inner());
                    all.push(Vec::new());
                    all.len() - 1
                };
                let swallow = if conn == 0 { Some(swallow) } else { None };
                tokio::spawn(pass(terminal, upstream, wire, Arc::clone(&recorded), conn, swallow));
            }
        });
        Ok(Self { addr, frames })
    }

    fn frames(&self) -> Vec<Vec<Vec<u8>>> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Vec<Vec<u8>>]) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        while !done(&self.frames()) {
            anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }
}

/// Carries one connection both ways, frame by frame.
async fn pass(
    terminal: TcpStream,
    upstream: TcpStream,
    wire: Wire,
    recorded: Recorded,
    conn: usize,
    swallow: Option<usize>,
) {
    let (mut from_terminal, mut to_terminal) = terminal.into_split();
    let (mut from_gateway, mut to_gateway) = upstream.into_split();
    let closed = CancellationToken::new();
    let up = {
        let closed = closed.clone();
        async move {
            let mut split = wire.splitter();
            let mut buf = [0u8; 4096];
            loop {
                let n = tokio::select! {
                    () = closed.cancelled() => return,
                    read = from_terminal.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    },
                };
                for frame in split(&buf[..n]) {
                    recorded.lock().unwrap_or_else(|e| e.into_inner())[conn].push(frame);
                }
                if to_gateway.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let down = async move {
        let mut split = wire.splitter();
        let mut buf = [0u8; 4096];
        let mut kept = 0;
        while let Ok(n) = from_gateway.read(&mut buf).await {
            if n == 0 {
                break;
            }
            for answer in split(&buf[..n]) {
                if swallow.is_some() && wire.answers_a_report(&answer) {
                    kept += 1;
                    if Some(kept) == swallow {
                        // Gone without a word: the terminal sees its connection close.
                        let _ = to_terminal.shutdown().await;
                        closed.cancel();
                        return;
                    }
                    continue;
                }
                if to_terminal.write_all(&answer).await.is_err() {
                    closed.cancel();
                    return;
                }
            }
        }
        closed.cancel();
    };
    tokio::join!(up, down);
}
