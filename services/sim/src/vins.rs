//! Deterministic, well-formed VINs for simulated and demo cars, with a correct ISO 3779 /
//! GB 16735 check digit in position 9.

use fleet_domain::Vin;

/// The characters a VIN may hold, in the order used to spell large serials.
const VIN_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";

/// Builds a VIN from a 3-character manufacturer code, a 5-character descriptor, model year
/// and plant codes and a serial. Returns `None` when a part is malformed or the serial does
/// not fit the last six positions.
pub fn make_vin(wmi: &str, vds: &str, year: char, plant: char, serial: u32) -> Option<Vin> {
    if wmi.len() != 3 || vds.len() != 5 || serial > 999_999 {
        return None;
    }
    let mut vin: Vec<u8> = format!("{wmi}{vds}0{year}{plant}{serial:06}").into_bytes();
    if vin.len() != Vin::LEN {
        return None;
    }
    vin[8] = check_digit(&vin)?;
    Vin::from_bytes(&vin).ok()
}

/// The check digit over all 17 positions (position 9 itself weighs 0).
fn check_digit(vin: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let mut sum = 0;
    for (c, w) in vin.iter().zip(WEIGHTS) {
        let value = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'H' => u32::from(c - b'A') + 1,
            b'J'..=b'N' => u32::from(c - b'J') + 1,
            b'P' => 7,
            b'R' => 9,
            b'S'..=b'Z' => u32::from(c - b'S') + 2,
            _ => return None,
        };
        sum += value * w;
    }
    Some(match sum % 11 {
        10 => b'X',
        d => b'0' + d as u8,
    })
}

/// Deterministic VINs for `n` simulated cars when no registry is at hand: 17 characters,
/// valid per [`Vin`], unique for up to 33 million cars (the plant position carries the
/// serial's millions).
pub fn sim_vins(n: usize) -> Vec<Vin> {
    (0..n)
        .map(|i| {
            let plant = VIN_CHARS[(i / 1_000_000) % VIN_CHARS.len()] as char;
            let serial = (i % 1_000_000) as u32 + 1;
            // "LZS" + "EVS1M": a made-up manufacturer code for simulated Zhoushan EVs.
            make_vin("LZS", "EVS1M", 'S', plant, serial).expect("the simulator's VIN parts are well-formed")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn computes_the_standard_check_digit() {
        // The textbook example of the North American check digit: 1M8GDM9A_KP042788 -> X.
        assert_eq!(check_digit(b"1M8GDM9A0KP042788"), Some(b'X'));
        let vin = make_vin("1M8", "GDM9A", 'K', 'P', 42_788).unwrap();
        assert_eq!(vin.as_str(), "1M8GDM9AXKP042788");
    }

    #[test]
    fn sim_vins_are_valid_unique_and_stable() {
        let vins = sim_vins(2_000);
        assert_eq!(vins.len(), 2_000);
        let unique: HashSet<_> = vins.iter().collect();
        assert_eq!(unique.len(), vins.len());
        for v in &vins {
            assert_eq!(Vin::parse(v.as_str()).as_ref(), Ok(v));
            assert_eq!(check_digit(v.as_str().as_bytes()), Some(v.as_str().as_bytes()[8]));
        }
        assert_eq!(sim_vins(3), vins[..3].to_vec());
    }

    #[test]
    fn rejects_malformed_parts() {
        assert!(make_vin("LZ", "EVS1M", 'S', '0', 1).is_none());
        assert!(make_vin("LZS", "EVS1M", 'S', '0', 1_000_000).is_none());
        assert!(make_vin("LZS", "EVSIO", 'S', '0', 1).is_none());
    }
}
