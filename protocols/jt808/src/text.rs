//! Text fields. The standard's strings are GBK; terminals fill fixed-width fields with ASCII
//! and trailing NULs, and a plate number starts with a Chinese character (its province).
//! Bytes are kept as sent; the rendering for people knows ASCII and the characters that
//! appear on Chinese plates, and shows anything else as U+FFFD, rather than pulling in a
//! full GBK table.

use std::fmt;

/// GBK text as sent, trailing NUL padding removed.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct GbkText(pub Vec<u8>);

/// The GBK codes of the characters of Chinese plates: province abbreviations and the
/// special-use characters (embassy, police, coach, Hong Kong, Macao, trailer, test…).
/// Sorted by code for the binary search.
const PLATE_CHARS: [(u16, char); 43] = [
    (0xB0C4, '澳'),
    (0xB2D8, '藏'),
    (0xB3AC, '超'),
    (0xB4A8, '川'),
    (0xB6F5, '鄂'),
    (0xB8CA, '甘'),
    (0xB8D3, '赣'),
    (0xB8DB, '港'),
    (0xB9D2, '挂'),
    (0xB9F0, '桂'),
    (0xB9F3, '贵'),
    (0xBADA, '黑'),
    (0xBBA6, '沪'),
    (0xBCAA, '吉'),
    (0xBCB1, '急'),
    (0xBCBD, '冀'),
    (0xBDF2, '津'),
    (0xBDFA, '晋'),
    (0xBEA9, '京'),
    (0xBEAF, '警'),
    (0xC1C9, '辽'),
    (0xC1D9, '临'),
    (0xC1EC, '领'),
    (0xC2B3, '鲁'),
    (0xC3C9, '蒙'),
    (0xC3F6, '闽'),
    (0xC4FE, '宁'),
    (0xC7E0, '青'),
    (0xC7ED, '琼'),
    (0xC9C2, '陕'),
    (0xCAB9, '使'),
    (0xCAD4, '试'),
    (0xCBD5, '苏'),
    (0xCDEE, '皖'),
    (0xCFE6, '湘'),
    (0xD0C2, '新'),
    (0xD1A7, '学'),
    (0xD3A6, '应'),
    (0xD3E5, '渝'),
    (0xD4A5, '豫'),
    (0xD4C1, '粤'),
    (0xD4C6, '云'),
    (0xD5E3, '浙'),
];

impl GbkText {
    /// The bytes of a field, trailing NULs (the padding of fixed-width fields, or a string's
    /// terminator) removed.
    pub fn from_field(bytes: &[u8]) -> Self {
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        Self(bytes[..end].to_vec())
    }

    /// The bytes as sent, less the trailing padding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text for people: ASCII and plate characters as they are, any other character as
    /// U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        let mut i = 0;
        while let Some(&b) = self.0.get(i) {
            if b.is_ascii() {
                out.push(char::from(b));
                i += 1;
                continue;
            }
            // A GBK lead byte (0x81..=0xFE) takes the next byte with it; 0x80 and 0xFF are
            // single bytes GBK leaves undefined.
            let pair = (0x81..=0xFE).contains(&b).then(|| self.0.get(i + 1)).flatten();
            match pair {
                Some(&trail) => {
                    let code = u16::from_be_bytes([b, trail]);
                    let known = PLATE_CHARS.binary_search_by_key(&code, |&(c, _)| c).ok();
                    out.push(known.map_or(char::REPLACEMENT_CHARACTER, |k| PLATE_CHARS[k].1));
                    i += 2;
                }
                None => {
                    out.push(char::REPLACEMENT_CHARACTER);
                    i += 1;
                }
            }
        }
        out
    }

    /// Text as GBK: ASCII and plate characters are encoded, anything else becomes `?`.
    pub fn encode_lossy(text: &str) -> Self {
        let mut bytes = Vec::with_capacity(text.len());
        for c in text.chars() {
            if c.is_ascii() {
                bytes.push(c as u8);
            } else if let Some((code, _)) = PLATE_CHARS.iter().find(|(_, known)| *known == c) {
                bytes.extend_from_slice(&code.to_be_bytes());
            } else {
                bytes.push(b'?');
            }
        }
        Self(bytes)
    }
}

impl fmt::Display for GbkText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for GbkText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

impl From<&str> for GbkText {
    fn from(text: &str) -> Self {
        Self::encode_lossy(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_plate_with_its_province_character() {
        // 浙L12345 in GBK.
        let plate = GbkText::from_field(&[0xD5, 0xE3, b'L', b'1', b'2', b'3', b'4', b'5', 0, 0]);
        assert_eq!(plate.as_bytes().len(), 8, "the NUL padding is dropped");
        assert_eq!(plate.to_string(), "浙L12345");
        assert_eq!(GbkText::from("浙L12345"), plate);
    }

    #[test]
    fn keeps_unknown_characters_as_bytes_and_shows_them_as_replacements() {
        // 中 (0xD6D0) is no plate character; 0x80 and a lone lead byte at the end are no GBK.
        let text = GbkText::from_field(&[b'A', 0xD6, 0xD0, 0x80, b'B', 0xB0]);
        assert_eq!(text.to_string(), "A\u{FFFD}\u{FFFD}B\u{FFFD}");
        assert_eq!(text.as_bytes(), [b'A', 0xD6, 0xD0, 0x80, b'B', 0xB0]);
    }

    #[test]
    fn keeps_the_plate_table_sorted_for_the_binary_search() {
        assert!(PLATE_CHARS.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
