//! Whole frames of the commands a vehicle sends (the envelope is checked by `header.rs`),
//! frame assembly, and the session bodies: login and logout.

use super::header::Header;
use super::reader::Reader;
use super::report::Report;
use super::{Body, Command, ENCRYPTION_NONE, Edition, Frame, FrameError, Login, Logout, RESPONSE_COMMAND};

/// Bytes before the data unit: marker 2, command 1, response 1, VIN 17, encryption 1, length 2.
pub(super) const HEADER_LEN: usize = 24;
/// The shortest frame: a header, an empty data unit and the BCC.
pub(super) const MIN_FRAME_LEN: usize = HEADER_LEN + 1;
/// Length of a 2025 battery-pack serial number at login.
const PACK_SN_LEN: usize = 24;

/// Decodes one whole frame, as carried by one MQTT message.
///
/// Checks run outside in: start marker, length, BCC, command, encryption, then the body, so
/// a corrupted frame is reported as such rather than as whatever its garbled bytes resemble.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, FrameError> {
    let (header, data) = Header::parse(bytes)?;
    let command = Command::from_code(header.command).ok_or(FrameError::UnsupportedCommand(header.command))?;
    let Header { edition, response, encryption, .. } = header;
    if encryption != ENCRYPTION_NONE {
        return Err(FrameError::Encrypted(encryption));
    }
    let body = if response != RESPONSE_COMMAND && data.len() == 6 {
        // An acknowledgement carries only the platform's time.
        Reader::new(data).time()?;
        Body::Empty
    } else {
        match command {
            Command::Login => Body::Login(login(edition, data)?),
            Command::RealtimeReport | Command::ReissueReport => Body::Report(Report::decode(edition, data)?),
            Command::Logout => Body::Logout(logout(data)?),
            Command::Heartbeat | Command::TimeSync => {
                Reader::new(data).finish("a heartbeat or time-sync command")?;
                Body::Empty
            }
        }
    };
    Ok(Frame { edition, command, response, vin: header.vin(), encryption, body })
}

/// The block check character: XOR of every byte from the command through the data unit.
pub(super) fn bcc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// Wraps a data unit in a command frame with a plain-text data unit and the right BCC.
/// `vin` is written as its first 17 bytes, NUL-padded.
pub(super) fn assemble(edition: Edition, command: Command, vin: &str, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(MIN_FRAME_LEN + data.len());
    frame.extend_from_slice(&[edition.marker(), edition.marker(), command.code(), RESPONSE_COMMAND]);
    let mut vin_bytes = [0u8; 17];
    for (slot, b) in vin_bytes.iter_mut().zip(vin.bytes()) {
        *slot = b;
    }
    frame.extend_from_slice(&vin_bytes);
    frame.push(ENCRYPTION_NONE);
    // Data units built here are a few hundred bytes; saturate rather than wrap, so an
    // oversized one fails the length check instead of passing as something else.
    frame.extend_from_slice(&u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes());
    frame.extend_from_slice(data);
    frame.push(bcc(&frame[2..]));
    frame
}

fn login(edition: Edition, data: &[u8]) -> Result<Login, FrameError> {
    let mut r = Reader::new(data);
    let time = r.time()?;
    let serial = r.u16("login serial")?;
    let iccid = r.text(20, "ICCID")?;
    let count = usize::from(r.u8("energy storage subsystem count")?);
    let subsystems = match edition {
        Edition::V2016 => {
            let code_len = usize::from(r.u8("battery code length")?);
            r.expect_items(count, code_len, "battery codes")?;
            (0..count).map(|_| r.text(code_len, "battery code").map(|c| vec![c])).collect::<Result<_, _>>()?
        }
        Edition::V2025 => {
            let packs = r.take(count, "packs per BMS")?;
            let total: usize = packs.iter().map(|&n| usize::from(n)).sum();
            r.expect_items(total, PACK_SN_LEN, "battery pack serial numbers")?;
            packs
                .iter()
                .map(|&n| (0..n).map(|_| r.text(PACK_SN_LEN, "battery pack serial number")).collect())
                .collect::<Result<_, _>>()?
        }
    };
    r.finish("the login body")?;
    Ok(Login { time, serial, iccid, subsystems })
}

/// A logout body (vehicle or platform: both are the time and the login's serial).
pub(super) fn logout(data: &[u8]) -> Result<Logout, FrameError> {
    let mut r = Reader::new(data);
    let logout = Logout { time: r.time()?, serial: r.u16("logout serial")? };
    r.finish("the logout body")?;
    Ok(logout)
}

#[cfg(test)]
mod tests {
    use fleet_domain::DeadLetterReason;
    use proptest::prelude::*;

    use super::super::report_sample;
    use super::super::tests::*;
    use super::*;

    /// A heartbeat written out in full, BCC included (computed by hand).
    const HEARTBEAT_2016: &[u8] = &[
        0x23, 0x23, 0x07, 0xFE, b'L', b'S', b'J', b'A', b'2', b'4', b'U', b'6', b'6', b'N', b'S', b'0', b'0', b'0',
        b'0', b'0', b'1', 0x01, 0x00, 0x00, 0xA3,
    ];

