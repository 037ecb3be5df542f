use proptest::prelude::*;

use super::super::tests::{TIME_2016, VEHICLE_2016, hand_frame, report_2016};
use super::*;

/// Feeds `stream` cut at `cuts` (offsets, any order, duplicates and out-of-range ones allowed)
/// and returns the pieces and what was left unframed, checking the memory bound after every
/// read.
fn split(stream: &[u8], cuts: &[usize]) -> (Vec<Piece>, usize) {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut splitter = FrameSplitter::new();
    let mut pieces = Vec::new();
    let mut from = 0;
    for to in cuts {
        pieces.extend(splitter.feed(&stream[from..to]));
        assert!(splitter.buffered() <= MAX_FRAME_LEN);
        from = to;
    }
    (pieces, splitter.unframed())
}

fn heartbeat(marker: u8) -> Vec<u8> {
    hand_frame(marker, 0x07, 0xFE, 0x01, &[])
}

/// A frame whose data unit is `len` bytes, with a valid BCC.
fn frame_of_len(len: usize) -> Vec<u8> {
    let mut frame = hand_frame(b'#', 0x02, 0xFE, 0x01, &[]);
    frame.pop();
    frame[22..24].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    frame.resize(HEADER_LEN + len, 0x5A);
    frame.push(bcc(&frame[2..]));
    frame
}

#[test]
fn splits_frames_that_arrive_together_or_byte_by_byte() {
    let (a, b) = (report_2016(&[VEHICLE_2016]), heartbeat(b'$'));
    let stream = [&a[..], &b[..]].concat();
    let expected = vec![Piece::Frame(a), Piece::Frame(b)];
    assert_eq!(split(&stream, &[]), (expected.clone(), 0));
    let every_byte: Vec<usize> = (0..stream.len()).collect();
    assert_eq!(split(&stream, &every_byte), (expected, 0));
}

#[test]
fn skips_and_counts_the_bytes_before_a_start_marker() {
    let frame = heartbeat(b'#');
    let stream = [&b"\r\nHELLO#$"[..], &frame, b"\x00\x00"].concat();
    assert_eq!(split(&stream, &[3, 30]), (vec![Piece::Skipped(9), Piece::Frame(frame)], 2));
}

#[test]
fn reports_a_frame_with_a_bad_bcc_whole_and_carries_on_after_it() {
    let mut bad = report_2016(&[VEHICLE_2016]);
    *bad.last_mut().unwrap() ^= 0x40;
    let good = heartbeat(b'#');
    let stream = [&bad[..], &good].concat();
    assert_eq!(split(&stream, &[10]), (vec![Piece::BadChecksum(bad), Piece::Frame(good)], 0));
}

#[test]
fn resyncs_on_a_stray_marker_byte_right_before_a_frame() {
    for marker in [b'#', b'$'] {
        let frame = heartbeat(marker);
        let stream = [&[marker][..], &frame].concat();
        assert_eq!(split(&stream, &[1]), (vec![Piece::Skipped(1), Piece::Frame(frame)], 0));
    }
}

#[test]
fn treats_a_length_over_the_standard_limit_as_garbage() {
    let mut false_start = heartbeat(b'#');
    false_start.truncate(HEADER_LEN);
    false_start[22..24].copy_from_slice(&u16::try_from(MAX_DATA_LEN + 1).unwrap().to_be_bytes());
    let frame = heartbeat(b'#');
    let stream = [&false_start[..], &frame].concat();
    assert_eq!(split(&stream, &[]), (vec![Piece::Skipped(HEADER_LEN), Piece::Frame(frame)], 0));
}

#[test]
fn takes_a_frame_of_the_longest_length_the_standard_allows() {
    let longest = frame_of_len(MAX_DATA_LEN);
    assert_eq!(longest.len(), MAX_FRAME_LEN);
    let stream = [&b"xy"[..], &longest, &heartbeat(b'$')].concat();
    let (pieces, unframed) = split(&stream, &[1, 40_000]);
    assert_eq!(pieces, vec![Piece::Skipped(2), Piece::Frame(longest), Piece::Frame(heartbeat(b'$'))]);
    assert_eq!(unframed, 0);
}

