//! Rejected input, kept with its reason so that nothing is silently lost.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Why a message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    MalformedJson,
    MalformedFrame,
    BadChecksum,
    UnknownVehicle,
    VinMismatch,
    InvalidSample,
    TooLarge,
    BadTopic,
    UnsupportedCommand,
    Encrypted,
    /// A report on a gateway connection that has not logged in.
    NotLoggedIn,
}

impl DeadLetterReason {
    pub const ALL: [DeadLetterReason; 11] = [
        Self::MalformedJson,
        Self::MalformedFrame,
        Self::BadChecksum,
        Self::UnknownVehicle,
        Self::VinMismatch,
        Self::InvalidSample,
        Self::TooLarge,
        Self::BadTopic,
        Self::UnsupportedCommand,
        Self::Encrypted,
        Self::NotLoggedIn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::MalformedFrame => "malformed_frame",
            Self::BadChecksum => "bad_checksum",
            Self::UnknownVehicle => "unknown_vehicle",
            Self::VinMismatch => "vin_mismatch",
            Self::InvalidSample => "invalid_sample",
            Self::TooLarge => "too_large",
            Self::BadTopic => "bad_topic",
            Self::UnsupportedCommand => "unsupported_command",
            Self::Encrypted => "encrypted",
            Self::NotLoggedIn => "not_logged_in",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The raw bytes kept of a rejected message.
pub const DEAD_LETTER_PAYLOAD_MAX: usize = 64 * 1024;

/// A rejected message (or one rejected sample of a batch).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub received_at: DateTime<Utc>,
    pub topic: String,
    pub vin: Option<String>,
    pub reason: DeadLetterReason,
    pub detail: String,
    /// The first `DEAD_LETTER_PAYLOAD_MAX` bytes of the message.
    pub payload: Vec<u8>,
    /// The whole message's size in bytes.
    pub size: usize,
}

impl DeadLetter {
    pub fn new(
        topic: &str,
        vin: Option<&str>,
        reason: DeadLetterReason,
        detail: impl Into<String>,
        payload: &[u8],
    ) -> Self {
        Self {
            received_at: Utc::now(),
            topic: topic.to_owned(),
            vin: vin.map(str::to_owned),
            reason,
            detail: detail.into(),
            payload: payload[..payload.len().min(DEAD_LETTER_PAYLOAD_MAX)].to_vec(),
            size: payload.len(),
        }
    }
}
