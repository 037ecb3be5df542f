//! The simulator's TCP terminals against fleetd's gateway, in process: GB/T 32960 terminals
//! log in, report and are answered once their reports are stored; when a connection drops
//! with reports unanswered, those come again as re-issued reports and are stored once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_ingest::decode::gbt32960::{FrameSplitter, Piece};
use fleet_sim::{SimConfig, SimLogin, SimStats, SimVehicle, TcpConfig, TcpProtocol, TcpStats, TcpTiming, Via};
use fleet_tests::{both_with, random_vin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const LOGIN: u8 = 0x01;
const REALTIME: u8 = 0x02;
const REISSUE: u8 = 0x03;
const DEADLINE: Duration = Duration::from_secs(30);

fn gateway_on(s: &mut fleetd::config::Settings) {
    s.gbt32960_addr = Some("127.0.0.1:0".parse().expect("valid address"));
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

/// The simulator running `vins` as GB/T 32960 terminals of `gateway`, a report a second
/// (whole seconds apart, so that no two reports of a car share the frame's time).
struct Sim {
    stats: Arc<TcpStats>,
    stop: CancellationToken,
    task: JoinHandle<Result<SimStats, fleet_sim::SimError>>,
}

impl Sim {
    fn start(vins: &[String], gateway: String) -> Self {
        let mut tcp = TcpConfig::new(TcpProtocol::Gbt32960, gateway);
        tcp.timing = timing();
        let stats = Arc::clone(&tcp.stats);
        let cfg = SimConfig {
            via: Via::Tcp(tcp),
            broker_host: String::new(),
            broker_port: 0,
            login: SimLogin::Anonymous,
            client_id_prefix: String::new(),
            vehicles: vins
                .iter()
                .map(|v| SimVehicle {
                    vin: fleet_domain::Vin::parse(v).expect("a valid VIN"),
                    battery_kwh: 60.0,
                    consumption_kwh_per_100km: 15.0,
                    terminal_phone: None,
                })
                .collect(),
            interval: Duration::from_secs(1),
            gbt32960_share: 0.0,
            seed: 3,
            tls: None,
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(fleet_sim::run(cfg, stop.clone()));
        Self { stats, stop, task }
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&fleet_sim::tcp::TcpCounts) -> bool) -> anyhow::Result<()> {
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

    async fn stop(self) -> anyhow::Result<fleet_sim::tcp::TcpCounts> {
        self.stop.cancel();
        tokio::time::timeout(DEADLINE, self.task).await???;
        Ok(self.stats.counts())
    }
}

both_with!(
    gbt_terminals_report_over_tcp_and_every_report_is_acknowledged_once_stored,
    gateway_on,
    |app: TestApp| async move {
        let vins: Vec<String> = (0..3).map(|_| random_vin()).collect();
        for vin in &vins {
            app.register_vehicle(vin).await?;
        }
        let gateway = app.gbt32960_addr().expect("the gateway runs").to_string();
        let sim = Sim::start(&vins, gateway);
        sim.wait_for("three answered reports a car", |c| c.acked >= 9).await?;
        let c = sim.stop().await?;

        assert_eq!(c.sent, c.acked, "every report answered: {c:?}");
        assert_eq!((c.sessions, c.reconnects, c.abandoned, c.refused, c.login_refused), (3, 0, 0, 0, 0), "{c:?}");
        let mut stored = 0;
        for vin in &vins {
            let n = app.store.telemetry().count(Some(vin)).await?;
            assert!(n >= 1, "{vin} reported");
            stored += n;
            assert!(app.dead_letters_of(vin).await?.is_empty(), "{vin}");
        }
        assert_eq!(stored as u64, c.acked, "each answered report is stored, once");
        Ok(())
    }
);

both_with!(
    reports_unanswered_when_the_connection_dropped_come_again_reissued_and_are_stored_once,
    gateway_on,
    |app: TestApp| async move {
        let vin = random_vin();
        app.register_vehicle(&vin).await?;
        let proxy = Proxy::start(app.gbt32960_addr().expect("the gateway runs"), 3).await?;
        let sim = Sim::start(std::slice::from_ref(&vin), proxy.addr.clone());
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
        assert!(again.iter().any(|(cmd, _)| *cmd == REALTIME), "then live ones");

        let mut distinct: Vec<Vec<u8>> = conns.iter().flat_map(|f| times(&reports(f))).collect();
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

/// A proxy in front of the gateway that, on its first connection, keeps the gateway's
/// answers to reports from the terminal and closes once it has kept `swallow` of them; later
/// connections pass through. It records what terminals send.
struct Proxy {
    addr: String,
    frames: Recorded,
}

impl Proxy {
    async fn start(gateway: std::net::SocketAddr, swallow: usize) -> anyhow::Result<Self> {
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
                tokio::spawn(pass(terminal, upstream, Arc::clone(&recorded), conn, swallow));
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
async fn pass(terminal: TcpStream, upstream: TcpStream, recorded: Recorded, conn: usize, swallow: Option<usize>) {
    let (mut from_terminal, mut to_terminal) = terminal.into_split();
    let (mut from_gateway, mut to_gateway) = upstream.into_split();
    let closed = CancellationToken::new();
    let up = {
        let closed = closed.clone();
        async move {
            let mut splitter = FrameSplitter::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = tokio::select! {
                    () = closed.cancelled() => return,
                    read = from_terminal.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    },
                };
                for piece in splitter.feed(&buf[..n]) {
                    if let Piece::Frame(f) = piece {
                        recorded.lock().unwrap_or_else(|e| e.into_inner())[conn].push(f);
                    }
                }
                if to_gateway.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let down = async move {
        let mut splitter = FrameSplitter::new();
        let mut buf = [0u8; 4096];
        let mut kept = 0;
        while let Ok(n) = from_gateway.read(&mut buf).await {
            if n == 0 {
                break;
            }
            for piece in splitter.feed(&buf[..n]) {
                let Piece::Frame(answer) = piece else { continue };
                if swallow.is_some() && matches!(answer[2], REALTIME | REISSUE) {
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
