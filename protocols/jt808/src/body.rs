//! Message bodies by message id: the terminal's session messages (registration,
//! authentication, heartbeat, logout), its location reports, and the general and
//! registration responses both sides send. Any other id keeps its body as bytes.

mod location;
mod register;

use super::header::Header;
use super::reader::Reader;
use super::{Edition, EncodeError, FrameError, id};

pub use location::{Extra, Location, LocationBatch};
pub use register::Register;

/// A message body, by the header's message id.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// 0x0001: the terminal answers one of our messages.
    TerminalResponse(GeneralResponse),
    /// 0x0002.
    Heartbeat,
    /// 0x0003.
    Logout,
    /// 0x0100.
    Register(Register),
    /// 0x0102.
    Authentication(Authentication),
    /// 0x0200.
    Location(Location),
    /// 0x0704.
    LocationBatch(LocationBatch),
    /// 0x8001: the platform answers one of the terminal's messages.
    PlatformResponse(GeneralResponse),
    /// 0x8100.
    RegisterResponse(RegisterResponse),
    /// One part of a subpackaged message (any id): its bytes, to be joined with the other
    /// parts before the whole can be read.
    Fragment(Vec<u8>),
    /// Any other message id: the body as sent.
    Other(Vec<u8>),
}

/// A general response (0x0001 from the terminal, 0x8001 from the platform).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneralResponse {
    /// The serial number of the message answered.
    pub serial: u16,
    /// The id of the message answered.
    pub id: u16,
    /// 0 success, 1 failure, 2 bad message, 3 unsupported, 4 alarm acknowledged (platform
    /// only).
    pub result: u8,
}

/// Terminal authentication (0x0102).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// The authentication code the registration response gave, as sent.
    pub code: Vec<u8>,
    /// 2019 only: the terminal's IMEI (15 bytes).
    pub imei: Option<crate::GbkText>,
    /// 2019 only: the terminal's software version (20 bytes).
    pub software_version: Option<crate::GbkText>,
}

/// The registration response (0x8100).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterResponse {
    /// The serial number of the registration answered.
    pub serial: u16,
    /// 0 success; 1 vehicle already registered, 2 no such vehicle, 3 terminal already
    /// registered, 4 no such terminal.
    pub result: u8,
    /// The authentication code, sent only with success.
    pub auth_code: Vec<u8>,
}

/// 2019 authentication: IMEI and software version widths.
const IMEI_LEN: usize = 15;
const SOFTWARE_VERSION_LEN: usize = 20;

impl Body {
    /// Reads the body of a message with this header. An encrypted body is an error (we hold
    /// no terminal's keys); a part of a subpackaged message is a [`Body::Fragment`].
    pub fn decode(header: &Header, bytes: &[u8]) -> Result<Self, FrameError> {
        if header.encryption != 0 {
            return Err(FrameError::Encrypted(header.encryption));
        }
        if header.subpackage.is_some() {
            return Ok(Self::Fragment(bytes.to_vec()));
        }
        let mut r = Reader::new(bytes);
        let body = match header.id {
            id::TERMINAL_RESPONSE => Self::TerminalResponse(GeneralResponse::decode(&mut r)?),
            id::HEARTBEAT => Self::Heartbeat,
            id::LOGOUT => Self::Logout,
            id::REGISTER => Self::Register(Register::decode(header.edition, &mut r)?),
            id::AUTHENTICATION => Self::Authentication(Authentication::decode(header.edition, &mut r)?),
            id::LOCATION => Self::Location(Location::decode(&mut r)?),
            id::LOCATION_BATCH => Self::LocationBatch(LocationBatch::decode(&mut r)?),
            id::PLATFORM_RESPONSE => Self::PlatformResponse(GeneralResponse::decode(&mut r)?),
            id::REGISTER_RESPONSE => Self::RegisterResponse(RegisterResponse::decode(&mut r)?),
            _ => Self::Other(r.rest().to_vec()),
        };
        r.finish("the message body")?;
        Ok(body)
    }

