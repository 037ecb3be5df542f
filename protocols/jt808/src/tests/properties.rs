//! Properties over random input: the stream splitter does not care how bytes arrive, no input
//! makes the decoder panic, and what we encode decodes to itself.

use chrono::{DateTime, NaiveDateTime, Utc};
use fleet_domain::Vin;
use proptest::prelude::*;

use super::super::*;
use super::*;

/// Frames, junk and stray delimiters, in any order.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        (any::<u16>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(id, serial, body)| frame_2013(id, serial, &body)),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(serial, body)| frame_2019(
            id::LOCATION,
            serial,
            &body
        )),
        prop::collection::vec(any::<u8>(), 0..60),
        Just(vec![0x7e]),
        Just(vec![0x7e, 0x7e]),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// Everything a reader with cap `max_len` gives for `chunks` pushed in turn.
fn split(chunks: &[&[u8]], max_len: usize) -> (Vec<Vec<u8>>, u64, u64) {
    let mut reader = FrameReader::new(max_len);
    let mut frames = Vec::new();
    for chunk in chunks {
        reader.push(chunk);
        frames.extend(std::iter::from_fn(|| reader.next_frame()));
    }
    (frames, reader.skipped_bytes(), reader.oversized_frames())
}

/// A phone number that reads back as itself: no leading zero, at most `max` digits.
fn phone(max: usize) -> impl Strategy<Value = String> {
    (1..=9u8, prop::collection::vec(0..=9u8, 0..max))
        .prop_map(|(first, rest)| std::iter::once(first).chain(rest).map(|d| char::from(b'0' + d)).collect())
}

fn any_header(id: u16) -> impl Strategy<Value = Header> {
    prop_oneof![
        (phone(12), any::<u16>()).prop_map(move |(phone, serial)| Header::new(Edition::V2013, id, phone, serial)),
        (phone(20), any::<u16>(), any::<u8>()).prop_map(move |(phone, serial, version)| {
            let mut header = Header::new(Edition::V2019, id, phone, serial);
            header.protocol_version = version;
            header
        }),
    ]
}

fn any_time() -> impl Strategy<Value = NaiveDateTime> {
    // 2000-01-01 to 2099-12-31, Beijing time.
    (946_684_800i64..4_102_444_800).prop_map(|secs| DateTime::from_timestamp(secs, 0).unwrap().naive_utc())
}

prop_compose! {
    fn any_location()(
        alarm in any::<u32>(),
        status in any::<u32>(),
        latitude_e6 in any::<u32>(),
        longitude_e6 in any::<u32>(),
        altitude_m in any::<u16>(),
        speed in any::<u16>(),
        direction in any::<u16>(),
        time in any_time(),
        mileage in proptest::option::of(any::<u32>()),
        extras in prop::collection::vec(
            (2..=255u8, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(id, value)| Extra { id, value }),
            0..5,
        ),
    ) -> Location {
        Location { alarm, status, latitude_e6, longitude_e6, altitude_m, speed, direction, time, mileage, extras }
    }
}