    fn valid_report() -> Vec<u8> {
        report_2016(&[VEHICLE_2016, POSITION_2016])
    }

    /// Recomputes the BCC after a test edits a frame.
    fn reseal(frame: &mut [u8]) {
        let last = frame.len() - 1;
        frame[last] = bcc(&frame[2..last]);
    }

    #[test]
    fn decodes_a_literal_heartbeat() {
        let frame = decode_frame(HEARTBEAT_2016).unwrap();
        assert_eq!(
            (frame.edition, frame.command, frame.body.clone()),
            (Edition::V2016, Command::Heartbeat, Body::Empty)
        );
        assert_eq!((frame.vin.as_str(), frame.encryption), ("LSJA24U66NS000001", 0x01));
        assert_eq!(super::super::encode_heartbeat(Edition::V2016, &vin()), HEARTBEAT_2016);
    }

    #[test]
    fn rejects_frame_with_bad_checksum() {
        let mut frame = valid_report();
        *frame.last_mut().unwrap() ^= 0x01;
        let err = decode_frame(&frame).unwrap_err();
        assert!(matches!(err, FrameError::BadChecksum { .. }), "{err:?}");
        assert_eq!(err.reason(), DeadLetterReason::BadChecksum);
        // A flipped data bit is caught the same way.
        let mut frame = valid_report();
        frame[30] ^= 0x10;
        assert_eq!(decode_frame(&frame).unwrap_err().reason(), DeadLetterReason::BadChecksum);
    }

    #[test]
    fn rejects_frame_whose_length_does_not_match_its_bytes() {
        let frame = valid_report();
        let data_len = frame.len() - MIN_FRAME_LEN;
        let mut extra = frame.clone();
        extra.push(0x00);
        let err = decode_frame(&extra).unwrap_err();
        assert_eq!(err, FrameError::LengthMismatch { declared: data_len, actual: data_len + 1 });
        assert_eq!(err.reason(), DeadLetterReason::MalformedFrame);
        let missing = &frame[..frame.len() - 2];
        assert!(matches!(decode_frame(missing), Err(FrameError::LengthMismatch { .. })));
        let mut overstated = frame.clone();
        overstated[23] += 1;
        reseal(&mut overstated);
        assert!(matches!(decode_frame(&overstated), Err(FrameError::LengthMismatch { .. })));
    }

    #[test]
    fn rejects_frame_that_is_too_short_or_has_no_start_marker() {
        assert_eq!(decode_frame(b""), Err(FrameError::TooShort(0)));
        assert_eq!(decode_frame(b"#"), Err(FrameError::TooShort(1)));
        assert_eq!(decode_frame(&HEARTBEAT_2016[..24]), Err(FrameError::TooShort(24)));
        let mut frame = HEARTBEAT_2016.to_vec();
        frame[1] = b'$';
        assert_eq!(decode_frame(&frame), Err(FrameError::BadStartMarker(*b"#$")));
        assert_eq!(decode_frame(b"{\"ts\":1}").unwrap_err().reason(), DeadLetterReason::MalformedFrame);
    }

    #[test]
    fn rejects_commands_we_do_not_take() {
        for command in [0x05, 0x06, 0x09, 0x80, 0x82, 0xC0] {
            let err = decode_frame(&hand_frame(b'#', command, 0xFE, 0x01, &[])).unwrap_err();
            assert_eq!(err, FrameError::UnsupportedCommand(command));
            assert_eq!(err.reason(), DeadLetterReason::UnsupportedCommand);
        }
    }

    #[test]
    fn rejects_an_encrypted_data_unit() {
        for scheme in [0x02, 0x03, 0x04, 0x05, 0xFE, 0xFF] {
            let err = decode_frame(&hand_frame(b'$', 0x02, 0xFE, scheme, &TIME_2025)).unwrap_err();
            assert_eq!(err, FrameError::Encrypted(scheme));
            assert_eq!(err.reason(), DeadLetterReason::Encrypted);
        }
    }

    #[test]
    fn keeps_the_vin_bytes_as_sent() {
        let mut frame = HEARTBEAT_2016.to_vec();
        frame[19] = 0x00;
        frame[20] = 0xC9;
        reseal(&mut frame);
        let decoded = decode_frame(&frame).unwrap();
        assert_eq!(decoded.vin.chars().count(), 17);
        assert_eq!(decoded.vin, "LSJA24U66NS0000\u{0}\u{C9}");
        assert!(fleet_domain::Vin::parse(&decoded.vin).is_err());
    }

