//! JT/T 808, the road transport terminal protocol of Beidou vehicle terminals, as a pure codec:
//! the 2013 edition (JT/T 808-2013) and the 2019 edition (JT/T 808-2019), told apart by the
//! version flag of each message header. No I/O: the caller owns the socket.
//!
//! - [`FrameReader`] cuts a TCP byte stream into frames between 0x7e delimiters, skipping
//!   (and counting) bytes outside frames and dropping frames longer than a cap;
//! - [`decode_packet`] undoes the escaping, checks the XOR check code and reads the header
//!   (`frame.rs`, `header.rs`); [`Body::decode`] reads the message body the header announces
//!   (`body.rs`); [`decode_message`] does both;
//! - [`encode_message`] builds a frame (check code and escaping included), and
//!   [`encode_register_response`] / [`encode_general_response`] the platform's replies in the
//!   edition of the request (`reply.rs`);
//! - [`location_sample`] turns a location report into a [`Sample`] (`sample.rs`), and
//!   [`sample_location`] goes the other way for simulators and tests.
//!
//! A terminal is known by its phone number: the BCD digits of the header without the leading
//! zeros that pad them to 12 (2013) or 20 (2019) digits. Text fields are GBK; they are kept
//! as bytes ([`GbkText`]) with a lossy rendering for people.
//!
//! [`Sample`]: fleet_domain::Sample

mod body;
mod frame;
mod header;
mod reader;
mod reply;
mod sample;
mod splitter;
mod text;

#[cfg(test)]
mod tests;

use fleet_domain::DeadLetterReason;

pub use body::{Authentication, Body, Extra, GeneralResponse, Location, LocationBatch, Register, RegisterResponse};
pub use frame::{Message, Packet, check_code, decode_message, decode_packet, encode_message, escape, unescape};
pub use header::{Header, Subpackage};
pub use reply::{GeneralResult, RegisterResult, encode_general_response, encode_register_response};
pub use sample::{location_sample, sample_location};
pub use splitter::{FrameReader, MAX_FRAME_LEN};
pub use text::GbkText;

/// The edition of the standard a message header follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Edition {
    /// JT/T 808-2013: phone number BCD\[6\], no protocol version byte.
    V2013,
    /// JT/T 808-2019: version flag (bit 14 of the body properties) set, a protocol version
    /// byte, phone number BCD\[10\].
    V2019,
}

/// Message ids this crate reads or writes.
pub mod id {
    /// Terminal general response.
    pub const TERMINAL_RESPONSE: u16 = 0x0001;
    /// Terminal heartbeat (empty body).
    pub const HEARTBEAT: u16 = 0x0002;
    /// Terminal logout (empty body).
    pub const LOGOUT: u16 = 0x0003;
    /// Terminal registration.
    pub const REGISTER: u16 = 0x0100;
    /// Terminal authentication.
    pub const AUTHENTICATION: u16 = 0x0102;
    /// Location report.
    pub const LOCATION: u16 = 0x0200;
    /// Batch upload of location data.
    pub const LOCATION_BATCH: u16 = 0x0704;
    /// Platform general response.
    pub const PLATFORM_RESPONSE: u16 = 0x8001;
    /// Terminal registration response.
    pub const REGISTER_RESPONSE: u16 = 0x8100;
}

/// Why a frame or message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame is {0} bytes once unescaped; the shortest message has 13")]
    TooShort(usize),
    #[error("0x7d at offset {offset} is followed by {next:02x?}, not 0x01 or 0x02")]
    BadEscape { offset: usize, next: Option<u8> },
    #[error("0x7e inside the frame at offset {0}")]
    StrayDelimiter(usize),
    #[error("check code is {found:#04x}, the bytes give {computed:#04x}")]
    BadCheckCode { computed: u8, found: u8 },
    #[error("header declares a body of {declared} bytes but {actual} follow it")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("{what} holds {byte:#04x}, not two BCD digits")]
    BadBcd { what: &'static str, byte: u8 },
    #[error("body is encrypted (flags {0:#05b})")]
    Encrypted(u8),
    #[error("{what} needs {needed} bytes, {remaining} left")]
    Truncated { what: &'static str, needed: usize, remaining: usize },
    #[error("{count} unexpected bytes after {what}")]
    TrailingBytes { what: &'static str, count: usize },
    #[error("time {0:02x?} is not a calendar date and time")]
    BadTime([u8; 6]),
    #[error("additional item {id:#04x} is {len} bytes, the standard says {expected}")]
    BadItemLength { id: u8, len: usize, expected: usize },
    #[error("additional item {0:#04x} appears twice")]
    DuplicateItem(u8),
}

impl FrameError {
    /// The reason a refused message is kept under in the dead letters.
    pub fn reason(&self) -> DeadLetterReason {
        match self {
            Self::BadCheckCode { .. } => DeadLetterReason::BadChecksum,
            Self::Encrypted(_) => DeadLetterReason::Encrypted,
            Self::TooShort(_)
            | Self::BadEscape { .. }
            | Self::StrayDelimiter(_)
            | Self::LengthMismatch { .. }
            | Self::BadBcd { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::BadTime(_)
            | Self::BadItemLength { .. }
            | Self::DuplicateItem(_) => DeadLetterReason::MalformedFrame,
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("phone number {0:?} is not 1 to {1} decimal digits")]
    BadPhone(String, usize),
    #[error("body is {0} bytes; the header can declare at most 1023")]
    BodyTooLong(usize),
    #[error("{what} is {len} bytes; at most {max} fit")]
    FieldTooLong { what: &'static str, len: usize, max: usize },
    #[error("time {0} cannot be written as BCD YYMMDDhhmmss (years 2000 to 2099)")]
    BadTime(chrono::NaiveDateTime),
}
