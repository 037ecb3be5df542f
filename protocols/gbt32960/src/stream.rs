//! Cutting a TCP byte stream into frames. Unlike an MQTT message, a stream has no boundaries of
//! its own: a frame may arrive in pieces, several may arrive at once, and a terminal may send
//! bytes that belong to no frame. The splitter finds each frame by its start marker and
//! declared length and leaves decoding to [`decode_frame`](super::decode_frame) and
//! [`decode_platform_frame`](super::decode_platform_frame).
//!
//! What it yields depends only on the bytes, never on how they were cut into reads.

use super::frame::{HEADER_LEN, MIN_FRAME_LEN, bcc};
use super::header::{declared_len, edition_of};

/// The longest data unit the standard allows: its length is a WORD limited to 0..=65531.
pub const MAX_DATA_LEN: usize = 65_531;
/// The longest frame: a header, the longest data unit and the BCC. It is also the most a
/// [`FrameSplitter`] ever holds.
pub const MAX_FRAME_LEN: usize = MIN_FRAME_LEN + MAX_DATA_LEN;

/// What the splitter found in the stream, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A whole frame whose BCC matches, start marker to BCC.
    Frame(Vec<u8>),
    /// A whole frame by its declared length whose BCC does not match, kept as received for the
    /// dead letters. The stream goes on after it.
    BadChecksum(Vec<u8>),
    /// This many bytes belonging to no frame were dropped just before the frame that follows
    /// (counted from the end of the previous frame; never 0).
    Skipped(usize),
}

/// Splits a byte stream into [`Piece`]s, holding at most [`MAX_FRAME_LEN`] bytes.
///
/// A frame starts at `##` (2016) or `$$` (2025) followed by a command byte the standard
/// defines (0x01–0x0B, 0x80–0x82, 0xC0–0xFE) and a declared data-unit length of at most
/// [`MAX_DATA_LEN`]. Anything else is skipped one byte at a time until such a start: bytes
/// before a marker, and a marker whose header cannot be a frame's. Checking the command byte
/// lets it resync on a run like `###` (stray `#`, then a frame), where the first two bytes
/// would otherwise pass for a start with `#` as the command.
///
/// Feed it with [`feed`](Self::feed), or with [`push`](Self::push) and [`pop`](Self::pop) to
/// keep the pieces in hand bounded too.
#[derive(Debug, Default)]
pub struct FrameSplitter {
    buf: Vec<u8>,
    /// Where the unexamined bytes of `buf` begin; what is before it is spent.
    start: usize,
    /// Bytes skipped since the last frame and not yet reported.
    skipped: usize,
    /// The frame to hand out after the [`Piece::Skipped`] that precedes it.
    ready: Option<Piece>,
}

/// Room a splitter keeps when it holds nothing: enough for a heartbeat or a short report;
/// more is given back once everything pushed has been examined (a gateway holds one splitter
/// per connection, thousands of them, and most of the time they hold nothing).
const KEEP_CAPACITY: usize = 1024;

impl FrameSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes as many leading bytes of `bytes` as fit and returns how many. Call
    /// [`pop`](Self::pop) until it returns `None` before pushing the rest: a splitter that
    /// has been popped dry always has room for at least one more byte.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        if self.start == self.buf.len() {
            self.start_over();
        } else if self.start > 0 && self.buf.len() + bytes.len() > self.buf.capacity() {
            // Out of room: move the unexamined bytes (at most one frame still arriving) down
            // before growing. Waiting until the buffer reached the longest frame instead let
            // every busy connection keep 64 KiB.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let n = bytes.len().min(MAX_FRAME_LEN - self.buf.len());
        if self.buf.len() + n > self.buf.capacity() {
            let want = (self.buf.len() + n).max(self.buf.capacity() * 2).min(MAX_FRAME_LEN);
            self.buf.reserve_exact(want - self.buf.len());
        }
        self.buf.extend_from_slice(&bytes[..n]);
        n
    }

    /// The next piece, or `None` until more bytes are pushed.
    pub fn pop(&mut self) -> Option<Piece> {
        if let Some(piece) = self.ready.take() {
            return Some(piece);
        }
        loop {
            let at = next_marker(&self.buf[self.start..]);
            self.skip(at);
            let rest = &self.buf[self.start..];
            if rest.len() > 2 && !is_command(rest[2]) {
                self.skip(1);
                continue;
            }
            if rest.len() < HEADER_LEN {
                self.settle();
                return None;
            }
            let declared = declared_len(rest);
            if declared > MAX_DATA_LEN {
                self.skip(1);
                continue;
            }
            let len = MIN_FRAME_LEN + declared;
            if rest.len() < len {
                self.settle();
                return None;
            }
            let frame = rest[..len].to_vec();
            self.start += len;
            let piece =
                if bcc(&frame[2..len - 1]) == frame[len - 1] { Piece::Frame(frame) } else { Piece::BadChecksum(frame) };
            return match std::mem::take(&mut self.skipped) {
                0 => Some(piece),
                skipped => {
                    self.ready = Some(piece);
                    Some(Piece::Skipped(skipped))
                }
            };
        }
    }

    /// Pushes all of `bytes` and returns every piece they complete.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Piece> {
        let mut pieces = Vec::new();
        loop {
            let taken = self.push(bytes);
            bytes = &bytes[taken..];
            pieces.extend(std::iter::from_fn(|| self.pop()));
            if bytes.is_empty() {
                return pieces;
            }
        }
    }

    /// Bytes held that are not part of any piece yet: the start of a frame still arriving.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes since the last piece that are not part of one: skipped bytes not reported yet
    /// and the bytes still [`buffered`](Self::buffered). When the stream ends, these are the
    /// bytes it ended with that never made a frame.
    pub fn unframed(&self) -> usize {
        self.skipped + self.buffered()
    }

    /// Everything examined: start over at the front, copying nothing, and keep no more room
    /// than [`KEEP_CAPACITY`].
    fn start_over(&mut self) {
        self.buf.clear();
        self.start = 0;
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        }
    }

    /// Nothing more to hand out until more bytes come: keep the unexamined bytes (at most the
    /// start of one frame) and not much more room than they take. A read that ended inside a
    /// frame otherwise left its connection holding the room of the whole read.
    fn settle(&mut self) {
        if self.start == self.buf.len() {
            self.start_over();
        } else if self.buf.capacity() > KEEP_CAPACITY.max(2 * self.buffered()) {
            self.buf.drain(..self.start);
            self.start = 0;
            self.buf.shrink_to(KEEP_CAPACITY.max(self.buf.len()));
        }
    }

    fn skip(&mut self, n: usize) {
        self.start += n;
        self.skipped = self.skipped.saturating_add(n);
    }
}

/// Where the first start marker in `bytes` begins: a marker byte followed by the same byte,
/// or a marker byte at the very end whose partner has not arrived. `bytes.len()` if none.
fn next_marker(bytes: &[u8]) -> usize {
    (0..bytes.len())
        .find(|&i| match bytes.get(i + 1) {
            Some(&next) => edition_of([bytes[i], next]).is_some(),
            None => edition_of([bytes[i], bytes[i]]).is_some(),
        })
        .unwrap_or(bytes.len())
}

/// Command bytes the standard defines in either edition: vehicle and platform session,
/// reports, heartbeat, time sync, activation and key sync; parameter query, set and terminal
/// control; the platform-defined range.
fn is_command(byte: u8) -> bool {
    matches!(byte, 0x01..=0x0B | 0x80..=0x82 | 0xC0..=0xFE)
}

#[cfg(test)]
mod tests;