    /// The message id of this body; `None` for a fragment or another message, whose header
    /// says what they are.
    pub fn id(&self) -> Option<u16> {
        Some(match self {
            Self::TerminalResponse(_) => id::TERMINAL_RESPONSE,
            Self::Heartbeat => id::HEARTBEAT,
            Self::Logout => id::LOGOUT,
            Self::Register(_) => id::REGISTER,
            Self::Authentication(_) => id::AUTHENTICATION,
            Self::Location(_) => id::LOCATION,
            Self::LocationBatch(_) => id::LOCATION_BATCH,
            Self::PlatformResponse(_) => id::PLATFORM_RESPONSE,
            Self::RegisterResponse(_) => id::REGISTER_RESPONSE,
            Self::Fragment(_) | Self::Other(_) => return None,
        })
    }

    /// Writes the body in the layout of `edition`.
    pub(super) fn encode(&self, edition: Edition, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::TerminalResponse(r) | Self::PlatformResponse(r) => r.encode(out),
            Self::Heartbeat | Self::Logout => {}
            Self::Register(r) => r.encode(edition, out)?,
            Self::Authentication(a) => a.encode(edition, out)?,
            Self::Location(l) => l.encode(out)?,
            Self::LocationBatch(b) => b.encode(out)?,
            Self::RegisterResponse(r) => r.encode(out),
            Self::Fragment(bytes) | Self::Other(bytes) => out.extend_from_slice(bytes),
        }
        Ok(())
    }
}

impl GeneralResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, FrameError> {
        Ok(Self { serial: r.u16("response serial")?, id: r.u16("response id")?, result: r.u8("result")? })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(self.result);
    }
}

impl Authentication {
    fn decode(edition: Edition, r: &mut Reader<'_>) -> Result<Self, FrameError> {
        match edition {
            // The whole body is the code; a terminal may end it with a NUL.
            Edition::V2013 => Ok(Self { code: strip_nuls(r.rest()), imei: None, software_version: None }),
            Edition::V2019 => {
                let len = r.u8("authentication code length")?;
                let code = r.take(usize::from(len), "authentication code")?.to_vec();
                let imei = crate::GbkText::from_field(r.take(IMEI_LEN, "IMEI")?);
                let version = crate::GbkText::from_field(r.take(SOFTWARE_VERSION_LEN, "software version")?);
                Ok(Self { code, imei: Some(imei), software_version: Some(version) })
            }
        }
    }

    fn encode(&self, edition: Edition, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match edition {
            Edition::V2013 => out.extend_from_slice(&self.code),
            Edition::V2019 => {
                let len = u8::try_from(self.code.len()).map_err(|_| EncodeError::FieldTooLong {
                    what: "authentication code",
                    len: self.code.len(),
                    max: 255,
                })?;
                out.push(len);
                out.extend_from_slice(&self.code);
                put_field(out, self.imei.as_ref().map_or(&[][..], |t| t.as_bytes()), IMEI_LEN, "IMEI")?;
                let version = self.software_version.as_ref().map_or(&[][..], |t| t.as_bytes());
                put_field(out, version, SOFTWARE_VERSION_LEN, "software version")?;
            }
        }
        Ok(())
    }
}

impl RegisterResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, FrameError> {
        let serial = r.u16("response serial")?;
        let result = r.u8("result")?;
        Ok(Self { serial, result, auth_code: strip_nuls(r.rest()) })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.push(self.result);
        out.extend_from_slice(&self.auth_code);
    }
}

/// `bytes` without trailing NULs.
fn strip_nuls(bytes: &[u8]) -> Vec<u8> {
    crate::GbkText::from_field(bytes).0
}

/// A fixed-width field: `bytes` padded with NULs to `width`.
fn put_field(out: &mut Vec<u8>, bytes: &[u8], width: usize, what: &'static str) -> Result<(), EncodeError> {
    if bytes.len() > width {
        return Err(EncodeError::FieldTooLong { what, len: bytes.len(), max: width });
    }
    out.extend_from_slice(bytes);
    out.resize(out.len() + width - bytes.len(), 0);
    Ok(())
}
