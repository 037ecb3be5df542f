//! What each fuzz target does with one input, shared by the targets in `fuzz_targets/` and
//! by the regression tests of the main workspace (`tests/it/fuzz_regressions.rs` includes
//! this file as a module), so a kept input replays exactly as the fuzzer ran it.
//!
//! Every function must return normally for any bytes: a panic, from a decoder or from one
//! of the assertions below, is a finding.

use std::hint::black_box;
use std::sync::LazyLock;

use fleet_domain::Vin;
use fleet_ingest::decode::gbt32960::{self, Body};
use fleet_ingest::decode::json;
use fleet_jt808 as jt808;

/// The topic's VIN the payloads are decoded under.
static VIN: LazyLock<Vin> = LazyLock::new(|| Vin::parse("LSJA24U66NS000001").expect("a valid VIN"));

/// GB/T 32960 frame envelope: marker 2, command 1, response 1, VIN 17, encryption 1, length 2.
const GBT_HEADER_LEN: usize = 24;

/// A JSON telemetry payload, as ingest decodes it from `fleet/v1/<vin>/telemetry`.
pub fn json_telemetry(data: &[u8]) {
    match json::decode(&VIN, data) {
        Ok(samples) => {
            assert!((1..=json::MAX_BATCH).contains(&samples.len()), "{} samples accepted", samples.len());
            for sample in samples {
                match sample {
                    Ok(s) => {
                        assert_eq!(s.vin, *VIN);
                        s.validate().expect("an accepted sample is valid");
                    }
                    Err(invalid) => {
                        black_box(invalid.to_string());
                    }
                }
            }
        }
        // Ingest keeps a refused message as a dead letter with its reason and message.
        Err(e) => {
            black_box((e.reason(), e.to_string()));
        }
    }
}

/// A GB/T 32960 frame: as received, then with its length and BCC made right, so that
/// mutations also reach the data unit's parsers and not only the envelope checks.
pub fn gbt32960_frame(data: &[u8]) {
    gbt32960_frame_as_is(data);
    if let Some(repaired) = with_envelope_repaired(data) {
        gbt32960_frame_as_is(&repaired);
    }
}

fn gbt32960_frame_as_is(data: &[u8]) {
    let frame = match gbt32960::decode_frame(data) {
        Ok(frame) => frame,
        Err(e) => {
            black_box((e.reason(), e.to_string()));
            return;
        }
    };
    let is_report = matches!(frame.body, Body::Report(_));
    // Ingest turns a report into a sample and keeps the frame with it.
    let sample = gbt32960::report_sample(&frame, &VIN);
    assert_eq!(sample.is_some(), is_report, "a sample exactly for a report");
    match sample {
        Some(Ok(s)) => s.validate().expect("a report's sample is valid"),
        Some(Err(invalid)) => {
            black_box(invalid.to_string());
        }
        None => {}
    }
    // The web API decodes a stored frame's blocks for its readers: any frame ingest could
    // have stored must render.
    let blocks = gbt32960::blocks_json(data);
    assert_eq!(blocks.is_some(), is_report, "blocks exactly for a report");
}

/// The frame with its declared length and BCC set to fit its bytes; None when it is too
/// short to have an envelope or too long for the length WORD.
fn with_envelope_repaired(data: &[u8]) -> Option<Vec<u8>> {
    let body_len = data.len().checked_sub(GBT_HEADER_LEN + 1)?;
    let declared = u16::try_from(body_len).ok()?;
    let mut frame = data.to_vec();
    frame[GBT_HEADER_LEN - 2..GBT_HEADER_LEN].copy_from_slice(&declared.to_be_bytes());
    let last = frame.len() - 1;
    frame[last] = frame[2..last].iter().fold(0, |acc, b| acc ^ b);
    (frame != data).then_some(frame)
}

