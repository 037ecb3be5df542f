//! The regular expressions of `pattern` keywords, as far as schemas of identifiers use them:
//! literals, `.`, escapes (`\d`, `\w`, `\s`, escaped punctuation), character classes with
//! ranges and negation, the quantifiers `* + ? {n} {n,} {n,m}`, and the anchors `^` and `$`.
//! Groups and alternation are refused (an error, not a silent pass). Unanchored patterns
//! match anywhere, as JSON Schema says.

/// One position of a pattern: what a character must be, and how many times.
#[derive(Debug, Clone, PartialEq)]
struct Piece {
    class: Class,
    min: usize,
    max: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Class {
    Any,
    Set { negated: bool, items: Vec<(char, char)> },
}

impl Class {
    fn one(c: char) -> Self {
        Self::Set { negated: false, items: vec![(c, c)] }
    }

    fn has(&self, c: char) -> bool {
        match self {
            Self::Any => c != '\n',
            Self::Set { negated, items } => items.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated,
        }
    }
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pieces: Vec<Piece>,
    start: bool,
    end: bool,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut chars: Vec<char> = text.chars().collect();
        let start = chars.first() == Some(&'^');
        if start {
            chars.remove(0);
        }
        let end = chars.last() == Some(&'$') && !ends_escaped(&chars);
        if end {
            chars.pop();
        }
        let mut pieces = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let class = match chars[i] {
                '.' => Class::Any,
                '\\' => {
                    i += 1;
                    escape(*chars.get(i).ok_or("a pattern ends in a backslash")?)
                }
                '[' => {
                    let (class, next) = set(&chars, i + 1)?;
                    i = next;
                    class
                }
                c @ ('(' | ')' | '|' | '^' | '$' | '*' | '+' | '?' | '{' | '}' | ']') => {
                    return Err(format!("{c:?} is beyond this validator's patterns"));
                }
                c => Class::one(c),
            };
            i += 1;
            let (min, max, next) = quantifier(&chars, i)?;
            i = next;
            pieces.push(Piece { class, min, max });
        }
        Ok(Self { pieces, start, end })
    }

    /// Whether `s` matches (anywhere, unless anchored).
    pub fn matches(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let starts = if self.start { 0..=0 } else { 0..=chars.len() };
        starts.into_iter().any(|from| self.at(0, &chars[from..]))
    }

    fn at(&self, piece: usize, rest: &[char]) -> bool {
        let Some(p) = self.pieces.get(piece) else {
            return !self.end || rest.is_empty();
        };
        let mut n = 0;
        while n < p.max && n < rest.len() && p.class.has(rest[n]) {
            n += 1;
        }
        // Greedy, then back off one character at a time.
        (p.min..=n).rev().any(|taken| self.at(piece + 1, &rest[taken..]))
    }
}

/// Whether the last character is escaped by an odd run of backslashes.
fn ends_escaped(chars: &[char]) -> bool {
    chars[..chars.len() - 1].iter().rev().take_while(|c| **c == '\\').count() % 2 == 1
}

fn escape(c: char) -> Class {
    match c {
        'd' => Class::Set { negated: false, items: vec![('0', '9')] },
        'w' => Class::Set { negated: false, items: vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')] },
        's' => Class::Set { negated: false, items: vec![(' ', ' '), ('\t', '\t'), ('\n', '\n'), ('\r', '\r')] },
        other => Class::one(other),
    }
}

/// A character class from just after its `[`; answers it and the index of its `]`.
fn set(chars: &[char], mut i: usize) -> Result<(Class, usize), String> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    loop {
        let c = *chars.get(i).ok_or("a character class is not closed")?;
        if c == ']' && !items.is_empty() {
            return Ok((Class::Set { negated, items }, i));
        }
        let lo = if c == '\\' {
            i += 1;
            match escape(*chars.get(i).ok_or("a pattern ends in a backslash")?) {
                Class::Set { negated: false, items: escaped } if escaped.len() > 1 || escaped[0].0 != escaped[0].1 => {
                    items.extend(escaped);
                    i += 1;
                    continue;
                }
                _ => chars[i],
            }
        } else {
            c
        };
        // A `-` between two characters is a range; first or last it is itself.
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|c| *c != ']') {
            let hi = match chars[i + 2] {
                '\\' => *chars.get(i + 3).ok_or("a pattern ends in a backslash")?,
                c => c,
            };
            if hi < lo {
                return Err(format!("range {lo}-{hi} runs backwards"));
            }
            items.push((lo, hi));
            i += if chars[i + 2] == '\\' { 4 } else { 3 };
        } else {
            items.push((lo, lo));
            i += 1;
        }
    }
}

/// The quantifier at `i`, if any: (min, max, the index after it).
fn quantifier(chars: &[char], i: usize) -> Result<(usize, usize, usize), String> {
    Ok(match chars.get(i) {
        Some('*') => (0, usize::MAX, i + 1),
        Some('+') => (1, usize::MAX, i + 1),
        Some('?') => (0, 1, i + 1),
        Some('{') => {
            let close = chars[i..].iter().position(|c| *c == '}').ok_or("a quantifier is not closed")? + i;
            let inside: String = chars[i + 1..close].iter().collect();
            let number = |s: &str| s.trim().parse::<usize>().map_err(|_| format!("bad quantifier {{{inside}}}"));
            let (min, max) = match inside.split_once(',') {
                None => (number(&inside)?, number(&inside)?),
                Some((lo, "")) => (number(lo)?, usize::MAX),
                Some((lo, hi)) => (number(lo)?, number(hi)?),
            };
            if max < min {
                return Err(format!("quantifier {{{inside}}} runs backwards"));
            }
            (min, max, close + 1)
        }
        _ => (1, 1, i),
    })
}
