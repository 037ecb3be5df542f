use chrono::NaiveDateTime;

use super::super::tests::{
    POSITION_2016, SIGNATURE_2025, TIME_2016, TIME_2025, VEHICLE_2016, VEHICLE_2025, VIN, at, hand_frame,
    position_2025, report_2016, report_2025,
};
use super::super::{Body, Command, Edition, Login, Logout, decode_frame};
use super::*;

/// What the clock says when a test answers: 2025-12-31 23:59:58 in Beijing.
fn now() -> NaiveDateTime {
    at(2025, 12, 31, 23, 59, 58)
}

/// Checks an answer's envelope (length and BCC included) and returns its header and data.
fn opened(reply: &[u8]) -> (Header, Vec<u8>) {
    let (header, data) = Header::parse(reply).expect("the answer's envelope is valid");
    (header, data.to_vec())
}

fn answered(request: &[u8], ack: Ack) -> (Header, Vec<u8>) {
    opened(&encode_reply(request, ack, now()).unwrap())
}

/// A vehicle login data unit of each edition: 2016 with two 3-character codes, 2025 with one
/// BMS of one 24-character pack serial number.
fn login_data(edition: Edition, time: [u8; 6]) -> Vec<u8> {
    let mut data = time.to_vec();
    data.extend_from_slice(&[0x00, 0x07]);
    data.extend_from_slice(b"89860012345678901234");
    match edition {
        Edition::V2016 => data.extend_from_slice(b"\x02\x03ABCDEF"),
        Edition::V2025 => {
            data.extend_from_slice(&[1, 1]);
            data.extend_from_slice(format!("{:0<24}", "PACK").as_bytes());
        }
    }
    data
}

#[test]
fn a_heartbeat_is_answered_with_an_empty_success_written_out_by_hand() {
    let heartbeat = hand_frame(b'#', 0x07, 0xFE, 0x01, &[]);
    let mut expected = vec![0x23, 0x23, 0x07, 0x01];
    expected.extend_from_slice(VIN);
    // The request's BCC 0xA3 with the flag 0xFE replaced by 0x01: 0xA3 ^ 0xFE ^ 0x01.
    expected.extend_from_slice(&[0x01, 0x00, 0x00, 0x5C]);
    assert_eq!(encode_reply(&heartbeat, Ack::Success, now()).unwrap(), expected);
}

#[test]
fn a_vehicle_login_is_answered_with_its_own_time_in_both_editions() {
    for (marker, edition, time) in [(b'#', Edition::V2016, TIME_2016), (b'$', Edition::V2025, TIME_2025)] {
        let request = hand_frame(marker, 0x01, 0xFE, 0x01, &login_data(edition, time));
        let Body::Login(Login { subsystems, .. }) = decode_frame(&request).unwrap().body else {
            panic!("the {edition:?} login does not decode")
        };
        assert_eq!(subsystems.len(), if edition == Edition::V2016 { 2 } else { 1 });
        let (header, data) = answered(&request, Ack::Success);
        assert_eq!(header, Header { edition, command: 0x01, response: 0x01, vin: *VIN, encryption: 0x01 });
        assert_eq!(data, time);
        // The terminal's own decoder reads it as a login acknowledgement.
        let ack = decode_frame(&encode_reply(&request, Ack::Success, now()).unwrap()).unwrap();
        assert_eq!((ack.command, ack.response, ack.body), (Command::Login, 0x01, Body::Empty));
    }
}

#[test]
fn a_login_from_an_unknown_vehicle_is_answered_with_an_error_and_its_time() {
    let request = hand_frame(b'#', 0x01, 0xFE, 0x01, &login_data(Edition::V2016, TIME_2016));
    let (header, data) = answered(&request, Ack::Error);
    assert_eq!((header.command, header.response), (0x01, 0x02));
    assert_eq!(data, TIME_2016);
}

#[test]
fn real_time_and_reissued_reports_are_answered_with_the_report_time() {
    let realtime_2016 = report_2016(&[VEHICLE_2016, POSITION_2016]);
    let realtime_2025 = report_2025(&[VEHICLE_2025, &position_2025(1, 122_106_800, 30_016_500), SIGNATURE_2025]);
    assert!(decode_frame(&realtime_2025).is_ok(), "the 2025 report is valid");
    let mut reissued_2016 = realtime_2016.clone();
    reissued_2016[2] = 0x03;
    let last = reissued_2016.len() - 1;
    reissued_2016[last] ^= 0x02 ^ 0x03;
    assert!(decode_frame(&reissued_2016).is_ok(), "the re-issued report is valid");
    for (request, command, time) in
        [(realtime_2016, 0x02, TIME_2016), (realtime_2025, 0x02, TIME_2025), (reissued_2016, 0x03, TIME_2016)]
    {
        let (header, data) = answered(&request, Ack::Success);
        assert_eq!((header.command, header.response, header.encryption), (command, 0x01, 0x01));
        assert_eq!(data, time, "the answer to command {command:#04x} carries the report's time");
    }
}