#[test]
fn holds_no_more_than_the_longest_frame_however_much_is_pushed() {
    let stream = [frame_of_len(MAX_DATA_LEN), frame_of_len(MAX_DATA_LEN)].concat();
    let mut splitter = FrameSplitter::new();
    assert_eq!(splitter.push(&stream), MAX_FRAME_LEN);
    assert_eq!(splitter.buffered(), MAX_FRAME_LEN);
    assert_eq!(splitter.push(&stream[MAX_FRAME_LEN..]), 0);
    assert!(matches!(splitter.pop(), Some(Piece::Frame(f)) if f.len() == MAX_FRAME_LEN));
    assert_eq!(splitter.pop(), None);
    assert_eq!(splitter.push(&stream[MAX_FRAME_LEN..]), MAX_FRAME_LEN);
    assert!(splitter.buf.capacity() <= MAX_FRAME_LEN, "capacity {}", splitter.buf.capacity());
}

#[test]
fn waits_for_the_rest_of_a_frame_and_keeps_a_lone_marker_byte() {
    let frame = [&TIME_2016[..], &[0; 10]].concat();
    let frame = hand_frame(b'$', 0x02, 0xFE, 0x01, &frame);
    let mut splitter = FrameSplitter::new();
    assert_eq!(splitter.feed(&frame[..frame.len() - 1]), vec![]);
    assert_eq!(splitter.buffered(), frame.len() - 1);
    assert_eq!(splitter.feed(&frame[frame.len() - 1..]), vec![Piece::Frame(frame)]);
    assert_eq!((splitter.feed(b"ab$"), splitter.buffered(), splitter.unframed()), (vec![], 1, 3));
}

/// Bytes biased towards the start markers and the commands, so that false starts are common.
fn stream_byte() -> impl Strategy<Value = u8> {
    prop_oneof![3 => any::<u8>(), 2 => Just(b'#'), 1 => Just(b'$'), 1 => 0x01u8..0x09, 1 => Just(0x00), 1 => Just(0xFF)]
}

/// A stretch of a stream whose pieces are known in advance.
#[derive(Debug, Clone)]
enum Segment {
    /// A frame with a valid BCC.
    Valid(Vec<u8>),
    /// A frame whose BCC is off by `flip`.
    Corrupt(Vec<u8>, u8),
    /// Bytes that cannot start a frame: no start marker inside, none at the front; the last
    /// byte may be a marker byte, which pairs with whatever comes next.
    Garbage(Vec<u8>),
    /// A whole header whose declared length is over the limit.
    FalseStart(u16),
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    let command = prop_oneof![0x01u8..=0x0B, 0x80u8..=0x82, 0xC0u8..=0xFE];
    (
        prop::sample::select(vec![b'#', b'$']),
        command,
        any::<u8>(),
        any::<[u8; 17]>(),
        any::<u8>(),
        prop::collection::vec(stream_byte(), 0..120),
    )
        .prop_map(|(marker, command, response, vin, encryption, data)| {
            let mut frame = hand_frame(marker, command, response, encryption, &data);
            frame[4..21].copy_from_slice(&vin);
            let last = frame.len() - 1;
            frame[last] = bcc(&frame[2..last]);
            frame
        })
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(stream_byte(), 1..40).prop_map(|mut bytes| {
        if edition_of([bytes[0], bytes[0]]).is_some() {
            bytes[0] = b'x';
        }
        for i in 1..bytes.len() {
            if edition_of([bytes[i - 1], bytes[i]]).is_some() {
                bytes[i] = b'y';
            }
        }
        bytes
    })
}

fn segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        4 => frame().prop_map(Segment::Valid),
        1 => (frame(), 1u8..=255).prop_map(|(f, flip)| Segment::Corrupt(f, flip)),
        3 => garbage().prop_map(Segment::Garbage),
        1 => (MAX_DATA_LEN as u16 + 1..=u16::MAX).prop_map(Segment::FalseStart),
    ]
}

