//! What differs between the protocols a terminal speaks over TCP: how the byte stream is cut
//! into frames, how a session opens, how reports, heartbeats and logouts are written, and
//! which report a reply answers. Pure state, no I/O: the [`driver`](super::driver) owns the
//! socket and the timing.

use fleet_domain::Sample;

/// A step of opening a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Handshake {
    /// Not an answer to what the terminal asked: keep waiting.
    Ignore,
    /// Write this frame and wait for its answer.
    Send(Vec<u8>),
    /// Logged in: reports may go.
    Ready,
    /// The gateway said no (why, for the log): back off and try again later.
    Refused(String),
}

/// What a frame from the gateway is, once the session is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reply {
    /// The answer to the report frame named `key`: `ok` when it is stored.
    Report {
        key: u64,
        ok: bool,
    },
    Heartbeat,
    /// Anything else (a command of the platform's, say): nothing to do.
    Other,
}

/// A report frame, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Encoded {
    pub frame: Vec<u8>,
    /// What its answer names it by.
    pub key: u64,
}

/// A protocol as a terminal speaks it. See the module documentation.
pub(super) trait Dialect: Send + 'static {
    /// A new connection: forget any partial frame of the last one.
    fn reset_stream(&mut self);
    /// Bytes read from the gateway.
    fn push(&mut self, bytes: &[u8]);
    /// The next whole frame read.
    fn next_frame(&mut self) -> Option<Vec<u8>>;
    /// The first frame on a new connection; `Err` (why) when none can be made.
    fn open(&mut self) -> Result<Vec<u8>, String>;
    /// A frame read while the session opens.
    fn handshake(&mut self, frame: &[u8]) -> Handshake;
    /// Most samples one report frame carries: live ones, or re-issued ones.
    fn max_batch(&self, reissue: bool) -> usize;
    /// A frame carrying all of `samples` (at least one, at most [`max_batch`](Self::max_batch));
    /// `Err` (why) when they cannot be written.
    fn report(&mut self, samples: &[&Sample], reissue: bool) -> Result<Encoded, String>;
    fn heartbeat(&mut self) -> Vec<u8>;
    /// A frame read while the session is open.
    fn reply(&mut self, frame: &[u8]) -> Reply;
    /// The frame ending the session when the terminal stops, if the protocol has one.
    fn logout(&mut self) -> Option<Vec<u8>>;
}
