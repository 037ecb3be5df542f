//! Escaping, the check code, the declared length, and cutting a stream into frames.

use fleet_domain::DeadLetterReason;

use super::super::*;
use super::*;

#[test]
fn escapes_the_delimiter_and_the_escape_byte_and_undoes_it() {
    let raw = [0x30, 0x7e, 0x08, 0x7d, 0x55, 0x7d, 0x02, 0x7e];
    let escaped = escape(&raw);
    assert_eq!(escaped, [0x30, 0x7d, 0x02, 0x08, 0x7d, 0x01, 0x55, 0x7d, 0x01, 0x02, 0x7d, 0x02]);
    assert_eq!(unescape(&escaped).unwrap(), raw);
}

#[test]
fn refuses_an_escape_byte_not_followed_by_one_or_two() {
    assert_eq!(unescape(&[0x01, 0x7d, 0x03]), Err(FrameError::BadEscape { offset: 1, next: Some(0x03) }));
    assert_eq!(unescape(&[0x01, 0x02, 0x7d]), Err(FrameError::BadEscape { offset: 2, next: None }));
    assert_eq!(unescape(&[0x01, 0x7e, 0x02]), Err(FrameError::StrayDelimiter(1)));
    // Inside a whole frame: the heartbeat's serial byte 0x7d sent bare.
    let mut frame = frame_2013(id::HEARTBEAT, 0x0100, &[]);
    let serial_at = frame.len() - 4;
    frame[serial_at] = 0x7d;
    let err = decode_packet(&frame).unwrap_err();
    assert!(matches!(err, FrameError::BadEscape { .. }), "{err}");
    assert_eq!(err.reason(), DeadLetterReason::MalformedFrame);
}

#[test]
fn reads_a_message_whose_header_and_check_code_needed_escaping() {
    // Serial 0x7e7d escapes to four bytes; find a body whose check code is 0x7e too.
    let frame = frame_2013(id::HEARTBEAT, 0x7e7d, &[]);
    assert!(frame.windows(4).any(|w| w == [0x7d, 0x02, 0x7d, 0x01]), "{frame:02x?}");
    assert_eq!(decode_packet(&frame).unwrap().header.serial, 0x7e7d);
    let body = (0..=255u8)
        .map(|b| [b])
        .find(|body| frame_2013(0x0900, 1, body).ends_with(&[0x7d, 0x02, 0x7e]))
        .expect("some one-byte body gives check code 0x7e");
    assert_eq!(decode_packet(&frame_2013(0x0900, 1, &body)).unwrap().body, body);
}

#[test]
fn refuses_a_bad_check_code_as_a_bad_checksum() {
    let mut frame = frame_2013(id::LOCATION, 5, LOCATION);
    let check_at = frame.len() - 2;
    frame[check_at] ^= 0x01;
    let err = decode_message(&frame).unwrap_err();
    assert!(matches!(err, FrameError::BadCheckCode { .. }), "{err}");
    assert_eq!(err.reason(), DeadLetterReason::BadChecksum);
    // A flipped body byte is caught the same way.
    let mut frame = frame_2019(id::LOCATION, 5, LOCATION);
    frame[30] ^= 0x40;
    assert!(matches!(decode_message(&frame), Err(FrameError::BadCheckCode { .. })));
}

#[test]
fn refuses_a_body_longer_or_shorter_than_declared() {
    let mut message = id::HEARTBEAT.to_be_bytes().to_vec();
    message.extend_from_slice(&[0x00, 0x02]);
    message.extend_from_slice(&PHONE_2013);
    message.extend_from_slice(&[0x00, 0x01, 0xAA]);
    assert_eq!(decode_packet(&wrap(message)), Err(FrameError::LengthMismatch { declared: 2, actual: 1 }));
}

