//! Every message the terminal sends, in both editions, and the ways their bodies go wrong.

use super::super::*;
use super::*;

fn decode(frame: &[u8]) -> Message {
    decode_message(frame).expect("the message decodes")
}

fn plain_2013(id: u16, serial: u16) -> Header {
    Header::new(Edition::V2013, id, PHONE, serial)
}

#[test]
fn reads_a_2013_header() {
    let m = decode(&frame_2013(id::HEARTBEAT, 0x0102, &[]));
    assert_eq!(m.header, plain_2013(id::HEARTBEAT, 0x0102));
    assert_eq!(m.header.protocol_version, 0);
    assert_eq!(m.body, Body::Heartbeat);
}

#[test]
fn reads_a_2019_header_with_its_version_byte_and_ten_byte_phone() {
    let m = decode(&frame_2019(id::HEARTBEAT, 9, &[]));
    assert_eq!(m.header, Header::new(Edition::V2019, id::HEARTBEAT, PHONE, 9));
    assert_eq!(m.header.protocol_version, 1);
}

#[test]
fn reads_a_2013_registration() {
    let mut body = vec![0x00, 0x21, 0x03, 0x84]; // Zhejiang (33), city 900
    body.extend_from_slice(b"ZS001");
    body.extend_from_slice(b"EV-T1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    body.extend_from_slice(b"T000001");
    body.push(0x01); // blue plate
    body.extend_from_slice(&[0xD5, 0xE3, b'L', b'1', b'2', b'3', b'4', b'5']); // 浙L12345
    let Body::Register(r) = decode(&frame_2013(id::REGISTER, 1, &body)).body else { panic!("a registration") };
    assert_eq!((r.province, r.city, r.plate_colour), (33, 900, 1));
    assert_eq!((r.maker.to_string(), r.model.to_string()), ("ZS001".to_owned(), "EV-T1".to_owned()));
    assert_eq!(r.terminal_id.to_string(), "T000001");
    assert_eq!(r.plate.to_string(), "浙L12345");
    assert_eq!(r.vin(), None, "a plated vehicle");
}

#[test]
fn reads_a_2019_registration_of_an_unplated_vehicle_by_its_vin() {
    let mut body = vec![0x00, 0x21, 0x03, 0x84];
    body.extend_from_slice(b"ZHOUSHAN001");
    body.extend_from_slice(&[b"EV-T1".as_slice(), &[0; 25]].concat());
    body.extend_from_slice(&[b"T000001".as_slice(), &[0; 23]].concat());
    body.push(0x00); // no plate yet: the VIN follows
    body.extend_from_slice(b"LSJA24U66NS000001");
    let Body::Register(r) = decode(&frame_2019(id::REGISTER, 1, &body)).body else { panic!("a registration") };
    assert_eq!((r.maker.to_string(), r.terminal_id.to_string()), ("ZHOUSHAN001".to_owned(), "T000001".to_owned()));
    assert_eq!(r.vin(), Some("LSJA24U66NS000001"));
    // The 2013 layout is shorter: the same body read as 2013 takes other bytes for fields.
    assert_ne!(decode(&frame_2013(id::REGISTER, 1, &body)).body, Body::Register(r));
}

#[test]
fn refuses_a_registration_cut_short() {
    let body = [0x00, 0x21, 0x03, 0x84, b'Z', b'S'];
    let err = decode_message(&frame_2013(id::REGISTER, 1, &body)).unwrap_err();
    assert_eq!(err, FrameError::Truncated { what: "maker id", needed: 5, remaining: 2 });
}

#[test]
fn reads_a_2013_authentication_as_its_whole_body() {
    let Body::Authentication(a) = decode(&frame_2013(id::AUTHENTICATION, 2, b"AUTH1234\0")).body else {
        panic!("an authentication")
    };
    assert_eq!(a, Authentication { code: b"AUTH1234".to_vec(), imei: None, software_version: None });
}

#[test]
fn reads_a_2019_authentication_with_imei_and_software_version() {
    let mut body = vec![8];
    body.extend_from_slice(b"AUTH1234");
    body.extend_from_slice(b"860000000000001");
    body.extend_from_slice(&[b"1.2.3".as_slice(), &[0; 15]].concat());
    let Body::Authentication(a) = decode(&frame_2019(id::AUTHENTICATION, 2, &body)).body else {
        panic!("an authentication")
    };
    assert_eq!(a.code, b"AUTH1234");
    assert_eq!(a.imei.map(|t| t.to_string()).as_deref(), Some("860000000000001"));
    assert_eq!(a.software_version.map(|t| t.to_string()).as_deref(), Some("1.2.3"));
    // A code length past the body is refused.
    let err = decode_message(&frame_2019(id::AUTHENTICATION, 2, &[9, b'A'])).unwrap_err();
    assert_eq!(err, FrameError::Truncated { what: "authentication code", needed: 9, remaining: 1 });
}

#[test]
fn reads_heartbeats_and_logouts_of_both_editions_and_refuses_a_body_on_them() {
    assert_eq!(decode(&frame_2013(id::HEARTBEAT, 3, &[])).body, Body::Heartbeat);
    assert_eq!(decode(&frame_2019(id::HEARTBEAT, 3, &[])).body, Body::Heartbeat);
    assert_eq!(decode(&frame_2013(id::LOGOUT, 4, &[])).body, Body::Logout);
    assert_eq!(decode(&frame_2019(id::LOGOUT, 4, &[])).body, Body::Logout);
    let err = decode_message(&frame_2013(id::HEARTBEAT, 3, &[0])).unwrap_err();
    assert_eq!(err, FrameError::TrailingBytes { what: "the message body", count: 1 });
}

#[test]
fn reads_a_location_report_in_both_editions() {
    for frame in [frame_2013(id::LOCATION, 5, LOCATION), frame_2019(id::LOCATION, 5, LOCATION)] {
        let Body::Location(l) = decode(&frame).body else { panic!("a location") };
        assert_eq!((l.alarm, l.status, l.fix(), l.acc_on()), (0, 3, true, true));
        assert_eq!((l.latitude(), l.longitude()), (30.0165, 122.1068));
        assert_eq!((l.altitude_m, l.speed_kmh(), l.direction), (12, 42.5, 90));
        assert_eq!(l.time, at(2025, 3, 1, 8, 30, 15));
        assert_eq!(l.time_utc().to_rfc3339(), "2025-03-01T00:30:15+00:00");
        assert_eq!((l.mileage, l.odometer_km()), (Some(123_456), Some(12_345.6)));
        assert_eq!(l.extras, [Extra { id: 0x30, value: vec![0x1F] }, Extra { id: 0x31, value: vec![0x0C] }]);
    }
}

#[test]
fn signs_southern_and_western_coordinates_by_the_status_bits() {
    // Bits 2 (south) and 3 (west), no fix.
    let Body::Location(l) = decode(&frame_2013(id::LOCATION, 5, &location_with_status(0b1100))).body else {
        panic!("a location")
    };
    assert_eq!((l.latitude(), l.longitude(), l.fix(), l.acc_on()), (-30.0165, -122.1068, false, false));
}

#[test]
fn reads_a_location_without_additional_items() {
    let Body::Location(l) = decode(&frame_2013(id::LOCATION, 5, &LOCATION[..28])).body else { panic!("a location") };
    assert_eq!((l.mileage, l.extras.len()), (None, 0));
}

#[test]
fn refuses_a_location_cut_short_or_with_a_truncated_item() {
    let err = decode_message(&frame_2013(id::LOCATION, 5, &LOCATION[..27])).unwrap_err();
    assert_eq!(err, FrameError::Truncated { what: "time", needed: 6, remaining: 5 });
    // The satellites item declares one byte and none follows.
    let err = decode_message(&frame_2013(id::LOCATION, 5, &LOCATION[..LOCATION.len() - 1])).unwrap_err();
    assert_eq!(err, FrameError::Truncated { what: "additional item", needed: 1, remaining: 0 });
    // An item id with no length byte.
    let err = decode_message(&frame_2013(id::LOCATION, 5, &[LOCATION, &[0x30]].concat())).unwrap_err();
    assert_eq!(err, FrameError::Truncated { what: "additional item length", needed: 1, remaining: 0 });
    assert_eq!(err.reason(), fleet_domain::DeadLetterReason::MalformedFrame);
}

#[test]
fn refuses_a_mileage_item_of_the_wrong_length_or_twice() {
    let body = [&LOCATION[..28], &[0x01, 0x02, 0x00, 0x01]].concat();
    let err = decode_message(&frame_2013(id::LOCATION, 5, &body)).unwrap_err();
    assert_eq!(err, FrameError::BadItemLength { id: 0x01, len: 2, expected: 4 });
    let body = [LOCATION, &[0x01, 0x04, 0, 0, 0, 1]].concat();
    assert_eq!(decode_message(&frame_2013(id::LOCATION, 5, &body)), Err(FrameError::DuplicateItem(0x01)));
}

#[test]
fn refuses_a_location_time_that_is_not_a_calendar_time() {
    let mut body = LOCATION.to_vec();
    body[22..28].copy_from_slice(&[0x25, 0x13, 0x01, 0x08, 0x30, 0x15]); // month 13
    let err = decode_message(&frame_2019(id::LOCATION, 5, &body)).unwrap_err();
    assert_eq!(err, FrameError::BadTime([0x25, 0x13, 0x01, 0x08, 0x30, 0x15]));
}

/// A batch body: count, type, then each location with its length WORD.
fn batch(count: u16, kind: u8, items: &[&[u8]]) -> Vec<u8> {
    let mut body = count.to_be_bytes().to_vec();
    body.push(kind);
    for item in items {
        body.extend_from_slice(&(item.len() as u16).to_be_bytes());
        body.extend_from_slice(item);
    }
    body
}

#[test]
fn reads_a_batch_upload_of_locations_in_both_editions() {
    let south_west = location_with_status(0b1110);
    let body = batch(2, 1, &[LOCATION, &south_west]);
    for frame in [frame_2013(id::LOCATION_BATCH, 6, &body), frame_2019(id::LOCATION_BATCH, 6, &body)] {
        let Body::LocationBatch(b) = decode(&frame).body else { panic!("a batch") };
        assert_eq!((b.kind, b.locations.len()), (1, 2));
        assert_eq!(b.locations[0].latitude(), 30.0165);
        assert_eq!((b.locations[1].latitude(), b.locations[1].longitude()), (-30.0165, -122.1068));
    }
}

#[test]
fn refuses_a_batch_whose_count_does_not_match_its_items() {
    let two = [LOCATION, LOCATION];
    let err = decode_message(&frame_2013(id::LOCATION_BATCH, 6, &batch(3, 0, &two))).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { what: "locations", .. }), "{err}");
    let err = decode_message(&frame_2013(id::LOCATION_BATCH, 6, &batch(1, 0, &two))).unwrap_err();
    assert!(matches!(err, FrameError::TrailingBytes { .. }), "{err}");
    // A huge count with few bytes is refused before anything is allocated for it.
    let err = decode_message(&frame_2013(id::LOCATION_BATCH, 6, &batch(u16::MAX, 0, &[LOCATION]))).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { what: "locations", .. }), "{err}");
    // An item's length past the body.
    let mut body = batch(1, 0, &[LOCATION]);
    body[3..5].copy_from_slice(&100u16.to_be_bytes());
    let err = decode_message(&frame_2013(id::LOCATION_BATCH, 6, &body)).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { what: "location", .. }), "{err}");
}

