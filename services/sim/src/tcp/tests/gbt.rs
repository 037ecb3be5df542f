//! GB/T 32960 terminals against an in-test gateway.

use chrono::{Datelike, NaiveDateTime, Timelike};
use fleet_gbt32960::{Ack, FrameSplitter, Header, Piece, encode_reply};

use super::*;

const LOGIN: u8 = 0x01;
const REALTIME: u8 = 0x02;
const REISSUE: u8 = 0x03;
const LOGOUT: u8 = 0x04;
const HEARTBEAT: u8 = 0x07;

fn splitter() -> Splitter {
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

fn command(frame: &[u8]) -> u8 {
    Header::parse(frame).unwrap().0.command
}

fn noon() -> NaiveDateTime {
    chrono::DateTime::from_timestamp(1_764_129_600, 0).unwrap().naive_utc()
}

fn success(frame: &[u8]) -> Act {
    Act::Answer(encode_reply(frame, Ack::Success, noon()).unwrap())
}

/// The report time of a frame (its first 6 data bytes).
fn time(frame: &[u8]) -> Vec<u8> {
    frame[24..30].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_reports_and_every_report_is_acknowledged_before_it_logs_out() {
    let gw = Gateway::start(splitter, |_, frame| success(frame)).await;
    let sim = Sim::start(TcpProtocol::Gbt32960, gw.addr, 3, Duration::from_millis(50), quick());
    sim.wait_for("30 acknowledged reports", |c| c.acked >= 30).await;
    let stats = sim.stats.clone();
    let result = sim.stop().await;

    let c = stats.counts();
    assert_eq!(c.sent, c.acked, "{c:?}");
    assert_eq!((c.resent, c.reconnects, c.abandoned, c.sessions, c.connected), (0, 0, 0, 3, 0), "{c:?}");
    assert_eq!(result.published, c.acked);
    assert_eq!(stats.latencies().count, c.acked, "one latency per answered report");
    let logged_out = |c: &[Vec<Vec<u8>>]| c.iter().all(|f| f.last().is_some_and(|f| command(f) == LOGOUT));
    let conns = gw.frames_when("the logouts", logged_out).await;
    assert_eq!(conns.len(), 3, "one connection per car");
    let mut vins = std::collections::HashSet::new();
    let mut editions = std::collections::HashSet::new();
    for frames in &conns {
        let (first, _) = Header::parse(&frames[0]).unwrap();
        assert_eq!(first.command, LOGIN);
        vins.insert(first.vin);
        editions.insert(first.edition);
        assert_eq!(command(frames.last().unwrap()), LOGOUT);
        let reports = &frames[1..frames.len() - 1];
        assert!(reports.iter().all(|f| command(f) == REALTIME && Header::parse(f).unwrap().0.vin == first.vin));
    }
    assert_eq!((vins.len(), editions.len()), (3, 2), "three cars, both editions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_reports_are_reissued_in_order_on_the_next_connection() {
    // The first connection takes the login and three reports, answers only the login, and
    // closes; later ones answer everything.
    let gw = Gateway::start(splitter, |at, frame| match (at.conn, at.nth) {
        (0, 0) => success(frame),
        (0, 3) => Act::Close,
        (0, _) => Act::Silent,
        _ => success(frame),
    })
    .await;
    let sim = Sim::start(TcpProtocol::Gbt32960, gw.addr, 1, Duration::from_millis(50), quick());
    sim.wait_for("a reconnection and the resent reports answered", |c| c.reconnects >= 1 && c.resent >= 3).await;
    sim.wait_for("more live reports", |c| c.acked >= 10).await;
    let stats = sim.stats.clone();
    sim.stop().await;

    let conns = gw.frames();
    let lost: Vec<Vec<u8>> = conns[0][1..=3].iter().map(|f| time(f)).collect();
    let second = &conns[1];
    assert_eq!(command(&second[0]), LOGIN, "a new session");
    let reissued: Vec<Vec<u8>> = second[1..].iter().take_while(|f| command(f) == REISSUE).map(|f| time(f)).collect();
    assert!(reissued.len() >= 3, "{} re-issued", reissued.len());
    assert_eq!(reissued[..3], lost[..], "the unanswered reports first, in order");
    assert!(second[1 + reissued.len()..].iter().any(|f| command(f) == REALTIME), "then live reports");
    let c = stats.counts();
    assert_eq!((c.abandoned, c.given_up, c.dropped), (0, 0, 0), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_answer_makes_the_terminal_connect_again() {
    // The first connection answers the login, then nothing, and stays open.
    let gw = Gateway::start(splitter, |at, frame| match at {
        At { conn: 0, nth: 0 } => success(frame),
        At { conn: 0, .. } => Act::Silent,
        _ => success(frame),
    })
    .await;
    let timing = TcpTiming { reply_timeout: Duration::from_millis(300), ..quick() };
    let sim = Sim::start(TcpProtocol::Gbt32960, gw.addr, 1, Duration::from_millis(50), timing);
    sim.wait_for("a reconnection and answers", |c| c.reconnects >= 1 && c.acked >= 5).await;
    sim.stop().await;
    assert!(gw.frames().len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_tried_again_after_a_backoff() {
    let gw = Gateway::start(splitter, |at, frame| match at.conn {
        0 => Act::Answer(encode_reply(frame, Ack::Error, noon()).unwrap()),
        _ => success(frame),
    })
    .await;
    let sim = Sim::start(TcpProtocol::Gbt32960, gw.addr, 1, Duration::from_millis(50), quick());
    sim.wait_for("a session after the refusal", |c| c.acked >= 3).await;
    let stats = sim.stats.clone();
    sim.stop().await;
    let c = stats.counts();
    assert_eq!((c.login_refused, c.connect_failures, c.sessions, c.reconnects), (1, 1, 1, 0), "{c:?}");
    let conns = gw.frames();
    assert_eq!(conns[0].len(), 1, "nothing after the refused login");
    assert_eq!(command(&conns[1][0]), LOGIN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_terminal_sends_heartbeats_and_stays_connected() {
    let gw = Gateway::start(splitter, |_, frame| success(frame)).await;
    let timing = TcpTiming { heartbeat_every: Duration::from_millis(50), ..quick() };
    // An hour between reports: nothing but heartbeats for the test's length.
    let sim = Sim::start(TcpProtocol::Gbt32960, gw.addr, 1, Duration::from_secs(3_600), timing);
    sim.wait_for("heartbeats", |c| c.heartbeats >= 3).await;
    let stats = sim.stats.clone();
    sim.stop().await;
    let c = stats.counts();
    assert_eq!((c.sessions, c.reconnects, c.sent), (1, 0, 0), "{c:?}");
    let conns = gw.frames_when("the logout", |c| c[0].last().is_some_and(|f| command(f) == LOGOUT)).await;
    let frames = &conns[0];
    assert!(frames[1..frames.len() - 1].iter().all(|f| command(f) == HEARTBEAT));
}

#[tokio::test]
async fn a_terminal_without_its_gateway_keeps_its_samples_and_says_so_when_stopped() {
    // A port nobody listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let timing = TcpTiming { backoff_max: Duration::from_millis(50), ..quick() };
    let sim = Sim::start(TcpProtocol::Gbt32960, addr, 2, Duration::from_millis(20), timing);
    sim.wait_for("failed connections and kept samples", |c| c.connect_failures >= 4).await;
    let stats = sim.stats.clone();
    let result = sim.stop().await;
    let c = stats.counts();
    assert_eq!((c.sessions, c.sent), (0, 0));
    assert!(c.abandoned > 0, "{c:?}");
    assert_eq!(result.published, 0);
    assert!(result.errors >= c.connect_failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_step_stamps_reports_a_step_apart_from_the_clock_start_however_often_they_go() {
    let gw = Gateway::start(splitter, |_, frame| success(frame)).await;
    let mut tcp = TcpConfig::new(TcpProtocol::Gbt32960, gw.addr.to_string());
    tcp.timing = quick();
    tcp.sample_step = Some(Duration::from_secs(1));
    let start = noon().and_utc();
    tcp.clock_start = Some(start);
    // Twenty reports a second, each a second apart on the car's clock.
    let sim = Sim::start_with(tcp, 1, Duration::from_millis(50));
    sim.wait_for("20 acknowledged reports", |c| c.acked >= 20).await;
    let stats = sim.stats.clone();
    sim.stop().await;

    let c = stats.counts();
    assert_eq!((c.sent, c.resent, c.given_up), (c.acked, 0, 0), "every report answered by its own time: {c:?}");
    let conns =
        gw.frames_when("the logout", |c| c.iter().all(|f| f.last().is_some_and(|f| command(f) == LOGOUT))).await;
    let reports: Vec<Vec<u8>> = conns[0].iter().filter(|f| command(f) == REALTIME).map(|f| time(f)).collect();
    assert!(reports.len() >= 20, "{}", reports.len());
    // In Beijing time (UTC+8), the first a step after the clock's start, then a step apart.
    for (k, t) in reports.iter().enumerate() {
        let at = (start + chrono::TimeDelta::seconds(k as i64 + 1) + chrono::TimeDelta::hours(8)).naive_utc();
        let want = [
            at.year() - 2000,
            at.month() as i32,
            at.day() as i32,
            at.hour() as i32,
            at.minute() as i32,
            at.second() as i32,
        ];
        assert_eq!(t, &want.map(|v| v as u8).to_vec(), "report {k}");
    }
}
