//! A bounds-checked big-endian cursor over a data unit, and the standard's "abnormal" and
//! "invalid" sentinels.

use chrono::{NaiveDate, NaiveDateTime};

use super::FrameError;

/// Reads big-endian fields off the front of a byte slice; every read is checked against what
/// is left and fails with [`FrameError::Truncated`] naming the field.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(super) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Fails unless `count` items of `size` bytes each are still there: call it before
    /// allocating for a count read off the wire.
    pub(super) fn expect_items(&self, count: usize, size: usize, what: &'static str) -> Result<(), FrameError> {
        let needed = count.saturating_mul(size);
        if needed > self.rest.len() {
            return Err(FrameError::Truncated { what, needed, remaining: self.rest.len() });
        }
        Ok(())
    }

    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        self.expect_items(n, 1, what)?;
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        Ok(self.take(1, what)?[0])
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, FrameError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, FrameError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The 6-byte time `YY MM DD hh mm ss` (year 2000 + YY), as sent (GMT+8).
    pub(super) fn time(&mut self) -> Result<NaiveDateTime, FrameError> {
        let b = self.take(6, "time")?;
        let raw = [b[0], b[1], b[2], b[3], b[4], b[5]];
        NaiveDate::from_ymd_opt(2000 + i32::from(raw[0]), u32::from(raw[1]), u32::from(raw[2]))
            .and_then(|d| d.and_hms_opt(u32::from(raw[3]), u32::from(raw[4]), u32::from(raw[5])))
            .ok_or(FrameError::BadTime(raw))
    }

    /// ASCII text of `n` bytes, one char per byte (lossless), trailing NUL padding dropped.
    pub(super) fn text(&mut self, n: usize, what: &'static str) -> Result<String, FrameError> {
        Ok(latin1(self.take(n, what)?).trim_end_matches('\0').to_owned())
    }

    /// Fails if anything is left after `what`.
    pub(super) fn finish(self, what: &'static str) -> Result<(), FrameError> {
        if self.rest.is_empty() { Ok(()) } else { Err(FrameError::TrailingBytes { what, count: self.rest.len() }) }
    }
}

/// Bytes as text with one char per byte, so that nothing is lost or replaced.
pub(super) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().copied().map(char::from).collect()
}

/// A BYTE value, or `None` for 0xFE (abnormal) and 0xFF (invalid).
pub(super) fn byte(raw: u8) -> Option<u8> {
    (raw < 0xFE).then_some(raw)
}

/// A WORD value, or `None` for 0xFFFE (abnormal) and 0xFFFF (invalid).
pub(super) fn word(raw: u16) -> Option<u16> {
    (raw < 0xFFFE).then_some(raw)
}

/// A DWORD value, or `None` for 0xFFFFFFFE (abnormal) and 0xFFFFFFFF (invalid).
pub(super) fn dword(raw: u32) -> Option<u32> {
    (raw < 0xFFFF_FFFE).then_some(raw)
}

/// A BYTE temperature in °C (offset −40), sentinels checked before the offset.
pub(super) fn temperature(raw: u8) -> Option<i16> {
    byte(raw).map(|v| i16::from(v) - 40)
}

/// A WORD in units of 1/`per_unit`, minus `offset`; sentinels checked before scaling.
pub(super) fn scaled_word(raw: u16, per_unit: f64, offset: f64) -> Option<f64> {
    word(raw).map(|v| scale(f64::from(v), per_unit, offset))
}

/// A DWORD in units of 1/`per_unit`, minus `offset`; sentinels checked before scaling.
pub(super) fn scaled_dword(raw: u32, per_unit: f64, offset: f64) -> Option<f64> {
    dword(raw).map(|v| scale(f64::from(v), per_unit, offset))
}

/// Subtracting the offset in whole steps and then dividing once gives the double nearest the
/// true value (9877 steps of 0.1 A less 1000 A is exactly "-12.3"), where multiplying by 0.1
/// or dividing first would leave rounding noise.
fn scale(steps: f64, per_unit: f64, offset: f64) -> f64 {
    (steps - offset * per_unit) / per_unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treats_sentinels_as_absent_before_scaling() {
        assert_eq!(byte(0xFD), Some(0xFD));
        assert_eq!(byte(0xFE), None);
        assert_eq!(byte(0xFF), None);
        assert_eq!(scaled_word(0xFFFF, 10.0, 0.0), None);
        assert_eq!(scaled_word(0xFFFE, 10.0, 1000.0), None);
        assert_eq!(scaled_word(0xFFFD, 10.0, 0.0), Some(6553.3));
        assert_eq!(scaled_dword(0xFFFF_FFFE, 1e6, 0.0), None);
        assert_eq!(temperature(0xFF), None);
        assert_eq!(temperature(0), Some(-40));
    }

    #[test]
    fn reports_which_field_ran_out_of_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("speed"), Ok(0x0102));
        assert_eq!(r.u32("odometer"), Err(FrameError::Truncated { what: "odometer", needed: 4, remaining: 1 }));
        assert_eq!(
            r.expect_items(usize::MAX, 2, "cells").unwrap_err().reason(),
            fleet_domain::DeadLetterReason::MalformedFrame
        );
    }

    #[test]
    fn rejects_a_time_that_is_not_a_calendar_date() {
        assert!(Reader::new(&[25, 2, 29, 0, 0, 0]).time().is_err());
        assert!(Reader::new(&[24, 2, 29, 23, 59, 59]).time().is_ok());
        assert_eq!(Reader::new(&[25, 1, 1, 24, 0, 0]).time(), Err(FrameError::BadTime([25, 1, 1, 24, 0, 0])));
    }
}
