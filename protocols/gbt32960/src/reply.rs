//! The platform's answers to what a terminal or a forwarding platform sends over TCP: the
//! request's command, VIN and encryption byte, a response flag saying success or error, the
//! data the command calls for, and a correct BCC.

use chrono::{Datelike, NaiveDateTime, Timelike};

use super::frame::{MIN_FRAME_LEN, bcc};
use super::header::Header;
use super::reader::Reader;
use super::{ENCRYPTION_NONE, FrameError, RESPONSE_COMMAND};

/// The platform's verdict on a request, sent as the answer's response flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// 0x01: accepted (a login from a registered vehicle, a durable report…).
    Success,
    /// 0x02: refused (an unknown vehicle, wrong platform credentials…).
    Error,
}

impl Ack {
    /// The response flag on the wire.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0x01,
            Self::Error => 0x02,
        }
    }
}

/// Why no answer can be built for a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The request's envelope, encryption or time is not one to answer.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The request is itself an answer; answering it would start a ping-pong.
    #[error("the frame is an answer (response flag {0:#04x}), not a command")]
    NotACommand(u8),
    /// A command the platform does not answer (parameter queries, activation…).
    #[error("command {0:#04x} gets no answer from the platform")]
    Unanswered(u8),
    /// The clock gave a time the 6-byte form cannot hold.
    #[error("{0} cannot be sent as a 6-byte time (years 2000 to 2255)")]
    TimeOutOfRange(NaiveDateTime),
}

/// Builds the platform's answer to `request`, a whole frame as the stream splitter gave it
/// (its envelope is checked again here).
///
/// The answer repeats the request's command, VIN and encryption byte, carries `ack` as its
/// response flag, and as data:
/// - vehicle login (0x01), real-time (0x02) and re-issued (0x03) reports, vehicle logout
///   (0x04), platform login (0x05) and logout (0x06): the request's own 6-byte time;
/// - heartbeat (0x07): nothing;
/// - time calibration (0x08): `beijing_now`, the current time in GMT+8.
///
/// An answer carrying data needs a plain-text request: the time is read from its data unit
/// and written in the clear under the request's encryption byte.
pub fn encode_reply(request: &[u8], ack: Ack, beijing_now: NaiveDateTime) -> Result<Vec<u8>, ReplyError> {
    let (header, data) = Header::parse(request)?;
    if header.response != RESPONSE_COMMAND {
        return Err(ReplyError::NotACommand(header.response));
    }
    let plain_text = || {
        if header.encryption == ENCRYPTION_NONE { Ok(()) } else { Err(FrameError::Encrypted(header.encryption)) }
    };
    let time = match header.command {
        0x01..=0x06 => {
            plain_text()?;
            // Checked as a calendar time, then sent back byte for byte.
            Reader::new(data).time()?;
            data[..6].to_vec()
        }
        0x07 => Vec::new(),
        0x08 => {
            plain_text()?;
            time_bytes(beijing_now).ok_or(ReplyError::TimeOutOfRange(beijing_now))?.to_vec()
        }
        other => return Err(ReplyError::Unanswered(other)),
    };
    Ok(answer(&header, ack, &time))
}

/// Frames `data` (at most a time, so the length always fits) as the answer to `header`.
fn answer(header: &Header, ack: Ack, data: &[u8]) -> Vec<u8> {
    let marker = header.edition.marker();
    let mut frame = Vec::with_capacity(MIN_FRAME_LEN + data.len());
    frame.extend_from_slice(&[marker, marker, header.command, ack.code()]);
    frame.extend_from_slice(&header.vin);
    frame.push(header.encryption);
    frame.extend_from_slice(&u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes());
    frame.extend_from_slice(data);
    frame.push(bcc(&frame[2..]));
    frame
}

/// `YY MM DD hh mm ss` with YY the years since 2000, or `None` outside 2000..=2255.
fn time_bytes(t: NaiveDateTime) -> Option<[u8; 6]> {
    let year = u8::try_from(t.year().checked_sub(2000)?).ok()?;
    // Month, day and the time of day always fit a byte.
    let [month, day, hour, minute, second] = [t.month(), t.day(), t.hour(), t.minute(), t.second()].map(|v| v as u8);
    Some([year, month, day, hour, minute, second])
}

#[cfg(test)]
mod tests;
