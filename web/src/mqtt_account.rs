//! MQTT accounts for a broker with a password file (Mosquitto, `deploy/mosquitto`): fresh
//! vehicle secrets and the password-file lines that stand for them.
//!
//! The line format is Mosquitto 2.0's (mosquitto_passwd(1), `-H sha512-pbkdf2`, the default):
//! `username:$7$<iterations>$<base64 salt>$<base64 hash>`, where the hash is PBKDF2-HMAC-SHA512
//! of the password with a 12-byte random salt, 64 bytes long, and both are standard base64 with
//! padding. Mosquitto 2.0's mosquitto_passwd uses 101 iterations. Checked against the
//! installed `mosquitto_passwd` (a line it wrote is in the tests below, and the black-box
//! tests have Mosquitto accept lines written here).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use pbkdf2::sha2::Sha512;
use rand::RngCore;

/// PBKDF2 iterations of a `$7$` line, as Mosquitto 2.0's mosquitto_passwd writes them.
pub const MOSQUITTO_PBKDF2_ITERATIONS: u32 = 101;
/// Salt bytes of a `$7$` line (mosquitto_passwd's length).
const SALT_BYTES: usize = 12;
/// Hash bytes of a `$7$` line: one SHA-512 output.
const HASH_BYTES: usize = 64;
/// Random bytes in a vehicle secret: 192 bits, 32 characters once encoded.
const SECRET_BYTES: usize = 24;

/// A fresh random secret for a vehicle: 32 characters of URL-safe base64 (`A–Z a–z 0–9 - _`),
/// easy to type into a terminal's configuration.
pub fn new_vehicle_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `username` can stand in a password file: not empty, no `:` (the field separator),
/// no control characters (a line break would start another account) and no leading `#` (a
/// comment line).
pub fn is_valid_mqtt_username(username: &str) -> bool {
    !username.is_empty()
        && !username.starts_with('#')
        && !username.contains(':')
        && !username.chars().any(char::is_control)
}

/// A Mosquitto password-file line (no line break) for `username` and `password`, with a
/// fresh salt. The caller checks the username with [`is_valid_mqtt_username`].
pub fn mosquitto_password_line(username: &str, password: &str) -> String {
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    line_with(username, password, &salt, MOSQUITTO_PBKDF2_ITERATIONS)
}

/// Whether a `$7$` password-file line (written here or by mosquitto_passwd) is for
/// `password`. The embedded broker authenticates vehicles with it; Mosquitto does the same
/// from its password file.
pub fn mosquitto_password_matches(line: &str, password: &str) -> bool {
    let Some((username, hash)) = line.trim_end().split_once(':') else {
        return false;
    };
    let Some(fields) = hash.strip_prefix("$7$") else {
        return false;
    };
    let mut fields = fields.split('$');
    let (Some(iterations), Some(salt), Some(_), None) = (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let (Ok(iterations), Ok(salt)) = (iterations.parse::<u32>(), STANDARD.decode(salt)) else {
        return false;
    };
    if iterations == 0 {
        return false;
    }
    line_with(username, password, &salt, iterations) == line.trim_end()
}

fn line_with(username: &str, password: &str, salt: &[u8], iterations: u32) -> String {
    let mut hash = [0u8; HASH_BYTES];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, iterations, &mut hash);
    format!("{username}:$7${iterations}${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by Mosquitto 2.0.11's `mosquitto_passwd -c -b pwtest alice s3cret` (Debian 12).
    const FROM_MOSQUITTO_PASSWD: &str = "alice:$7$101$oqXxb/a//a0/ghKK$rhivsczN3vgLDE8co+WK9Hb1L6jP9yUVDZGzaJOykxFlgDm7WVXfn31Udwrhht10JA8E9Tln7IaTQjwv52Qkbw==";

    #[test]
    fn reproduces_a_line_written_by_mosquitto_passwd_from_its_salt() {
        let salt = STANDARD.decode("oqXxb/a//a0/ghKK").unwrap();
        assert_eq!(line_with("alice", "s3cret", &salt, 101), FROM_MOSQUITTO_PASSWD);
        assert!(mosquitto_password_matches(FROM_MOSQUITTO_PASSWD, "s3cret"));
        assert!(!mosquitto_password_matches(FROM_MOSQUITTO_PASSWD, "s3cret "));
    }

    #[test]
    fn a_fresh_line_has_mosquitto_passwd_shape_and_its_own_salt() {
        let line = mosquitto_password_line("LSJA24U66NS000001", "pw");
        let (user, hash) = line.split_once(':').unwrap();
        assert_eq!(user, "LSJA24U66NS000001");
        let fields: Vec<&str> = hash.split('$').collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert_eq!((fields[0], fields[1], fields[2]), ("", "7", "101"));
        assert_eq!((fields[3].len(), fields[4].len()), (16, 88), "12-byte salt, 64-byte hash in base64");
        assert!(mosquitto_password_matches(&line, "pw"));
        assert_ne!(line, mosquitto_password_line("LSJA24U66NS000001", "pw"));
    }

    #[test]
    fn malformed_lines_match_nothing() {
        for bad in [
            "",
            "alice",
            "alice:",
            "alice:$6$abc$def",
            "alice:$7$x$oqXxb/a//a0/ghKK$AA==",
            "alice:$7$0$AA==$AA==",
            "alice:$7$101$!!$AA==",
        ] {
            assert!(!mosquitto_password_matches(bad, ""), "{bad}");
        }
    }

    #[test]
    fn secrets_are_random_url_safe_and_32_characters() {
        let s = new_vehicle_secret();
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{s}");
        assert_ne!(s, new_vehicle_secret());
    }

    #[test]
    fn usernames_with_a_colon_or_a_line_break_cannot_stand_in_a_password_file() {
        assert!(is_valid_mqtt_username("fleetd"));
        assert!(is_valid_mqtt_username("LSJA24U66NS000001"));
        for bad in ["", "a:b", "a\nb", "a\rb", "#x"] {
            assert!(!is_valid_mqtt_username(bad), "{bad:?}");
        }
    }
}
