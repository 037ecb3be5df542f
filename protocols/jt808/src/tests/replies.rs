//! The platform's replies, compared with frames built by hand in each edition.

use super::super::*;
use super::*;

fn request(edition: Edition, id: u16, serial: u16) -> Header {
    decode_packet(&match edition {
        Edition::V2013 => frame_2013(id, serial, &[]),
        Edition::V2019 => frame_2019(id, serial, &[]),
    })
    .expect("a request")
    .header
}

#[test]
fn answers_a_2013_registration_with_its_serial_success_and_the_code() {
    let reply = encode_register_response(
        &request(Edition::V2013, id::REGISTER, 0x0011),
        0x0200,
        RegisterResult::Success,
        b"AUTH1234",
    )
    .unwrap();
    let body = [&[0x00, 0x11, 0x00][..], b"AUTH1234"].concat();
    assert_eq!(reply, frame_2013(id::REGISTER_RESPONSE, 0x0200, &body));
}

#[test]
fn answers_a_2019_registration_in_the_2019_edition() {
    let reply = encode_register_response(
        &request(Edition::V2019, id::REGISTER, 0x0011),
        0x0200,
        RegisterResult::Success,
        b"AUTH1234",
    )
    .unwrap();
    let body = [&[0x00, 0x11, 0x00][..], b"AUTH1234"].concat();
    assert_eq!(reply, frame_2019(id::REGISTER_RESPONSE, 0x0200, &body));
}

#[test]
fn answers_an_unknown_terminal_with_result_four_and_no_code() {
    for edition in [Edition::V2013, Edition::V2019] {
        let reply = encode_register_response(
            &request(edition, id::REGISTER, 3),
            4,
            RegisterResult::NoSuchTerminal,
            b"AUTH1234",
        )
        .unwrap();
        let expected = match edition {
            Edition::V2013 => frame_2013(id::REGISTER_RESPONSE, 4, &[0x00, 0x03, 0x04]),
            Edition::V2019 => frame_2019(id::REGISTER_RESPONSE, 4, &[0x00, 0x03, 0x04]),
        };
        assert_eq!(reply, expected);
        let m = decode_message(&reply).unwrap();
        assert_eq!(m.body, Body::RegisterResponse(RegisterResponse { serial: 3, result: 4, auth_code: vec![] }));
    }
}

#[test]
fn answers_a_message_with_a_general_response_naming_its_serial_and_id() {
    let cases = [
        (GeneralResult::Success, 0),
        (GeneralResult::Failure, 1),
        (GeneralResult::BadMessage, 2),
        (GeneralResult::Unsupported, 3),
        (GeneralResult::AlarmAcknowledged, 4),
    ];
    for (result, byte) in cases {
        let reply = encode_general_response(&request(Edition::V2013, id::LOCATION, 0x1234), 7, result).unwrap();
        assert_eq!(reply, frame_2013(id::PLATFORM_RESPONSE, 7, &[0x12, 0x34, 0x02, 0x00, byte]));
        let reply = encode_general_response(&request(Edition::V2019, id::HEARTBEAT, 0x1234), 7, result).unwrap();
        assert_eq!(reply, frame_2019(id::PLATFORM_RESPONSE, 7, &[0x12, 0x34, 0x00, 0x02, byte]));
    }
}

#[test]
fn escapes_a_reply_whose_bytes_hold_the_delimiter() {
    // The request's serial 0x7e7d is repeated in the body; our own serial is 0x7d7e.
    let reply =
        encode_general_response(&request(Edition::V2013, id::AUTHENTICATION, 0x7e7d), 0x7d7e, GeneralResult::Success)
            .unwrap();
    assert_eq!(reply, frame_2013(id::PLATFORM_RESPONSE, 0x7d7e, &[0x7e, 0x7d, 0x01, 0x02, 0x00]));
    assert_eq!(reply.iter().filter(|&&b| b == 0x7e).count(), 2, "only the delimiters");
    let m = decode_message(&reply).unwrap();
    assert_eq!(m.header.serial, 0x7d7e);
    assert_eq!(m.body, Body::PlatformResponse(GeneralResponse { serial: 0x7e7d, id: id::AUTHENTICATION, result: 0 }));
}

#[test]
fn keeps_the_protocol_version_of_a_2019_request_in_the_reply() {
    let mut header = request(Edition::V2019, id::HEARTBEAT, 1);
    header.protocol_version = 3;
    let m = decode_message(&encode_general_response(&header, 2, GeneralResult::Success).unwrap()).unwrap();
    assert_eq!((m.header.edition, m.header.protocol_version, m.header.phone.as_str()), (Edition::V2019, 3, PHONE));
}

#[test]
fn refuses_to_encode_what_the_header_cannot_carry() {
    let header = Header::new(Edition::V2013, 0x0900, "1391234567890", 1);
    assert!(matches!(encode_message(&header, &Body::Heartbeat), Err(EncodeError::BadPhone(..))));
    let header = Header::new(Edition::V2019, 0x0900, PHONE, 1);
    assert_eq!(encode_message(&header, &Body::Other(vec![0; 1024])), Err(EncodeError::BodyTooLong(1024)));
    let code = vec![b'A'; 1100];
    let reply = encode_register_response(&request(Edition::V2013, id::REGISTER, 1), 1, RegisterResult::Success, &code);
    assert_eq!(reply, Err(EncodeError::BodyTooLong(1103)));
}