#[test]
fn reads_a_terminal_general_response() {
    let m = decode(&frame_2013(id::TERMINAL_RESPONSE, 7, &[0x00, 0x2A, 0x81, 0x03, 0x00]));
    assert_eq!(m.body, Body::TerminalResponse(GeneralResponse { serial: 42, id: 0x8103, result: 0 }));
}

#[test]
fn keeps_the_body_of_an_unknown_message_as_sent() {
    let m = decode(&frame_2019(0x0900, 8, &[0xF0, 0x01, 0x02]));
    assert_eq!((m.header.id, &m.body), (0x0900, &Body::Other(vec![0xF0, 0x01, 0x02])));
    assert_eq!(m.body.id(), None);
}

#[test]
fn refuses_an_encrypted_body_but_reads_its_header() {
    let mut message = id::LOCATION.to_be_bytes().to_vec();
    message.extend_from_slice(&(0x0400 | LOCATION.len() as u16).to_be_bytes()); // RSA (bit 10)
    message.extend_from_slice(&PHONE_2013);
    message.extend_from_slice(&[0x00, 0x05]);
    message.extend_from_slice(LOCATION);
    let frame = wrap(message);
    assert_eq!(decode_message(&frame), Err(FrameError::Encrypted(1)));
    assert_eq!(FrameError::Encrypted(1).reason(), fleet_domain::DeadLetterReason::Encrypted);
    let packet = decode_packet(&frame).unwrap();
    assert_eq!((packet.header.id, packet.header.serial, packet.header.encryption), (id::LOCATION, 5, 1));
}

