//! A frame on the wire: `0x7e`, the escaped header + body + check code, `0x7e`. Inside a frame
//! 0x7e is sent as `0x7d 0x02` and 0x7d as `0x7d 0x01`; the check code is the XOR of every
//! header and body byte. The sender computes the check code, then escapes; the receiver
//! unescapes, then checks.

use super::body::Body;
use super::header::Header;
use super::reader::Reader;
use super::{EncodeError, FrameError};

/// The frame delimiter.
pub(super) const DELIMITER: u8 = 0x7e;
/// The escape byte.
const ESCAPE: u8 = 0x7d;
/// The shortest unescaped message: a 2013 header of 12 bytes, no body, the check code.
const MIN_MESSAGE_LEN: usize = 13;

/// A message whose framing, check code and header are good, its body not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub header: Header,
    /// The body bytes, unescaped, exactly as long as the header declares.
    pub body: Vec<u8>,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

/// The XOR of `bytes`: the check code of a message's header and body.
pub fn check_code(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// `bytes` with 0x7e and 0x7d escaped, so that the result holds no 0x7e.
pub fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16 + 2);
    for &b in bytes {
        match b {
            DELIMITER => out.extend_from_slice(&[ESCAPE, 0x02]),
            ESCAPE => out.extend_from_slice(&[ESCAPE, 0x01]),
            _ => out.push(b),
        }
    }
    out
}

/// Undoes [`escape`]. A 0x7d followed by anything but 0x01 or 0x02 (or by nothing), and a
/// 0x7e, which never appears escaped, are errors.
pub fn unescape(bytes: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().copied().enumerate();
    while let Some((offset, b)) = iter.next() {
        match b {
            ESCAPE => match iter.next() {
                Some((_, 0x01)) => out.push(ESCAPE),
                Some((_, 0x02)) => out.push(DELIMITER),
                other => return Err(FrameError::BadEscape { offset, next: other.map(|(_, b)| b) }),
            },
            DELIMITER => return Err(FrameError::StrayDelimiter(offset)),
            _ => out.push(b),
        }
    }
    Ok(out)
}

/// Reads a frame as [`FrameReader`](crate::FrameReader) yields it (delimiters at the ends may
/// be there or not): unescapes it, checks the check code and the declared body length, and
/// reads the header.
pub fn decode_packet(frame: &[u8]) -> Result<Packet, FrameError> {
    let inner = frame.strip_prefix(&[DELIMITER]).unwrap_or(frame);
    let inner = inner.strip_suffix(&[DELIMITER]).unwrap_or(inner);
    let message = unescape(inner)?;
    if message.len() < MIN_MESSAGE_LEN {
        return Err(FrameError::TooShort(message.len()));
    }
    let (content, found) = message.split_at(message.len() - 1);
    let computed = check_code(content);
    if computed != found[0] {
        return Err(FrameError::BadCheckCode { computed, found: found[0] });
    }
    let mut r = Reader::new(content);
    let (header, declared) = Header::decode(&mut r)?;
    if declared != r.remaining() {
        return Err(FrameError::LengthMismatch { declared, actual: r.remaining() });
    }
    Ok(Packet { header, body: r.rest().to_vec() })
}

/// [`decode_packet`], then [`Body::decode`].
pub fn decode_message(frame: &[u8]) -> Result<Message, FrameError> {
    let packet = decode_packet(frame)?;
    let body = Body::decode(&packet.header, &packet.body)?;
    Ok(Message { header: packet.header, body })
}

/// A whole frame, delimiters included, for a header and body: the header's body length is
/// the body's, the check code is computed, then everything between the delimiters escaped.
pub fn encode_message(header: &Header, body: &Body) -> Result<Vec<u8>, EncodeError> {
    let mut body_bytes = Vec::new();
    body.encode(header.edition, &mut body_bytes)?;
    let mut message = Vec::with_capacity(21 + body_bytes.len() + 1);
    header.encode(body_bytes.len(), &mut message)?;
    message.extend_from_slice(&body_bytes);
    message.push(check_code(&message));
    let mut frame = Vec::with_capacity(message.len() + 8);
    frame.push(DELIMITER);
    frame.extend_from_slice(&escape(&message));
    frame.push(DELIMITER);
    Ok(frame)
}
