//! The platform's replies: the registration response (0x8100) and the general response
//! (0x8001), each in the edition of the request, to the request's phone number, under a
//! serial number of the platform's own.

use super::body::{Body, GeneralResponse, RegisterResponse};
use super::frame::encode_message;
use super::header::Header;
use super::{EncodeError, id};

/// The result of a registration (0x8100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterResult {
    Success = 0,
    /// The vehicle is registered to another terminal.
    VehicleRegistered = 1,
    /// No such vehicle in the platform's registry.
    NoSuchVehicle = 2,
    /// The terminal is registered to another vehicle.
    TerminalRegistered = 3,
    /// No such terminal in the platform's registry.
    NoSuchTerminal = 4,
}

/// The result of a platform general response (0x8001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeneralResult {
    Success = 0,
    Failure = 1,
    /// The message was malformed.
    BadMessage = 2,
    /// The message is not supported.
    Unsupported = 3,
    /// An alarm was acknowledged.
    AlarmAcknowledged = 4,
}

/// The frame answering a registration with header `request`: its serial, `result` and, on
/// success only, `auth_code`, which the terminal then authenticates with.
pub fn encode_register_response(
    request: &Header,
    platform_serial: u16,
    result: RegisterResult,
    auth_code: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let auth_code = if result == RegisterResult::Success { auth_code.to_vec() } else { Vec::new() };
    let body = Body::RegisterResponse(RegisterResponse { serial: request.serial, result: result as u8, auth_code });
    encode_message(&request.reply(id::REGISTER_RESPONSE, platform_serial), &body)
}

/// The frame answering the message with header `request`: its serial and id, and `result`.
pub fn encode_general_response(
    request: &Header,
    platform_serial: u16,
    result: GeneralResult,
) -> Result<Vec<u8>, EncodeError> {
    let body = Body::PlatformResponse(GeneralResponse { serial: request.serial, id: request.id, result: result as u8 });
    encode_message(&request.reply(id::PLATFORM_RESPONSE, platform_serial), &body)
}