#[test]
fn keeps_a_part_of_a_subpackaged_message_as_a_fragment() {
    let part = &LOCATION[..10];
    let mut message = id::LOCATION_BATCH.to_be_bytes().to_vec();
    message.extend_from_slice(&(0x2000 | part.len() as u16).to_be_bytes()); // subpackage (bit 13)
    message.extend_from_slice(&PHONE_2013);
    message.extend_from_slice(&[0x00, 0x09, 0x00, 0x03, 0x00, 0x01]); // serial 9, part 1 of 3
    message.extend_from_slice(part);
    let m = decode(&wrap(message));
    assert_eq!(m.header.subpackage, Some(Subpackage { total: 3, index: 1 }));
    assert_eq!(m.body, Body::Fragment(part.to_vec()));
    // The same in a 2019 header.
    let mut message = id::LOCATION_BATCH.to_be_bytes().to_vec();
    message.extend_from_slice(&(0x6000 | part.len() as u16).to_be_bytes());
    message.push(0x01);
    message.extend_from_slice(&PHONE_2019);
    message.extend_from_slice(&[0x00, 0x09, 0x00, 0x03, 0x00, 0x02]);
    message.extend_from_slice(part);
    let m = decode(&wrap(message));
    assert_eq!((m.header.edition, m.header.subpackage), (Edition::V2019, Some(Subpackage { total: 3, index: 2 })));
}