proptest! {
    #[test]
    fn a_stream_gives_the_same_frames_however_it_is_cut(
        bytes in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        max_len in prop_oneof![Just(MAX_FRAME_LEN), 2..60usize],
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.extend([0, bytes.len()]);
        at.sort_unstable();
        let chunks: Vec<&[u8]> = at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
        let whole = split(&[&bytes], max_len);
        prop_assert_eq!(split(&chunks, max_len), whole.clone());
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(split(&one_by_one, max_len), whole.clone());
        // Every byte is in a frame, skipped, or still pending.
        let (frames, skipped, _) = whole;
        let mut reader = FrameReader::new(max_len);
        reader.push(&bytes);
        let framed: usize = frames.iter().map(Vec::len).sum();
        prop_assert_eq!(framed as u64 + skipped + reader.pending_len() as u64, bytes.len() as u64);
        for frame in frames {
            prop_assert!(frame.len() >= 3 && frame.len() <= max_len);
            prop_assert!(frame[0] == 0x7e && frame[frame.len() - 1] == 0x7e);
            prop_assert!(!frame[1..frame.len() - 1].contains(&0x7e));
        }
    }

    #[test]
    fn a_stream_of_our_frames_gives_them_back_in_order(
        frames in prop::collection::vec((any::<u16>(), prop::collection::vec(any::<u8>(), 0..30)), 0..8),
        junk in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no delimiter", |b| *b != 0x7e), 0..10), 8),
    ) {
        let frames: Vec<Vec<u8>> = frames.iter().map(|(serial, body)| frame_2013(0x0900, *serial, body)).collect();
        let bytes: Vec<u8> = frames.iter().zip(&junk).flat_map(|(f, j)| [j.clone(), f.clone()].concat()).collect();
        let (got, skipped, oversized) = split(&[&bytes], MAX_FRAME_LEN);
        prop_assert_eq!(&got, &frames);
        prop_assert_eq!(skipped, junk.iter().take(frames.len()).map(|j| j.len() as u64).sum::<u64>());
        prop_assert_eq!(oversized, 0);
    }

    #[test]
    fn no_bytes_make_the_decoder_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_message(&bytes);
        // With a right check code and delimiters the header and body readers are reached too.
        let _ = decode_message(&wrap(bytes.clone()));
        let mut header_like = vec![0x02, 0x00, 0x00, bytes.len().min(0x3FF) as u8];
        header_like.extend_from_slice(&bytes);
        let _ = decode_message(&wrap(header_like));
    }

    #[test]
    fn escaping_round_trips_and_leaves_no_delimiter(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let escaped = escape(&bytes);
        prop_assert!(!escaped.contains(&0x7e));
        prop_assert_eq!(unescape(&escaped).unwrap(), bytes);
    }

    #[test]
    fn a_general_response_decodes_to_what_was_answered(
        request in any::<u16>().prop_flat_map(any_header),
        platform_serial in any::<u16>(),
        result in prop::sample::select(vec![
            GeneralResult::Success, GeneralResult::Failure, GeneralResult::BadMessage,
            GeneralResult::Unsupported, GeneralResult::AlarmAcknowledged,
        ]),
    ) {
        let m = decode_message(&encode_general_response(&request, platform_serial, result).unwrap()).unwrap();
        prop_assert_eq!(m.header, request.reply(id::PLATFORM_RESPONSE, platform_serial));
        prop_assert_eq!(m.body, Body::PlatformResponse(GeneralResponse { serial: request.serial, id: request.id, result: result as u8 }));
    }

    #[test]
    fn a_registration_response_decodes_to_what_was_answered(
        request in any_header(id::REGISTER),
        platform_serial in any::<u16>(),
        success in any::<bool>(),
        code in prop::collection::vec(1..=255u8, 0..64),
    ) {
        let result = if success { RegisterResult::Success } else { RegisterResult::NoSuchTerminal };
        let frame = encode_register_response(&request, platform_serial, result, &code).unwrap();
        let m = decode_message(&frame).unwrap();
        prop_assert_eq!(m.header, request.reply(id::REGISTER_RESPONSE, platform_serial));
        let auth_code = if success { code } else { Vec::new() };
        prop_assert_eq!(m.body, Body::RegisterResponse(RegisterResponse { serial: request.serial, result: result as u8, auth_code }));
    }

    #[test]
    fn a_location_decodes_to_itself_alone_and_in_a_batch(
        header in any_header(id::LOCATION),
        location in any_location(),
        kind in any::<u8>(),
    ) {
        let body = Body::Location(location.clone());
        let m = decode_message(&encode_message(&header, &body).unwrap()).unwrap();
        prop_assert_eq!((m.header, m.body), (header.clone(), body));
        let batch = Body::LocationBatch(LocationBatch { kind, locations: vec![location.clone(), location] });
        let mut header = header;
        header.id = id::LOCATION_BATCH;
        let m = decode_message(&encode_message(&header, &batch).unwrap()).unwrap();
        prop_assert_eq!(m.body, batch);
    }

    #[test]
    fn a_sample_written_as_a_location_reads_back_within_the_wire_resolution(
        secs in 946_684_800i64..1_750_000_000,
        lat in -90.0..=90.0f64,
        lon in -180.0..=180.0f64,
        fix in any::<bool>(),
        speed in 0.0..300.0f64,
        heading in 0.0..359.4f64,
        odometer in proptest::option::of(0.0..10_000_000.0f64),
        ignition in any::<bool>(),
    ) {
        let vin = Vin::parse("LSJA24U66NS000001").unwrap();
        let mut sent = fleet_domain::Sample::at(vin.clone(), DateTime::<Utc>::from_timestamp(secs, 0).unwrap(), lat, lon, fleet_domain::SampleSource::Jt808);
        sent.position_valid = fix;
        sent.speed_kmh = Some(speed);
        sent.heading_deg = Some(heading);
        sent.odometer_km = odometer;
        sent.ignition = Some(ignition);
        let frame = encode_message(&Header::new(Edition::V2019, id::LOCATION, PHONE, 1), &Body::Location(sample_location(&sent))).unwrap();
        let Body::Location(location) = decode_message(&frame).unwrap().body else { panic!("a location") };
        let got = location_sample(&location, &vin).unwrap();
        prop_assert_eq!((got.ts, got.position_valid, got.ignition), (sent.ts, fix, Some(ignition)));
        prop_assert!((got.lat - lat).abs() <= 0.5e-6 + 1e-9 && (got.lon - lon).abs() <= 0.5e-6 + 1e-9);
        prop_assert!((got.speed_kmh.unwrap() - speed).abs() <= 0.05 + 1e-9);
        prop_assert!((got.heading_deg.unwrap() - heading).abs() <= 0.5 + 1e-9);
        prop_assert_eq!(got.odometer_km.is_some(), odometer.is_some());
        if let (Some(got), Some(sent)) = (got.odometer_km, odometer) {
            prop_assert!((got - sent).abs() <= 0.05 + 1e-6);
        }
    }
}
