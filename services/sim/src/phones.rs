//! Deterministic terminal phone numbers for simulated JT/T 808 terminals, the counterpart of
//! [`sim_vins`](super::sim_vins): a Beidou terminal is known to the platform by the number
//! of its SIM card.

/// The phone number of simulated terminal `index`: 11 digits, `139` and the index padded to
/// eight (`13900000000`, `13900000001`, …), unique for up to 100 million terminals (beyond
/// that the index wraps). Written without leading zeros, as the platform keeps them, and
/// short enough for a 2013 header.
pub fn sim_phone(index: usize) -> String {
    format!("139{:08}", index % 100_000_000)
}

/// Most digits of a phone number in a 2013 header (BCD\[6\]); a 2019 header holds 20.
pub const PHONE_DIGITS_2013: usize = 12;
/// Most digits of a phone number in a 2019 header (BCD\[10\]).
pub const PHONE_DIGITS_2019: usize = 20;

/// Whether `phone` can be a terminal's number: 1 to 20 decimal digits. Numbers of more than
/// [`PHONE_DIGITS_2013`] fit only a 2019 header.
pub fn is_terminal_phone(phone: &str) -> bool {
    (1..=PHONE_DIGITS_2019).contains(&phone.len()) && phone.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn sim_phones_are_eleven_digits_unique_and_stable() {
        assert_eq!(sim_phone(0), "13900000000");
        assert_eq!(sim_phone(42), "13900000042");
        let phones: HashSet<String> = (0..10_000).map(sim_phone).collect();
        assert_eq!(phones.len(), 10_000);
        assert!(phones.iter().all(|p| p.len() == 11 && is_terminal_phone(p)));
    }

    #[test]
    fn a_terminal_phone_is_one_to_twenty_digits() {
        assert!(is_terminal_phone("1"));
        assert!(is_terminal_phone("013912345678"));
        assert!(is_terminal_phone("12345678901234567890"));
        assert!(!is_terminal_phone(""));
        assert!(!is_terminal_phone("123456789012345678901"));
        assert!(!is_terminal_phone("139-0000-0000"));
    }
}
