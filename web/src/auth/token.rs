//! Bearer tokens: 32 random bytes in hex for the client, their SHA-256 for the database, so a
//! leaked table grants nothing.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Characters of a token as handed out (32 bytes, hex).
pub const TOKEN_HEX_LEN: usize = 64;

/// A fresh random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What is stored of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether a string can be a token at all (checked before any database look-up).
pub fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_HEX_LEN && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_of_32_bytes() {
        let a = new_token();
        assert!(is_well_formed(&a), "{a}");
        assert_ne!(a, new_token());
        assert!(!is_well_formed("garbage"));
        assert!(!is_well_formed(&"g".repeat(TOKEN_HEX_LEN)));
    }

    #[test]
    fn the_stored_hash_is_sha256_hex() {
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
