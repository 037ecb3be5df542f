//! GB/T 32960.3 frames, as a vehicle terminal sends them: both the 2016 edition (start
//! marker `##`) and the 2025 edition (`$$`), told apart by the start marker.
//!
//! One MQTT message carries exactly one frame, so the decoder is strict about framing: the
//! declared data-unit length must account for every byte, the BCC must match, and every block
//! must fit what is left. Counts on the wire never size an allocation before the bytes they
//! promise are known to be there.
//!
//! - [`decode_frame`] parses a frame into typed blocks (`frame.rs`, `report.rs`);
//! - [`report_sample`] turns a real-time or re-issued report into a [`Sample`] (`sample.rs`);
//!   the frame itself is what a sample keeps of the other blocks (`Sample::frame`), and
//!   [`blocks_json`] decodes them from those bytes when someone reads them (`blocks.rs`);
//! - [`encode_report`] and friends build frames from values the caller chooses
//!   (`encode.rs`): the simulator's terminal (`fleet-sim`) and tests;
//! - [`gcj02`] converts the Chinese map datum back to WGS-84.
//!
//! Pure functions from bytes to values, no I/O: ingest decodes with it, the web API shows
//! stored frames with it, the simulator and the bench encode with it.
//!
//! [`Sample`]: fleet_domain::Sample

mod blocks;
mod encode;
mod frame;
pub mod gcj02;
mod header;
mod platform;
mod reader;
mod reply;
mod report;
mod sample;
mod stream;

#[cfg(test)]
mod tests;

use chrono::NaiveDateTime;
use fleet_domain::{DeadLetterReason, SampleSource};
use serde::Serialize;

pub use blocks::blocks_json;
pub use encode::{MotorReadings, Readings, encode_heartbeat, encode_login, encode_logout, encode_report};
pub use frame::decode_frame;
pub use header::Header;
pub use platform::{
    PLATFORM_LOGIN, PLATFORM_LOGOUT, PlatformBody, PlatformFrame, PlatformLogin, decode_platform_frame,
};
pub use reply::{Ack, ReplyError, encode_reply};
pub use report::{
    Alarm, CellVoltages, CoordinateSystem, Engine, Extremes, FuelCell, Motor, Position, ProbeTemperatures, Report,
    Signature, Warning, WholeVehicle,
};
pub use sample::report_sample;
pub use stream::{FrameSplitter, MAX_DATA_LEN, MAX_FRAME_LEN, Piece};

/// The edition of the standard a frame follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Edition {
    /// GB/T 32960.3-2016, start marker `##`.
    V2016,
    /// GB/T 32960.3-2025 (in force since 2025-11-01), start marker `$$`.
    V2025,
}

impl Edition {
    /// The byte repeated twice at the start of every frame of this edition.
    pub fn marker(self) -> u8 {
        match self {
            Self::V2016 => b'#',
            Self::V2025 => b'$',
        }
    }

    /// The sample source a report of this edition becomes.
    pub fn source(self) -> SampleSource {
        match self {
            Self::V2016 => SampleSource::Gbt2016,
            Self::V2025 => SampleSource::Gbt2025,
        }
    }
}

/// The uplink commands a vehicle may send us. Others (platform login, parameter queries,
/// activation, key sync…) are rejected as unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// 0x01 vehicle login.
    Login,
    /// 0x02 real-time report.
    RealtimeReport,
    /// 0x03 re-issued report: data buffered while offline, possibly days old.
    ReissueReport,
    /// 0x04 vehicle logout.
    Logout,
    /// 0x07 heartbeat.
    Heartbeat,
    /// 0x08 terminal time synchronisation.
    TimeSync,
}

impl Command {
    /// The command byte on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Login => 0x01,
            Self::RealtimeReport => 0x02,
            Self::ReissueReport => 0x03,
            Self::Logout => 0x04,
            Self::Heartbeat => 0x07,
            Self::TimeSync => 0x08,
        }
    }

    /// The command for a wire byte, if it is one we accept.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0x01 => Some(Self::Login),
            0x02 => Some(Self::RealtimeReport),
            0x03 => Some(Self::ReissueReport),
            0x04 => Some(Self::Logout),
            0x07 => Some(Self::Heartbeat),
            0x08 => Some(Self::TimeSync),
            _ => None,
        }
    }
}