/// A JT/T 808 byte stream as a TCP gateway reads it: cut into frames (at once, and again in
/// two pushes cut where the first byte says, which must give the same frames), each frame
/// decoded; then the whole input as one frame, and as a message whose length bits, check
/// code, escaping and delimiters are made right, so that mutations also reach the header and
/// body readers and not only the framing checks.
pub fn jt808_frame(data: &[u8]) {
    let mut whole = jt808::FrameReader::default();
    whole.push(data);
    let frames: Vec<Vec<u8>> = std::iter::from_fn(|| whole.next_frame()).collect();
    let cut = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut halves = jt808::FrameReader::default();
    halves.push(&data[..cut]);
    let mut again: Vec<Vec<u8>> = std::iter::from_fn(|| halves.next_frame()).collect();
    halves.push(&data[cut..]);
    again.extend(std::iter::from_fn(|| halves.next_frame()));
    assert_eq!(again, frames, "the frames do not depend on how the bytes arrive");
    assert_eq!(halves.skipped_bytes(), whole.skipped_bytes());
    for frame in &frames {
        assert!(frame.len() <= jt808::MAX_FRAME_LEN);
        jt808_frame_as_is(frame);
    }
    jt808_frame_as_is(data);
    if let Some(repaired) = jt808_message_framed(data) {
        jt808_frame_as_is(&repaired);
    }
}

fn jt808_frame_as_is(frame: &[u8]) {
    let message = match jt808::decode_message(frame) {
        Ok(message) => message,
        Err(e) => {
            black_box((e.reason(), e.to_string()));
            return;
        }
    };
    // The gateway stores one sample per location; an accepted one is valid.
    let locations = match &message.body {
        jt808::Body::Location(location) => std::slice::from_ref(location),
        jt808::Body::LocationBatch(batch) => &batch.locations[..],
        _ => &[],
    };
    for location in locations {
        match jt808::location_sample(location, &VIN) {
            Ok(sample) => sample.validate().expect("an accepted sample is valid"),
            Err(invalid) => {
                black_box(invalid.to_string());
            }
        }
    }
    // What decodes encodes back to the same message, and can be answered in its edition.
    let encoded = jt808::encode_message(&message.header, &message.body).expect("a decoded message encodes");
    assert_eq!(jt808::decode_message(&encoded).as_ref(), Ok(&message), "a decoded message round-trips");
    let reply = jt808::encode_general_response(&message.header, 1, jt808::GeneralResult::Success)
        .expect("any decoded message can be answered");
    let answer = jt808::decode_message(&reply).expect("our reply decodes");
    assert_eq!((answer.header.edition, &answer.header.phone), (message.header.edition, &message.header.phone));
    let reply =
        jt808::encode_register_response(&message.header, 2, jt808::RegisterResult::Success, b"fuzz").expect("encodes");
    assert!(jt808::decode_message(&reply).is_ok(), "our registration response decodes");
}

/// `data` taken as an unescaped header and body: its length bits set to fit, then the check
/// code appended, escaped and delimited. None when it is too short for its header or its
/// body too long for the length bits.
fn jt808_message_framed(data: &[u8]) -> Option<Vec<u8>> {
    let properties = u16::from_be_bytes([*data.get(2)?, *data.get(3)?]);
    let header_len = if properties & 0x4000 != 0 { 17 } else { 12 } + if properties & 0x2000 != 0 { 4 } else { 0 };
    let body_len = u16::try_from(data.len().checked_sub(header_len)?).ok().filter(|len| *len <= 0x3FF)?;
    let mut message = data.to_vec();
    message[2..4].copy_from_slice(&((properties & !0x3FF) | body_len).to_be_bytes());
    message.push(jt808::check_code(&message));
    let mut frame = vec![0x7e];
    frame.extend_from_slice(&jt808::escape(&message));
    frame.push(0x7e);
    Some(frame)
}

/// An order-import CSV file, as `POST /api/v1/orders/import` receives it (bytes that are not
/// UTF-8 are refused before the parser).
pub fn order_csv(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        fleet_web::fuzzing::parse_order_csv(text);
    }
}