    #[test]
    fn decodes_a_2016_login() {
        let mut data = vec![25, 3, 1, 7, 59, 58, 0x00, 0x07];
        data.extend_from_slice(b"89860012345678901234");
        data.extend_from_slice(&[2, 3]);
        data.extend_from_slice(b"ABCDEF");
        let frame = decode_frame(&hand_frame(b'#', 0x01, 0xFE, 0x01, &data)).unwrap();
        assert_eq!(frame.command, Command::Login);
        let Body::Login(login) = frame.body else { panic!("not a login: {:?}", frame.body) };
        assert_eq!((login.time, login.serial), (at(2025, 3, 1, 7, 59, 58), 7));
        assert_eq!(login.iccid, "89860012345678901234");
        assert_eq!(login.subsystems, vec![vec!["ABC".to_owned()], vec!["DEF".to_owned()]]);
    }

    #[test]
    fn decodes_a_2025_login_with_packs_per_bms() {
        let mut data = vec![25, 11, 2, 7, 0, 0, 0x01, 0x00];
        data.extend_from_slice(b"89860012345678901234");
        data.extend_from_slice(&[2, 1, 2]);
        for sn in ["A", "B", "C"] {
            data.extend_from_slice(format!("{sn:0<24}").as_bytes());
        }
        let frame = decode_frame(&hand_frame(b'$', 0x01, 0xFE, 0x01, &data)).unwrap();
        let Body::Login(login) = frame.body else { panic!("not a login") };
        assert_eq!(login.serial, 256);
        assert_eq!(login.subsystems.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(login.subsystems[1][1], format!("C{}", "0".repeat(23)));
        // One pack serial number short.
        let short = hand_frame(b'$', 0x01, 0xFE, 0x01, &data[..data.len() - 24]);
        assert!(matches!(decode_frame(&short), Err(FrameError::Truncated { .. })));
    }

    #[test]
    fn decodes_a_logout_and_rejects_one_with_extra_bytes() {
        let frame = decode_frame(&hand_frame(b'#', 0x04, 0xFE, 0x01, &[25, 3, 1, 18, 0, 0, 0x00, 0x07])).unwrap();
        assert_eq!(frame.body, Body::Logout(Logout { time: at(2025, 3, 1, 18, 0, 0), serial: 7 }));
        let err =
            decode_frame(&hand_frame(b'#', 0x04, 0xFE, 0x01, &[25, 3, 1, 18, 0, 0, 0x00, 0x07, 0x00])).unwrap_err();
        assert_eq!(err, FrameError::TrailingBytes { what: "the logout body", count: 1 });
    }

    #[test]
    fn decodes_time_sync_and_acknowledgements_as_empty_bodies() {
        let sync = decode_frame(&hand_frame(b'$', 0x08, 0xFE, 0x01, &[])).unwrap();
        assert_eq!((sync.command, sync.body), (Command::TimeSync, Body::Empty));
        let ack = decode_frame(&hand_frame(b'#', 0x01, 0x01, 0x01, &TIME_2016)).unwrap();
        assert_eq!((ack.command, ack.response, ack.body), (Command::Login, 0x01, Body::Empty));
        let bad_time = hand_frame(b'#', 0x07, 0x01, 0x01, &[25, 13, 1, 0, 0, 0]);
        assert_eq!(decode_frame(&bad_time), Err(FrameError::BadTime([25, 13, 1, 0, 0, 0])));
        let chatty_heartbeat = hand_frame(b'#', 0x07, 0xFE, 0x01, &[0x00]);
        assert!(matches!(decode_frame(&chatty_heartbeat), Err(FrameError::TrailingBytes { .. })));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_frame(&bytes);
        }

        #[test]
        fn never_panics_on_arbitrary_data_units_with_a_valid_envelope(
            marker in prop::sample::select(vec![b'#', b'$']),
            command in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x04, 0x07, 0x08]),
            data in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let _ = decode_frame(&hand_frame(marker, command, 0xFE, 0x01, &[&TIME_2016[..], &data].concat()));
        }

        #[test]
        fn never_panics_on_mutated_valid_frames(
            edition in prop::sample::select(vec![Edition::V2016, Edition::V2025]),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
            seal in any::<bool>(),
        ) {
            let sample = fleet_domain::Sample::at(
                vin(),
                chrono::DateTime::from_timestamp(1_740_789_000, 0).unwrap(),
                30.0,
                122.0,
                edition.source(),
            );
            let mut frame = encode_sample(edition, false, &sample);
            for (at, byte) in &edits {
                let i = at.index(frame.len());
                frame[i] = *byte;
            }
            if seal {
                // Keep the envelope valid so the mutation reaches the block parser; sometimes
                // also cut the data unit short and fix the length to match.
                frame.pop();
                let keep = HEADER_LEN + cut.index(frame.len() - HEADER_LEN + 1);
                frame.truncate(keep);
                let len = (frame.len() - HEADER_LEN) as u16;
                frame.push(0);
                frame[22..24].copy_from_slice(&len.to_be_bytes());
                reseal(&mut frame);
            }
            if let Ok(decoded) = decode_frame(&frame) {
                let _ = report_sample(&decoded, &vin());
            }
        }
    }
}
