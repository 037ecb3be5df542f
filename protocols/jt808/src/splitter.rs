//! Cutting a TCP byte stream into frames. A frame runs from one 0x7e to the next; escaping
//! keeps 0x7e out of its inside, so the delimiters alone find the frames and a frame's bytes
//! need not be understood to be cut out.

use std::collections::VecDeque;

use super::frame::DELIMITER;
use super::header::MAX_BODY_LEN;

/// The longest frame a terminal can send, delimiters included: the longest header (2019,
/// subpackaged: 21 bytes), the longest body and the check code, every byte escaped to two.
pub const MAX_FRAME_LEN: usize = 2 + 2 * (21 + MAX_BODY_LEN + 1);

/// Where the reader is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames: bytes up to the next 0x7e are skipped.
    Outside,
    /// Inside a frame, collecting it.
    Inside,
    /// Inside a frame that grew past the cap: its bytes are dropped up to its end.
    Discarding,
}

/// Frames out of a byte stream: [`push`](Self::push) bytes as they arrive,
/// [`next_frame`](Self::next_frame) takes each complete frame, delimiters included.
///
/// Bytes outside frames are skipped and counted. Two delimiters in a row (a frame's end and
/// the next one's start with nothing between) give no empty frame. A frame longer than the
/// cap is dropped as it streams in, so bytes without delimiters never take more memory than
/// the cap. How the stream is cut into pushes makes no difference to what comes out.
#[derive(Debug)]
pub struct FrameReader {
    max_len: usize,
    state: State,
    current: Vec<u8>,
    ready: VecDeque<Vec<u8>>,
    skipped: u64,
    oversized: u64,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN)
    }
}

impl FrameReader {
    /// A reader that drops frames longer than `max_len` bytes (delimiters included; at
    /// least 2).
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.max(2),
            state: State::Outside,
            current: Vec::new(),
            ready: VecDeque::new(),
            skipped: 0,
            oversized: 0,
        }
    }

    /// Takes the next bytes of the stream.
    pub fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let delimiter = bytes.iter().position(|&b| b == DELIMITER);
            let (run, rest) = match delimiter {
                Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
                None => (bytes, None),
            };
            self.take_run(run);
            match rest {
                Some(rest) => {
                    self.take_delimiter();
                    bytes = rest;
                }
                None => break,
            }
        }
    }

    /// The next complete frame, delimiters included, if one is in.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Bytes skipped so far: outside frames, or in frames dropped for their length.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// Frames dropped so far for being longer than the cap.
    pub fn oversized_frames(&self) -> u64 {
        self.oversized
    }

    /// Bytes held for a frame not yet complete.
    pub fn pending_len(&self) -> usize {
        self.current.len()
    }

    /// A run of bytes without a delimiter.
    fn take_run(&mut self, run: &[u8]) {
        match self.state {
            State::Outside | State::Discarding => self.skipped += run.len() as u64,
            State::Inside => {
                // Room for the closing delimiter is kept.
                if self.current.len() + run.len() + 1 > self.max_len {
                    self.skipped += (self.current.len() + run.len()) as u64;
                    self.oversized += 1;
                    self.current = Vec::new();
                    self.state = State::Discarding;
                } else {
                    self.current.extend_from_slice(run);
                }
            }
        }
    }

    fn take_delimiter(&mut self) {
        match self.state {
            State::Outside => {
                self.current.push(DELIMITER);
                self.state = State::Inside;
            }
            // Back-to-back delimiters: the last one starts the frame.
            State::Inside if self.current.len() == 1 => self.skipped += 1,
            State::Inside => {
                self.current.push(DELIMITER);
                self.ready.push_back(std::mem::take(&mut self.current));
                self.state = State::Outside;
            }
            State::Discarding => {
                self.skipped += 1;
                self.state = State::Outside;
            }
        }
    }
}
