//! The JT/T 808 terminal's messages and its session state, without sockets.

use fleet_domain::SampleSource;
use fleet_jt808::{GeneralResult, RegisterResult, encode_general_response, encode_register_response};

use super::*;

fn vin() -> Vin {
    Vin::parse("LZSEVS1M0SZ000001").unwrap()
}

fn sample(i: i64) -> Sample {
    let ts = chrono::DateTime::from_timestamp(1_764_122_400 + i, 0).unwrap();
    let mut s = Sample::at(vin(), ts, 30.0123, 122.1034, SampleSource::Jt808);
    s.odometer_km = Some(1_234.5);
    s.speed_kmh = Some(42.0);
    s
}

fn terminal(edition: Edition) -> Jt808 {
    Jt808::new(edition, "13900000042".to_owned(), vin())
}

#[test]
fn registers_with_its_vin_then_authenticates_with_the_code_it_was_given() {
    for edition in [Edition::V2013, Edition::V2019] {
        let mut t = terminal(edition);
        let register = decode_message(&t.open().unwrap()).unwrap();
        assert_eq!((register.header.edition, register.header.phone.as_str()), (edition, "13900000042"));
        let Body::Register(r) = &register.body else { panic!("not a registration") };
        assert_eq!(r.vin(), Some(vin().as_str()));
        let reply = encode_register_response(&register.header, 9, RegisterResult::Success, b"CODE").unwrap();
        let Handshake::Send(auth) = t.handshake(&reply) else { panic!("no authentication") };
        let auth = decode_message(&auth).unwrap();
        let Body::Authentication(a) = &auth.body else { panic!("not an authentication") };
        assert_eq!(a.code, b"CODE");
        assert_eq!(a.imei.is_some(), edition == Edition::V2019, "2019 terminals send their IMEI");
        let ok = encode_general_response(&auth.header, 10, GeneralResult::Success).unwrap();
        assert_eq!(t.handshake(&ok), Handshake::Ready);
        // The next connection authenticates straight away.
        let again = decode_message(&t.open().unwrap()).unwrap();
        assert_eq!(again.header.id, id::AUTHENTICATION);
        assert!(again.header.serial > auth.header.serial, "serials count up");
    }
}

#[test]
fn ignores_answers_to_other_serials_and_reports_refusals() {
    let mut t = terminal(Edition::V2013);
    let register = decode_message(&t.open().unwrap()).unwrap();
    let mut other = register.header.clone();
    other.serial += 5;
    let stale = encode_register_response(&other, 1, RegisterResult::Success, b"X").unwrap();
    assert_eq!(t.handshake(&stale), Handshake::Ignore);
    assert_eq!(t.handshake(b"\x7e\x00\x7e"), Handshake::Ignore, "garbage");
    let no = encode_register_response(&register.header, 1, RegisterResult::NoSuchTerminal, b"").unwrap();
    assert!(matches!(t.handshake(&no), Handshake::Refused(_)));
    // A code refused right after it was issued is a refusal too.
    let register = decode_message(&t.open().unwrap()).unwrap();
    let yes = encode_register_response(&register.header, 1, RegisterResult::Success, b"C").unwrap();
    let Handshake::Send(auth) = t.handshake(&yes) else { panic!("no authentication") };
    let auth = decode_message(&auth).unwrap();
    let refused = encode_general_response(&auth.header, 1, GeneralResult::Failure).unwrap();
    assert!(matches!(t.handshake(&refused), Handshake::Refused(_)));
    assert_eq!(decode_message(&t.open().unwrap()).unwrap().header.id, id::REGISTER, "the code is forgotten");
}

#[test]
fn live_samples_go_as_locations_and_reissued_ones_as_blind_area_batches() {
    let mut t = terminal(Edition::V2019);
    let live = t.report(&[&sample(0)], false).unwrap();
    let m = decode_message(&live.frame).unwrap();
    assert_eq!(u64::from(m.header.serial), live.key);
    let Body::Location(l) = m.body else { panic!("not a location") };
    assert_eq!(fleet_jt808::location_sample(&l, &vin()).unwrap().ts, sample(0).ts);

    let samples: Vec<Sample> = (1..=MAX_BATCH as i64).map(sample).collect();
    let refs: Vec<&Sample> = samples.iter().collect();
    assert_eq!(t.max_batch(true), MAX_BATCH);
    let batch = t.report(&refs, true).unwrap();
    let m = decode_message(&batch.frame).unwrap();
    let Body::LocationBatch(b) = m.body else { panic!("not a batch") };
    assert_eq!((b.kind, b.locations.len()), (BLIND_AREA, MAX_BATCH));
    assert_eq!(b.locations[0].mileage, Some(12_345));

    let ack = encode_general_response(&m.header, 3, GeneralResult::Success).unwrap();
    assert_eq!(t.reply(&ack), Reply::Report { key: batch.key, ok: true });
    let heartbeat = decode_message(&t.heartbeat()).unwrap();
    let ack = encode_general_response(&heartbeat.header, 4, GeneralResult::Success).unwrap();
    assert_eq!(t.reply(&ack), Reply::Heartbeat);
    assert_eq!(t.reply(&live.frame), Reply::Other, "a terminal's own message is no answer");
}

#[test]
fn a_twenty_digit_phone_fits_a_2019_terminal() {
    let mut t = Jt808::new(Edition::V2019, "12345678901234567890".to_owned(), vin());
    let register = decode_message(&t.open().unwrap()).unwrap();
    assert_eq!(register.header.phone, "12345678901234567890");
    let reply = encode_register_response(&register.header, 1, RegisterResult::Success, b"C").unwrap();
    let Handshake::Send(auth) = t.handshake(&reply) else { panic!("no authentication") };
    let Body::Authentication(a) = decode_message(&auth).unwrap().body else { panic!("not an authentication") };
    assert_eq!(a.imei.unwrap().to_string(), "868901234567890");
}
