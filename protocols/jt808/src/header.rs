//! The message header: id, body properties (length, encryption, subpackage, version flag),
//! the 2019 protocol version byte, the terminal's phone number, the serial number and the
//! optional subpackage fields.

use super::reader::{Reader, bcd_phone};
use super::{Edition, EncodeError, FrameError};

/// Body properties: the body length in bits 0–9.
const LENGTH_MASK: u16 = 0x03FF;
/// Body properties: the encryption scheme in bits 10–12.
const ENCRYPTION_SHIFT: u16 = 10;
/// Body properties: bit 13, the message is one part of a longer one.
const SUBPACKAGE_BIT: u16 = 1 << 13;
/// Body properties: bit 14, set by 2019 terminals (a protocol version byte follows).
const VERSION_BIT: u16 = 1 << 14;
/// The longest body the 10-bit length can declare.
pub(super) const MAX_BODY_LEN: usize = LENGTH_MASK as usize;
/// The protocol version of the first 2019 edition; later revisions count up.
pub(super) const PROTOCOL_VERSION_2019: u8 = 1;

/// A message header as sent, less the body length (the encoder derives it from the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The message id (see [`crate::id`]).
    pub id: u16,
    pub edition: Edition,
    /// The 2019 protocol version byte; 0 in a 2013 header, which has none.
    pub protocol_version: u8,
    /// The encryption scheme (bits 10–12 of the body properties): 0 for none, 1 for RSA.
    pub encryption: u8,
    /// The terminal's phone number: BCD digits without the leading zeros of the padding.
    pub phone: String,
    /// The sender's serial number of this message; replies name it.
    pub serial: u16,
    /// Present when the message is one part of a longer one.
    pub subpackage: Option<Subpackage>,
}

/// Which part of a subpackaged message this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subpackage {
    /// The number of parts, at least 1.
    pub total: u16,
    /// This part's number, from 1.
    pub index: u16,
}

impl Header {
    /// A plain (unencrypted, whole) message header: the 2019 edition gets protocol version 1.
    pub fn new(edition: Edition, id: u16, phone: impl Into<String>, serial: u16) -> Self {
        let protocol_version = match edition {
            Edition::V2013 => 0,
            Edition::V2019 => PROTOCOL_VERSION_2019,
        };
        Self { id, edition, protocol_version, encryption: 0, phone: phone.into(), serial, subpackage: None }
    }

    /// The header of our reply to a message with this header: same edition, protocol
    /// version and phone number, our own serial number.
    pub fn reply(&self, id: u16, platform_serial: u16) -> Self {
        Self {
            id,
            edition: self.edition,
            protocol_version: self.protocol_version,
            encryption: 0,
            phone: self.phone.clone(),
            serial: platform_serial,
            subpackage: None,
        }
    }

    /// Reads a header; returns it with the body length it declares.
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<(Self, usize), FrameError> {
        let id = r.u16("message id")?;
        let properties = r.u16("body properties")?;
        let (edition, protocol_version, phone) = if properties & VERSION_BIT != 0 {
            let version = r.u8("protocol version")?;
            (Edition::V2019, version, r.phone(10)?)
        } else {
            (Edition::V2013, 0, r.phone(6)?)
        };
        let serial = r.u16("serial number")?;
        let subpackage = if properties & SUBPACKAGE_BIT != 0 {
            Some(Subpackage { total: r.u16("subpackage total")?, index: r.u16("subpackage index")? })
        } else {
            None
        };
        let encryption = ((properties >> ENCRYPTION_SHIFT) & 0b111) as u8;
        let header = Self { id, edition, protocol_version, encryption, phone, serial, subpackage };
        Ok((header, usize::from(properties & LENGTH_MASK)))
    }

    /// Writes the header of a message whose body is `body_len` bytes.
    pub(super) fn encode(&self, body_len: usize, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if body_len > MAX_BODY_LEN {
            return Err(EncodeError::BodyTooLong(body_len));
        }
        let mut properties = body_len as u16 | u16::from(self.encryption & 0b111) << ENCRYPTION_SHIFT;
        if self.subpackage.is_some() {
            properties |= SUBPACKAGE_BIT;
        }
        if self.edition == Edition::V2019 {
            properties |= VERSION_BIT;
        }
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&properties.to_be_bytes());
        match self.edition {
            Edition::V2013 => out.extend_from_slice(&bcd_phone(&self.phone, 6)?),
            Edition::V2019 => {
                out.push(self.protocol_version);
                out.extend_from_slice(&bcd_phone(&self.phone, 10)?);
            }
        }
        out.extend_from_slice(&self.serial.to_be_bytes());
        if let Some(part) = self.subpackage {
            out.extend_from_slice(&part.total.to_be_bytes());
            out.extend_from_slice(&part.index.to_be_bytes());
        }
        Ok(())
    }
}
