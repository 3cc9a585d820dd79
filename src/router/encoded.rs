//! The characters of a request path, as received, that upstreams read differently from
//! the router: an encoded `/` is one segment here and a separator to FastAPI, nginx or
//! Express once they decode it (docs/security.md, "split views").

use crate::config::EncodedChar;

/// A set of [`EncodedChar`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodedSet(u8);

impl EncodedSet {
    pub const EMPTY: EncodedSet = EncodedSet(0);

    pub fn of<'a>(chars: impl IntoIterator<Item = &'a EncodedChar>) -> Self {
        Self(chars.into_iter().fold(0, |acc, c| acc | c.bit()))
    }

    pub fn union(self, other: EncodedSet) -> Self {
        Self(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The first character of `self` that `allowed` does not hold.
    pub fn first_outside(self, allowed: EncodedSet) -> Option<EncodedChar> {
        let left = self.0 & !allowed.0;
        EncodedChar::ALL.into_iter().find(|c| left & c.bit() != 0)
    }

    fn insert(&mut self, c: EncodedChar) {
        self.0 |= c.bit();
    }
}

/// Why a path is refused `400 ambiguous_path`: the message names the character.
pub fn refusal_message(c: EncodedChar) -> &'static str {
    match c {
        EncodedChar::Slash => {
            "the path contains an encoded slash (%2F), which upstreams may decode into a path separator; a route takes it with allow_encoded: [slash]"
        }
        EncodedChar::Backslash => {
            "the path contains a backslash (\\ or %5C), which some upstreams read as a path separator; a route takes it with allow_encoded: [backslash]"
        }
        EncodedChar::Semicolon => {
            "the path contains a semicolon (; or %3B), which some upstreams read as the start of path parameters; a route takes it with allow_encoded: [semicolon]"
        }
        EncodedChar::Percent => {
            "the path contains an encoded percent sign (%25), which upstreams that decode twice read as another character; a route takes it with allow_encoded: [percent]"
        }
        EncodedChar::QuestionMark => {
            "the path contains an encoded question mark (%3F), which upstreams may decode into the start of a query; a route takes it with allow_encoded: [question_mark]"
        }
        EncodedChar::Hash => {
            "the path contains an encoded hash (%23), which upstreams may decode into the start of a fragment; a route takes it with allow_encoded: [hash]"
        }
    }
}

/// The message for an encoded NUL, refused whatever is allowed.
pub const NUL_MESSAGE: &str = "the path contains an encoded NUL (%00)";

/// The ambiguous characters in a raw path (no query); `Err` for an encoded NUL. A path
/// without `%`, `\` or `;` costs one scan.
pub fn encoded_in(raw: &str) -> Result<EncodedSet, &'static str> {
    let bytes = raw.as_bytes();
    let mut set = EncodedSet::EMPTY;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => set.insert(EncodedChar::Backslash),
            b';' => set.insert(EncodedChar::Semicolon),
            b'%' => {
                let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                    i += 1;
                    continue;
                };
                let c = match (h, l.to_ascii_uppercase()) {
                    (b'0', b'0') => return Err(NUL_MESSAGE),
                    (b'2', b'F') => Some(EncodedChar::Slash),
                    (b'5', b'C') => Some(EncodedChar::Backslash),
                    (b'3', b'B') => Some(EncodedChar::Semicolon),
                    (b'2', b'5') => Some(EncodedChar::Percent),
                    (b'3', b'F') => Some(EncodedChar::QuestionMark),
                    (b'2', b'3') => Some(EncodedChar::Hash),
                    _ => None,
                };
                if let Some(c) = c {
                    set.insert(c);
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_each_character() {
        let one = |p: &str| encoded_in(p).unwrap().first_outside(EncodedSet::EMPTY);
        assert_eq!(one("/api/v1/admin/users"), None);
        assert_eq!(one("/api/v1/admin%2fusers"), Some(EncodedChar::Slash));
        assert_eq!(one("/api/v1/admin%2Fusers"), Some(EncodedChar::Slash));
        assert_eq!(one("/a%5cb"), Some(EncodedChar::Backslash));
        assert_eq!(one("/a\\b"), Some(EncodedChar::Backslash));
        assert_eq!(one("/a;b"), Some(EncodedChar::Semicolon));
        assert_eq!(one("/a%3bb"), Some(EncodedChar::Semicolon));
        assert_eq!(one("/a%252Fb"), Some(EncodedChar::Percent));
        assert_eq!(one("/a%3Fb"), Some(EncodedChar::QuestionMark));
        assert_eq!(one("/a%23b"), Some(EncodedChar::Hash));
        assert_eq!(one("/a%2e%41b%"), None);
        assert!(encoded_in("/a%00b").is_err());
    }

    #[test]
    fn allowed_sets() {
        let found = encoded_in("/a%2F%3Bb").unwrap();
        let slash = EncodedSet::of(&[EncodedChar::Slash]);
        assert_eq!(found.first_outside(slash), Some(EncodedChar::Semicolon));
        let both = slash.union(EncodedSet::of(&[EncodedChar::Semicolon]));
        assert_eq!(found.first_outside(both), None);
    }
}
