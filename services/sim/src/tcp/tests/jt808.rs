//! JT/T 808 terminals against an in-test platform answering as the contract says: 0x8100
//! with result 0 and a code to a registration, 0x8001 to an authentication with that code
//! (result 1 to a wrong one), 0x8001 with the serial to locations and heartbeats.

use fleet_jt808::{
    Body, Edition, FrameReader, GeneralResult, Message, RegisterResult, decode_message, encode_general_response,
    encode_register_response, id,
};

use super::*;

fn splitter() -> Splitter {
    let mut reader = FrameReader::default();
    Box::new(move |bytes| {
        reader.push(bytes);
        std::iter::from_fn(|| reader.next_frame()).collect()
    })
}

fn message(frame: &[u8]) -> Message {
    decode_message(frame).unwrap()
}

fn code_of(phone: &str) -> Vec<u8> {
    format!("AUTH{phone}").into_bytes()
}

/// The platform's answer, taking `valid` as the terminal's authentication code.
fn answer(frame: &[u8], valid: &[u8]) -> Act {
    let m = message(frame);
    let reply = match &m.body {
        Body::Register(_) => encode_register_response(&m.header, 1, RegisterResult::Success, valid),
        Body::Authentication(a) if a.code == valid => encode_general_response(&m.header, 1, GeneralResult::Success),
        Body::Authentication(_) => encode_general_response(&m.header, 1, GeneralResult::Failure),
        Body::Location(_) | Body::LocationBatch(_) | Body::Heartbeat => {
            encode_general_response(&m.header, 1, GeneralResult::Success)
        }
        _ => return Act::Silent,
    };
    Act::Answer(reply.unwrap())
}

/// A platform answering everything as the contract says.
fn platform(frame: &[u8]) -> Act {
    let phone = message(frame).header.phone;
    answer(frame, &code_of(&phone))
}