#[test]
fn refuses_a_frame_too_short_for_a_header() {
    assert_eq!(decode_packet(&[0x7e, 0x7e]), Err(FrameError::TooShort(0)));
    assert_eq!(decode_packet(&wrap(vec![0x00, 0x02, 0x00])), Err(FrameError::TooShort(4)));
    // A 2019 header needs more than the 13 bytes of the shortest 2013 message.
    let mut message = vec![0x00, 0x02, 0x40, 0x00, 0x01];
    message.extend_from_slice(&PHONE_2019[..7]);
    let err = decode_packet(&wrap(message)).unwrap_err();
    assert!(matches!(err, FrameError::Truncated { what: "phone number", .. }), "{err}");
}

#[test]
fn reads_a_frame_with_or_without_its_delimiters() {
    let frame = frame_2013(id::HEARTBEAT, 1, &[]);
    assert_eq!(decode_packet(&frame), decode_packet(&frame[1..frame.len() - 1]));
}

fn frames(reader: &mut FrameReader) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| reader.next_frame()).collect()
}

#[test]
fn cuts_frames_out_of_a_stream_and_counts_the_bytes_between() {
    let a = frame_2013(id::HEARTBEAT, 1, &[]);
    let b = frame_2019(id::LOCATION, 2, LOCATION);
    let mut reader = FrameReader::default();
    reader.push(b"junk");
    reader.push(&a[..5]);
    assert_eq!(reader.next_frame(), None, "half a frame is not a frame");
    reader.push(&a[5..]);
    reader.push(b"??");
    reader.push(&b);
    assert_eq!(frames(&mut reader), [a.clone(), b.clone()]);
    assert_eq!(reader.skipped_bytes(), 6);
    assert_eq!(reader.pending_len(), 0);
}

#[test]
fn gives_no_empty_frame_for_back_to_back_delimiters() {
    let a = frame_2013(id::HEARTBEAT, 1, &[]);
    let mut reader = FrameReader::default();
    // A stray delimiter, then the frame's own: the stray one starts nothing.
    reader.push(&[0x7e]);
    reader.push(&a);
    reader.push(&a);
    assert_eq!(frames(&mut reader), [a.clone(), a.clone()]);
    assert_eq!(reader.skipped_bytes(), 1);
    // Three in a row before a frame's body: two start nothing.
    reader.push(&[0x7e, 0x7e]);
    reader.push(&a);
    assert_eq!(frames(&mut reader), [a]);
    assert_eq!(reader.skipped_bytes(), 3);
}

#[test]
fn drops_a_frame_longer_than_the_cap_and_finds_the_next() {
    let a = frame_2013(id::HEARTBEAT, 1, &[]);
    let mut reader = FrameReader::new(a.len());
    let long = frame_2013(id::LOCATION, 2, LOCATION);
    reader.push(&long);
    reader.push(&a);
    assert_eq!(frames(&mut reader), std::slice::from_ref(&a));
    assert_eq!((reader.oversized_frames(), reader.skipped_bytes()), (1, long.len() as u64));
    // Bytes without any delimiter after a start never take more than the cap.
    reader.push(&[0x7e]);
    for _ in 0..1000 {
        reader.push(&[0x55; 64]);
        assert!(reader.pending_len() <= a.len());
    }
    reader.push(&[0x7e]);
    reader.push(&a);
    assert_eq!(frames(&mut reader), [a]);
    assert_eq!(reader.oversized_frames(), 2);
}

#[test]
fn caps_frames_at_the_longest_a_terminal_can_send_by_default() {
    let body = vec![0x7e; 1023];
    let mut header = Header::new(Edition::V2019, 0x0900, "13912345678901234567", 0x7e7e);
    header.subpackage = Some(Subpackage { total: 0x7e7e, index: 0x7e7e });
    let longest = encode_message(&header, &Body::Other(body)).unwrap();
    assert!(longest.len() > 2_000, "{} of {MAX_FRAME_LEN}", longest.len());
    let mut reader = FrameReader::default();
    reader.push(&longest);
    assert_eq!(reader.next_frame(), Some(longest));
}