#[test]
fn a_time_calibration_is_answered_with_the_current_beijing_time() {
    for marker in [b'#', b'$'] {
        let (header, data) = answered(&hand_frame(marker, 0x08, 0xFE, 0x01, &[]), Ack::Success);
        assert_eq!((header.command, header.response), (0x08, 0x01));
        assert_eq!(data, [25, 12, 31, 23, 59, 58]);
    }
    let request = hand_frame(b'#', 0x08, 0xFE, 0x01, &[]);
    let far = at(2256, 1, 1, 0, 0, 0);
    assert_eq!(encode_reply(&request, Ack::Success, far), Err(ReplyError::TimeOutOfRange(far)));
    let early = at(1999, 12, 31, 23, 59, 59);
    assert_eq!(encode_reply(&request, Ack::Success, early), Err(ReplyError::TimeOutOfRange(early)));
    let (_, last_year) = opened(&encode_reply(&request, Ack::Success, at(2255, 2, 3, 4, 5, 6)).unwrap());
    assert_eq!(last_year, [255, 2, 3, 4, 5, 6]);
}

#[test]
fn a_vehicle_logout_is_answered_with_success_and_its_time_in_both_editions() {
    for (marker, edition) in [(b'#', Edition::V2016), (b'$', Edition::V2025)] {
        let request = hand_frame(marker, 0x04, 0xFE, 0x01, &[25, 11, 2, 18, 0, 0, 0x01, 0x00]);
        assert_eq!(
            decode_frame(&request).unwrap().body,
            Body::Logout(Logout { time: at(2025, 11, 2, 18, 0, 0), serial: 256 }),
            "the {edition:?} logout decodes"
        );
        let (header, data) = answered(&request, Ack::Success);
        assert_eq!((header.edition, header.command, header.response), (edition, 0x04, 0x01));
        assert_eq!(data, [25, 11, 2, 18, 0, 0]);
    }
}

#[test]
fn a_platform_login_and_logout_are_answered_with_success_or_error() {
    let mut login = TIME_2025.to_vec();
    login.extend_from_slice(&[0x00, 0x01]);
    login.extend_from_slice(&[b'u'; 12]);
    login.extend_from_slice(&[b'p'; 20]);
    login.push(0x01);
    let logout = [&TIME_2016[..], &[0x00, 0x01]].concat();
    for (request, time) in [
        (hand_frame(b'$', 0x05, 0xFE, 0x01, &login), TIME_2025),
        (hand_frame(b'#', 0x06, 0xFE, 0x01, &logout), TIME_2016),
    ] {
        for ack in [Ack::Success, Ack::Error] {
            let (header, data) = answered(&request, ack);
            assert_eq!((header.command, header.response), (request[2], ack.code()));
            assert_eq!(data, time);
        }
    }
}

#[test]
fn a_heartbeat_answer_keeps_the_request_vin_bytes_and_encryption_byte() {
    let mut request = hand_frame(b'$', 0x07, 0xFE, 0x03, &[]);
    request[20] = 0xC9;
    let last = request.len() - 1;
    request[last] = bcc(&request[2..last]);
    let (header, data) = answered(&request, Ack::Success);
    assert_eq!((header.vin[16], header.encryption, header.edition), (0xC9, 0x03, Edition::V2025));
    assert!(data.is_empty());
}

#[test]
fn nothing_is_answered_for_answers_unknown_commands_or_broken_frames() {
    let ack = hand_frame(b'#', 0x01, 0x01, 0x01, &TIME_2016);
    assert_eq!(encode_reply(&ack, Ack::Success, now()), Err(ReplyError::NotACommand(0x01)));
    for command in [0x09, 0x80, 0xC0] {
        let request = hand_frame(b'$', command, 0xFE, 0x01, &TIME_2025);
        assert_eq!(encode_reply(&request, Ack::Success, now()), Err(ReplyError::Unanswered(command)));
    }
    let mut corrupted = report_2016(&[VEHICLE_2016]);
    *corrupted.last_mut().unwrap() ^= 0x01;
    assert!(matches!(
        encode_reply(&corrupted, Ack::Success, now()),
        Err(ReplyError::Frame(FrameError::BadChecksum { .. }))
    ));
    let encrypted = hand_frame(b'#', 0x02, 0xFE, 0x03, &TIME_2016);
    assert_eq!(encode_reply(&encrypted, Ack::Success, now()), Err(ReplyError::Frame(FrameError::Encrypted(0x03))));
    let no_time = hand_frame(b'#', 0x04, 0xFE, 0x01, &[25, 3]);
    assert!(matches!(
        encode_reply(&no_time, Ack::Success, now()),
        Err(ReplyError::Frame(FrameError::Truncated { what: "time", .. }))
    ));
    let not_a_date = hand_frame(b'#', 0x01, 0xFE, 0x01, &[25, 2, 30, 0, 0, 0]);
    assert_eq!(
        encode_reply(&not_a_date, Ack::Error, now()),
        Err(ReplyError::Frame(FrameError::BadTime([25, 2, 30, 0, 0, 0])))
    );
}