/// The response flag of a frame that is a command rather than an answer to one.
pub const RESPONSE_COMMAND: u8 = 0xFE;
/// The encryption byte of a plain-text data unit.
pub const ENCRYPTION_NONE: u8 = 0x01;

/// A decoded frame. Its VIN is as sent; the caller checks it against the topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub edition: Edition,
    pub command: Command,
    /// [`RESPONSE_COMMAND`] for a command; 0x01.. for an acknowledgement.
    pub response: u8,
    /// The 17 VIN bytes, one char per byte (so lossless even for padding or non-ASCII bytes);
    /// not validated.
    pub vin: String,
    pub encryption: u8,
    pub body: Body,
}

/// A frame's data unit, by command.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one frame per message, built once and matched in place; boxing the report would only add an allocation"
)]
pub enum Body {
    Login(Login),
    Report(Report),
    Logout(Logout),
    /// Heartbeat and time sync; also any acknowledgement (response flag other than
    /// [`RESPONSE_COMMAND`]), whose 6-byte time is checked but not kept.
    Empty,
}

/// Vehicle login (0x01).
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// Collection time as sent (GMT+8).
    pub time: NaiveDateTime,
    /// Login serial number; the matching logout repeats it.
    pub serial: u16,
    pub iccid: String,
    /// Battery codes per rechargeable energy storage subsystem: in 2016 one code per
    /// subsystem, in 2025 the 24-character serial number of each pack of each BMS.
    pub subsystems: Vec<Vec<String>>,
}

/// Vehicle logout (0x04).
#[derive(Debug, Clone, PartialEq)]
pub struct Logout {
    /// Collection time as sent (GMT+8).
    pub time: NaiveDateTime,
    /// The serial number of the session's login.
    pub serial: u16,
}

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame is {0} bytes; the shortest frame has 25")]
    TooShort(usize),
    #[error("frame starts with {0:02x?}, not ## (2016) or $$ (2025)")]
    BadStartMarker([u8; 2]),
    #[error("data unit declares {declared} bytes but {actual} follow the header")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("BCC is {found:#04x}, the bytes give {computed:#04x}")]
    BadChecksum { computed: u8, found: u8 },
    #[error("command {0:#04x} is not supported")]
    UnsupportedCommand(u8),
    #[error("data unit is encrypted (scheme {0:#04x})")]
    Encrypted(u8),
    #[error("{what} needs {needed} bytes, {remaining} left")]
    Truncated { what: &'static str, needed: usize, remaining: usize },
    #[error("{count} unexpected bytes after {what}")]
    TrailingBytes { what: &'static str, count: usize },
    #[error("information block type {block:#04x} is not defined in the {edition:?} edition or cannot be sized")]
    UnknownBlock { edition: Edition, block: u8 },
    #[error("information block type {0:#04x} appears twice")]
    DuplicateBlock(u8),
    #[error("time {0:?} is not a calendar date and time")]
    BadTime([u8; 6]),
}

impl FrameError {
    /// The reason the message is kept under in the dead letters.
    pub fn reason(&self) -> DeadLetterReason {
        match self {
            Self::BadChecksum { .. } => DeadLetterReason::BadChecksum,
            Self::UnsupportedCommand(_) => DeadLetterReason::UnsupportedCommand,
            Self::Encrypted(_) => DeadLetterReason::Encrypted,
            Self::TooShort(_)
            | Self::BadStartMarker(_)
            | Self::LengthMismatch { .. }
            | Self::Truncated { .. }
            | Self::TrailingBytes { .. }
            | Self::UnknownBlock { .. }
            | Self::DuplicateBlock(_)
            | Self::BadTime(_) => DeadLetterReason::MalformedFrame,
        }
    }
}
