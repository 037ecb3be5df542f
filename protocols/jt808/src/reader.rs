//! A bounds-checked big-endian cursor over an unescaped message, and the BCD fields (phone
//! number, time) the standard writes as packed decimal digits.

use chrono::{NaiveDate, NaiveDateTime};

use super::{EncodeError, FrameError};

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

    /// Fails unless `count` items of at least `size` bytes each can still be there: call it
    /// before allocating for a count read off the wire.
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

    /// Everything that is left.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
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

    /// The BCD\[6\] time `YYMMDDhhmmss` (year 2000 + YY), as sent (Beijing time).
    pub(super) fn time(&mut self) -> Result<NaiveDateTime, FrameError> {
        let b = self.take(6, "time")?;
        let raw = [b[0], b[1], b[2], b[3], b[4], b[5]];
        let mut d = [0u32; 6];
        for (digit, byte) in d.iter_mut().zip(raw) {
            *digit = bcd_byte(byte).ok_or(FrameError::BadTime(raw))?;
        }
        NaiveDate::from_ymd_opt(2000 + d[0] as i32, d[1], d[2])
            .and_then(|date| date.and_hms_opt(d[3], d[4], d[5]))
            .ok_or(FrameError::BadTime(raw))
    }

    /// A BCD phone number of `n` bytes, as digits without the leading zeros of the padding
    /// ("0" when every digit is zero).
    pub(super) fn phone(&mut self, n: usize) -> Result<String, FrameError> {
        let mut digits = String::with_capacity(2 * n);
        for &byte in self.take(n, "phone number")? {
            let value = bcd_byte(byte).ok_or(FrameError::BadBcd { what: "phone number", byte })?;
            digits.push(char::from(b'0' + (value / 10) as u8));
            digits.push(char::from(b'0' + (value % 10) as u8));
        }
        let significant = digits.trim_start_matches('0');
        Ok(if significant.is_empty() { "0".to_owned() } else { significant.to_owned() })
    }

    /// Fails if anything is left after `what`.
    pub(super) fn finish(self, what: &'static str) -> Result<(), FrameError> {
        if self.rest.is_empty() { Ok(()) } else { Err(FrameError::TrailingBytes { what, count: self.rest.len() }) }
    }
}

/// The value 0..=99 of one byte of two BCD digits.
fn bcd_byte(byte: u8) -> Option<u32> {
    let (high, low) = (byte >> 4, byte & 0x0F);
    (high <= 9 && low <= 9).then(|| u32::from(high) * 10 + u32::from(low))
}

/// Two BCD digits of a value below 100.
fn to_bcd(value: u32) -> u8 {
    debug_assert!(value < 100);
    (((value / 10) << 4) | (value % 10)) as u8
}

/// A time as BCD\[6\] `YYMMDDhhmmss`; only years 2000 to 2099 fit.
pub(super) fn bcd_time(time: NaiveDateTime) -> Result<[u8; 6], EncodeError> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(time.year() - 2000).ok().filter(|y| *y < 100).ok_or(EncodeError::BadTime(time))?;
    // A leap second (second 60) has no BCD form that reads back as a calendar time.
    let second = time.second().min(59);
    Ok([year, time.month(), time.day(), time.hour(), time.minute(), second].map(to_bcd))
}

/// A phone number as BCD of `n` bytes, padded with leading zeros.
pub(super) fn bcd_phone(phone: &str, n: usize) -> Result<Vec<u8>, EncodeError> {
    let bad = || EncodeError::BadPhone(phone.to_owned(), 2 * n);
    if phone.is_empty() || phone.len() > 2 * n || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let padded = format!("{phone:0>width$}", width = 2 * n);
    Ok(padded.as_bytes().chunks(2).map(|pair| ((pair[0] - b'0') << 4) | (pair[1] - b'0')).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_phone_number_without_the_leading_zeros_of_its_padding() {
        let mut r = Reader::new(&[0x01, 0x39, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(r.phone(6).unwrap(), "13912345678");
        let mut r = Reader::new(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(r.phone(6).unwrap(), "0");
        let mut r = Reader::new(&[0x01, 0x3A, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(r.phone(6), Err(FrameError::BadBcd { what: "phone number", byte: 0x3A }));
    }

    #[test]
    fn writes_a_phone_number_padded_to_the_width_of_its_edition() {
        assert_eq!(bcd_phone("13912345678", 6).unwrap(), [0x01, 0x39, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(bcd_phone("13912345678", 10).unwrap(), [0, 0, 0, 0, 0x01, 0x39, 0x12, 0x34, 0x56, 0x78]);
        assert!(matches!(bcd_phone("1234567890123", 6), Err(EncodeError::BadPhone(..))));
        assert!(matches!(bcd_phone("139-1234", 6), Err(EncodeError::BadPhone(..))));
        assert!(matches!(bcd_phone("", 6), Err(EncodeError::BadPhone(..))));
    }

    #[test]
    fn reads_a_bcd_time_and_refuses_one_that_is_not_a_calendar_time() {
        let t = Reader::new(&[0x25, 0x03, 0x01, 0x08, 0x30, 0x15]).time().unwrap();
        assert_eq!(t.to_string(), "2025-03-01 08:30:15");
        assert_eq!(bcd_time(t).unwrap(), [0x25, 0x03, 0x01, 0x08, 0x30, 0x15]);
        // 2025-02-29 does not exist; 0x1A is no BCD byte.
        assert!(matches!(Reader::new(&[0x25, 0x02, 0x29, 0, 0, 0]).time(), Err(FrameError::BadTime(_))));
        assert!(matches!(Reader::new(&[0x25, 0x1A, 0x01, 0, 0, 0]).time(), Err(FrameError::BadTime(_))));
        assert!(matches!(Reader::new(&[0x25, 0x01]).time(), Err(FrameError::Truncated { what: "time", .. })));
    }

    #[test]
    fn refuses_to_write_a_time_outside_the_two_digit_years() {
        let t = NaiveDate::from_ymd_opt(2100, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        assert_eq!(bcd_time(t), Err(EncodeError::BadTime(t)));
        let t = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap().and_hms_opt(23, 59, 59).unwrap();
        assert_eq!(bcd_time(t), Err(EncodeError::BadTime(t)));
    }
}
