//! Payload decoders: the JSON telemetry format, GB/T 32960.3 binary frames (2016 and 2025
//! editions), and the JSON of EMQX's GB/T 32960 and JT/T 808 gateways. Pure functions from
//! bytes to samples; no I/O. Every failure is a concrete error that names its dead-letter
//! reason, and no input makes a decoder panic.
//!
//! The GB/T 32960 codec is its own crate (`fleet-gbt32960`), shared with the web API that
//! shows stored frames; it is re-exported here under its old path.

pub mod emqx_gbt32960;
mod emqx_json;
pub mod emqx_jt808;
pub use fleet_gbt32960 as gbt32960;
pub mod json;

use fleet_domain::DeadLetterReason;

pub use emqx_json::EmqxError;
pub use gbt32960::FrameError;
pub use json::JsonError;

/// A whole message that could not be decoded, whatever its format.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Json(#[from] JsonError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Emqx(#[from] EmqxError),
}

impl DecodeError {
    /// The reason the message is kept under in the dead letters.
    pub fn reason(&self) -> DeadLetterReason {
        match self {
            Self::Json(e) => e.reason(),
            Self::Frame(e) => e.reason(),
            Self::Emqx(e) => e.reason(),
        }
    }
}

#[cfg(test)]
mod tests {
    use fleet_domain::Vin;

    use super::*;

    #[test]
    fn maps_each_format_error_to_its_dead_letter_reason() {
        let vin = Vin::parse("LSJA24U66NS000001").unwrap();
        let json: DecodeError = json::decode(&vin, b"{").unwrap_err().into();
        assert_eq!(json.reason(), DeadLetterReason::MalformedJson);
        let frame: DecodeError = gbt32960::decode_frame(b"##").unwrap_err().into();
        assert_eq!(frame.reason(), DeadLetterReason::MalformedFrame);
    }
}
