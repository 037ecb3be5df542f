//! The vehicle identification number: the identity of a car everywhere in the platform.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A 17-character VIN of `[A-HJ-NPR-Z0-9]` (ISO 3779: no I, O or Q).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Vin(String);

/// Why a string is not a VIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VinError {
    #[error("a VIN has 17 characters, this one has {0}")]
    Length(usize),
    #[error("a VIN may hold only A-H, J-N, P, R-Z and 0-9; found {0:?}")]
    Character(char),
}

impl Vin {
    pub const LEN: usize = 17;

    /// Validates `s` as a VIN.
    pub fn parse(s: &str) -> Result<Self, VinError> {
        let n = s.chars().count();
        if n != Self::LEN {
            return Err(VinError::Length(n));
        }
        if let Some(c) = s.chars().find(|c| !Self::is_vin_char(*c)) {
            return Err(VinError::Character(c));
        }
        Ok(Self(s.to_owned()))
    }

    /// Validates raw bytes (as found in a GB/T 32960 frame) as a VIN.
    pub fn from_bytes(b: &[u8]) -> Result<Self, VinError> {
        match std::str::from_utf8(b) {
            Ok(s) => Self::parse(s),
            Err(_) => Err(VinError::Character(char::REPLACEMENT_CHARACTER)),
        }
    }

    fn is_vin_char(c: char) -> bool {
        matches!(c, 'A'..='H' | 'J'..='N' | 'P' | 'R'..='Z' | '0'..='9')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Vin {
    type Error = VinError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl<'de> Deserialize<'de> for Vin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Vin::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_well_formed_vin() {
        assert_eq!(Vin::parse("LSJA24U66NS000001").unwrap().as_str(), "LSJA24U66NS000001");
    }

    #[test]
    fn rejects_wrong_length_and_forbidden_letters() {
        assert_eq!(Vin::parse("LSJA24U66NS00000"), Err(VinError::Length(16)));
        assert_eq!(Vin::parse("LSJA24U66NS00000I"), Err(VinError::Character('I')));
        assert_eq!(Vin::parse("lsja24u66ns000001"), Err(VinError::Character('l')));
        assert!(Vin::parse("LSJA24U66NS0000O1").is_err());
        assert!(Vin::parse("LSJA24U66NS0000Q1").is_err());
    }
}