fn ids(frames: &[Vec<u8>]) -> Vec<u16> {
    frames.iter().map(|f| message(f).header.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_authenticates_and_every_location_is_acknowledged() {
    let gw = Gateway::start(splitter, |_, frame| platform(frame)).await;
    let sim = Sim::start(TcpProtocol::Jt808 { v2019_share: 0.5 }, gw.addr, 2, Duration::from_millis(50), quick());
    sim.wait_for("20 acknowledged locations", |c| c.acked >= 20).await;
    let stats = sim.stats.clone();
    sim.stop().await;

    let c = stats.counts();
    assert_eq!(c.sent, c.acked, "{c:?}");
    assert_eq!((c.sessions, c.reconnects, c.resent, c.abandoned), (2, 0, 0, 0), "{c:?}");
    let vins = sim_vins(2);
    let mut editions = Vec::new();
    for frames in gw.frames() {
        let first = message(&frames[0]);
        let Body::Register(register) = &first.body else { panic!("registers first: {first:?}") };
        let car = vins.iter().position(|v| Some(v.as_str()) == register.vin()).expect("names its car by VIN");
        assert_eq!(first.header.phone, sim_phone(car));
        editions.push(first.header.edition);
        let Body::Authentication(auth) = message(&frames[1]).body else { panic!("then authenticates") };
        assert_eq!(auth.code, code_of(&sim_phone(car)));
        assert!(ids(&frames[2..]).iter().all(|&i| i == id::LOCATION));
        assert!(frames[2..].iter().all(|f| message(f).header.edition == first.header.edition));
    }
    editions.sort_by_key(|e| *e == Edition::V2019);
    assert_eq!(editions, [Edition::V2013, Edition::V2019], "half of the terminals on each header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_its_code_and_uploads_unanswered_locations_as_a_blind_area_batch() {
    // The first connection answers the registration and the authentication, takes three
    // locations unanswered and closes.
    let gw = Gateway::start(splitter, |at, frame| match (at.conn, at.nth) {
        (0, 4) => Act::Close,
        (0, 2..) => Act::Silent,
        _ => platform(frame),
    })
    .await;
    let sim = Sim::start(TcpProtocol::Jt808 { v2019_share: 1.0 }, gw.addr, 1, Duration::from_millis(50), quick());
    sim.wait_for("the lost locations resent and answered", |c| c.reconnects >= 1 && c.resent >= 3).await;
    sim.wait_for("more live locations", |c| c.acked >= 10).await;
    let stats = sim.stats.clone();
    sim.stop().await;

    let conns = gw.frames();
    let lost: Vec<_> = conns[0][2..=4]
        .iter()
        .map(|f| match message(f).body {
            Body::Location(l) => l.time,
            other => panic!("not a location: {other:?}"),
        })
        .collect();
    let second = &conns[1];
    assert_eq!(message(&second[0]).header.id, id::AUTHENTICATION, "no new registration");
    let Body::LocationBatch(batch) = message(&second[1]).body else { panic!("a batch upload next") };
    assert_eq!(batch.kind, 1, "a blind-area upload");
    let times: Vec<_> = batch.locations.iter().map(|l| l.time).collect();
    assert_eq!(times[..3], lost[..], "the unanswered locations first, in order");
    assert!(ids(&second[2..]).contains(&id::LOCATION), "then live reports");
    let c = stats.counts();
    assert_eq!((c.abandoned, c.given_up, c.dropped, c.login_refused), (0, 0, 0, 0), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_again_when_its_code_is_refused() {
    // The second connection's platform has forgotten the terminal: the old code is refused,
    // a new registration gets another.
    let gw = Gateway::start(splitter, |at, frame| match (at.conn, at.nth) {
        (0, 2) => Act::Close,
        (0, _) => platform(frame),
        _ => answer(frame, b"NEW-CODE"),
    })
    .await;
    let sim = Sim::start(TcpProtocol::Jt808 { v2019_share: 0.0 }, gw.addr, 1, Duration::from_millis(50), quick());
    sim.wait_for("locations on the second session", |c| c.reconnects >= 1 && c.acked >= 3).await;
    let stats = sim.stats.clone();
    sim.stop().await;

    let second = &gw.frames()[1];
    assert_eq!(ids(&second[..3]), [id::AUTHENTICATION, id::REGISTER, id::AUTHENTICATION]);
    let Body::Authentication(auth) = message(&second[2]).body else { unreachable!() };
    assert_eq!(auth.code, b"NEW-CODE");
    assert_eq!(stats.counts().login_refused, 0, "a stale code is no refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_is_tried_again_after_a_backoff() {
    let gw = Gateway::start(splitter, |at, frame| match at.conn {
        0 => {
            let m = message(frame);
            Act::Answer(encode_register_response(&m.header, 1, RegisterResult::NoSuchTerminal, b"").unwrap())
        }
        _ => platform(frame),
    })
    .await;
    let sim = Sim::start(TcpProtocol::Jt808 { v2019_share: 0.0 }, gw.addr, 1, Duration::from_millis(50), quick());
    sim.wait_for("a session after the refusal", |c| c.acked >= 3).await;
    let stats = sim.stats.clone();
    sim.stop().await;
    let c = stats.counts();
    assert_eq!((c.login_refused, c.sessions), (1, 1), "{c:?}");
    let conns = gw.frames();
    assert_eq!(ids(&conns[0]), [id::REGISTER]);
    assert_eq!(ids(&conns[1][..2]), [id::REGISTER, id::AUTHENTICATION]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_terminal_sends_heartbeats() {
    let gw = Gateway::start(splitter, |_, frame| platform(frame)).await;
    let timing = TcpTiming { heartbeat_every: Duration::from_millis(50), ..quick() };
    let sim = Sim::start(TcpProtocol::Jt808 { v2019_share: 1.0 }, gw.addr, 1, Duration::from_secs(3_600), timing);
    sim.wait_for("heartbeats", |c| c.heartbeats >= 3).await;
    let stats = sim.stats.clone();
    sim.stop().await;
    assert_eq!((stats.counts().sessions, stats.counts().reconnects), (1, 0));
    assert!(ids(&gw.frames()[0][2..]).iter().all(|&i| i == id::HEARTBEAT));
}
