//! The envelope every frame shares, whatever its command: start marker, command, response flag,
//! VIN, encryption, declared length and BCC.

use super::frame::{HEADER_LEN, MIN_FRAME_LEN, bcc};
use super::reader::latin1;
use super::{Edition, FrameError};

/// The fields before a frame's data unit, kept as sent: the command byte may be one that
/// [`decode_frame`](super::decode_frame) does not take (platform login, parameter queries…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub edition: Edition,
    /// The command byte.
    pub command: u8,
    /// [`RESPONSE_COMMAND`](super::RESPONSE_COMMAND) for a command; 0x01.. for an answer.
    pub response: u8,
    /// The 17 VIN bytes exactly as sent (a platform's login puts its own code here).
    pub vin: [u8; 17],
    pub encryption: u8,
}

impl Header {
    /// Checks a whole frame's envelope (start marker, declared length against the bytes, BCC)
    /// and returns its header and data unit. Checks run outside in, so a corrupted frame is
    /// reported as such rather than as whatever its garbled bytes resemble.
    pub fn parse(frame: &[u8]) -> Result<(Self, &[u8]), FrameError> {
        let edition = match frame {
            [a, b, ..] => edition_of([*a, *b]).ok_or(FrameError::BadStartMarker([*a, *b]))?,
            _ => return Err(FrameError::TooShort(frame.len())),
        };
        if frame.len() < MIN_FRAME_LEN {
            return Err(FrameError::TooShort(frame.len()));
        }
        let declared = declared_len(frame);
        let actual = frame.len() - MIN_FRAME_LEN;
        if declared != actual {
            return Err(FrameError::LengthMismatch { declared, actual });
        }
        let (checked, found) = frame.split_at(frame.len() - 1);
        let computed = bcc(&checked[2..]);
        if computed != found[0] {
            return Err(FrameError::BadChecksum { computed, found: found[0] });
        }
        let mut vin = [0u8; 17];
        vin.copy_from_slice(&frame[4..21]);
        let header = Self { edition, command: frame[2], response: frame[3], vin, encryption: frame[21] };
        Ok((header, &checked[HEADER_LEN..]))
    }

    /// The VIN as text, one char per byte (lossless, like [`Frame::vin`](super::Frame::vin)).
    pub fn vin(&self) -> String {
        latin1(&self.vin)
    }
}

/// The edition whose start marker these two bytes are.
pub(super) fn edition_of(marker: [u8; 2]) -> Option<Edition> {
    match marker {
        [b'#', b'#'] => Some(Edition::V2016),
        [b'$', b'$'] => Some(Edition::V2025),
        _ => None,
    }
}

/// The data-unit length a header declares; `header` holds at least [`HEADER_LEN`] bytes.
pub(super) fn declared_len(header: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([header[22], header[23]]))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{VIN, hand_frame};
    use super::*;

    #[test]
    fn parses_the_envelope_of_a_command_the_decoder_does_not_take() {
        let frame = hand_frame(b'$', 0x05, 0xFE, 0x01, &[1, 2, 3]);
        let (header, data) = Header::parse(&frame).unwrap();
        assert_eq!(
            header,
            Header { edition: Edition::V2025, command: 0x05, response: 0xFE, vin: *VIN, encryption: 0x01 }
        );
        assert_eq!(data, &[1, 2, 3]);
        assert_eq!(header.vin(), "LSJA24U66NS000001");
    }

    #[test]
    fn rejects_an_envelope_with_a_bad_checksum_or_length() {
        let mut frame = hand_frame(b'#', 0x07, 0xFE, 0x01, &[]);
        frame.push(0);
        assert_eq!(Header::parse(&frame), Err(FrameError::LengthMismatch { declared: 0, actual: 1 }));
        frame.pop();
        *frame.last_mut().unwrap() ^= 0xFF;
        assert!(matches!(Header::parse(&frame), Err(FrameError::BadChecksum { .. })));
        assert_eq!(Header::parse(b"#$"), Err(FrameError::BadStartMarker(*b"#$")));
        assert_eq!(Header::parse(b"$"), Err(FrameError::TooShort(1)));
    }
}