impl Segment {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Valid(frame) => frame.clone(),
            Self::Corrupt(frame, flip) => {
                let mut frame = frame.clone();
                *frame.last_mut().unwrap() ^= flip;
                frame
            }
            Self::Garbage(bytes) => bytes.clone(),
            Self::FalseStart(len) => {
                let mut header = heartbeat(b'#');
                header.truncate(HEADER_LEN);
                header[22..24].copy_from_slice(&len.to_be_bytes());
                header
            }
        }
    }
}

/// The pieces a stream of segments must give, and the bytes it must end with unframed.
fn expected(segments: &[Segment]) -> (Vec<Piece>, usize) {
    let mut pieces = Vec::new();
    let mut skipped = 0;
    for segment in segments {
        let piece = match segment {
            Segment::Valid(_) => Piece::Frame(segment.bytes()),
            Segment::Corrupt(..) => Piece::BadChecksum(segment.bytes()),
            Segment::Garbage(_) | Segment::FalseStart(_) => {
                skipped += segment.bytes().len();
                continue;
            }
        };
        if skipped > 0 {
            pieces.push(Piece::Skipped(std::mem::take(&mut skipped)));
        }
        pieces.push(piece);
    }
    (pieces, skipped)
}

proptest! {
    #[test]
    fn never_panics_and_accounts_for_every_byte(
        stream in prop::collection::vec(stream_byte(), 0..2000),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let (pieces, unframed) = split(&stream, &cuts.iter().map(|c| c % (stream.len() + 1)).collect::<Vec<_>>());
        let accounted: usize = pieces
            .iter()
            .map(|p| match p {
                Piece::Frame(f) | Piece::BadChecksum(f) => f.len(),
                Piece::Skipped(n) => *n,
            })
            .sum();
        prop_assert_eq!(accounted + unframed, stream.len());
    }

    #[test]
    fn gives_the_same_pieces_however_the_stream_is_cut(
        segments in prop::collection::vec(segment(), 0..12),
        noise in prop::collection::vec(stream_byte(), 0..300),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
    ) {
        let stream = [segments.iter().flat_map(Segment::bytes).collect::<Vec<_>>(), noise].concat();
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        prop_assert_eq!(split(&stream, &cuts), split(&stream, &[]));
    }

    #[test]
    fn finds_every_frame_between_garbage(
        segments in prop::collection::vec(segment(), 0..16),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
    ) {
        let stream: Vec<u8> = segments.iter().flat_map(Segment::bytes).collect();
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        prop_assert_eq!(split(&stream, &cuts), expected(&segments));
    }
}

#[test]
fn a_busy_stream_keeps_the_room_of_a_read_and_a_frame_and_gives_it_back_when_it_holds_nothing() {
    // A terminal streaming report after report, read 4 KiB at a time, cut mid-frame: the
    // splitter must not creep up to the longest frame's 64 KiB (a gateway has thousands).
    let report = report_2016(&[VEHICLE_2016]);
    let stream: Vec<u8> = std::iter::repeat_n(&report, 2_000).flatten().copied().collect();
    let mut splitter = FrameSplitter::new();
    let mut frames = 0;
    let mut most = 0;
    for chunk in stream.chunks(4096) {
        frames += splitter.feed(chunk).len();
        most = most.max(splitter.buf.capacity());
        // Between reads only the start of a frame is held, in little more room than it takes.
        let (held, room) = (splitter.buffered(), splitter.buf.capacity());
        assert!(held < report.len() && room <= KEEP_CAPACITY.max(2 * held), "{room} bytes of room for {held}");
    }
    assert_eq!(frames, 2_000);
    assert!(most <= 16 * 1024, "the splitter grew to {most} bytes");
    // The stream ended on a frame's end: nothing is held, so no more than a little room.
    assert_eq!(splitter.buffered(), 0);
    assert!(splitter.buf.capacity() <= KEEP_CAPACITY, "kept {} bytes holding nothing", splitter.buf.capacity());

    // After a frame of the longest length, its room is given back.
    let mut splitter = FrameSplitter::new();
    assert_eq!(splitter.feed(&frame_of_len(MAX_DATA_LEN)).len(), 1);
    assert_eq!(splitter.feed(&heartbeat(b'#')), vec![Piece::Frame(heartbeat(b'#'))]);
    assert!(splitter.buf.capacity() <= KEEP_CAPACITY, "kept {}", splitter.buf.capacity());
}
