//! Path syntax, shared by the validator (`config`) and the router, and depending on
//! neither: request path normalisation (RFC 3986 §6.2.2), route path patterns and the
//! parameters of rewrite templates.

use std::borrow::Cow;
use std::fmt::Write;

/// Why a request path was refused before routing (→ 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub &'static str);

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalises a request path (no query): percent-encoded unreserved characters are
/// decoded (so `%2e%2e` is `..`), other escapes are kept as they are (`%2f` stays an
/// escaped `/`, in its case), duplicate slashes collapse, and `.`/`..` segments are
/// resolved without ever climbing above the root. A trailing slash is kept.
///
/// Errors: not starting with `/`, a broken `%` escape, or an encoded NUL.
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(BadPath("the path must start with `/`"));
    }
    // fast path: nothing to decode, no `//`, no dot segment, only ASCII
    let mut prev = 0u8;
    let clean = bytes.iter().all(|&b| {
        let ok = b != b'%' && b < 0x80 && !(prev == b'/' && (b == b'/' || b == b'.'));
        prev = b;
        ok
    });
    if clean {
        return Ok(Cow::Borrowed(raw));
    }
    // 1. decode unreserved escapes, canonicalise the others
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    let mut clean = true;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) else {
                return Err(BadPath("broken percent-encoding in the path"));
            };
            let v = h * 16 + l;
            if v == 0 {
                return Err(BadPath("encoded NUL in the path"));
            }
            if is_unreserved(v) {
                decoded.push(v as char);
            } else {
                // kept as received, hex case included: an allowed `%2f` goes upstream as `%2f`
                decoded.push_str(&raw[i..i + 3]);
            }
            clean = false;
            i += 3;
        } else {
            if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
                clean = false;
            }
            if b == b'.' && (i == 0 || bytes[i - 1] == b'/') {
                clean = false;
            }
            // non-ASCII bytes cannot occur in a valid request target; keep them escaped
            if b >= 0x80 {
                let _ = write!(decoded, "%{b:02X}");
                clean = false;
            } else {
                decoded.push(b as char);
            }
            i += 1;
        }
    }
    if clean {
        return Ok(Cow::Owned(decoded));
    }
    // 2. collapse slashes and resolve dot segments
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut path = String::with_capacity(decoded.len());
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() || trailing {
        path.push('/');
    }
    Ok(Cow::Owned(path))
}

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    Param(String),
}

/// Why a route `path` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("must start with `/`")]
    NoLeadingSlash,
    /// A `{` or `}` that is not a whole `{name}` segment.
    #[error("segment `{0}`: a parameter is a whole segment `{{name}}`")]
    PartialParam(String),
    #[error("parameter `{0}`: names use letters, digits and `_`")]
    BadParamName(String),
    #[error("parameter `{{{0}}}` appears twice")]
    DuplicateParam(String),
    #[error(
        "must be a normalised path (no `.`/`..` segments, `//` or encoded unreserved characters)"
    )]
    NotNormalised,
}

/// A route `path`: `/api/v1/jobs/{id}`; a parameter takes a whole segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    pub segments: Vec<Segment>,
    pub trailing_slash: bool,
}

impl PathPattern {
    pub fn parse(path: &str) -> Result<Self, PatternError> {
        if !path.starts_with('/') {
            return Err(PatternError::NoLeadingSlash);
        }
        let mut segments = Vec::new();
        let mut names = Vec::new();
        for seg in path.split('/').skip(1).filter(|s| !s.is_empty()) {
            if let Some(inner) = seg.strip_prefix('{') {
                let name = inner
                    .strip_suffix('}')
                    .ok_or_else(|| PatternError::PartialParam(seg.to_string()))?;
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(PatternError::BadParamName(seg.to_string()));
                }
                if names.contains(&name) {
                    return Err(PatternError::DuplicateParam(name.to_string()));
                }
                names.push(name);
                segments.push(Segment::Param(name.to_string()));
            } else if seg.contains(['{', '}']) {
                return Err(PatternError::PartialParam(seg.to_string()));
            } else {
                segments.push(Segment::Static(seg.to_string()));
            }
        }
        let literal: String = segments
            .iter()
            .map(|s| match s {
                Segment::Static(s) => format!("/{s}"),
                Segment::Param(_) => "/x".into(),
            })
            .collect();
        let trailing_slash = path.len() > 1 && path.ends_with('/');
        let expect = if trailing_slash {
            format!("{literal}/")
        } else if literal.is_empty() {
            "/".into()
        } else {
            literal.clone()
        };
        if normalize_path(&expect).ok().as_deref() != Some(expect.as_str()) {
            return Err(PatternError::NotNormalised);
        }
        Ok(Self {
            segments,
            trailing_slash,
        })
    }

    /// The pattern with parameter names erased: two patterns with one shape match the
    /// same paths.
    pub fn shape(&self) -> String {
        let mut s: String = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Static(s) => format!("/{s}"),
                Segment::Param(_) => "/{}".into(),
            })
            .collect();
        if s.is_empty() || self.trailing_slash {
            s.push('/');
        }
        s
    }

    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Static(_) => None,
        })
    }
}

/// Names of the `{name}` placeholders of a rewrite template.
pub fn template_params(tpl: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = tpl;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        out.push(&rest[start + 1..start + end]);
        rest = &rest[start + end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let n = |p| normalize_path(p).unwrap();
        assert_eq!(n("/api/v1/x"), "/api/v1/x");
        assert_eq!(n("/api/v1/../internal"), "/api/internal");
        assert_eq!(n("/api/v1/%2e%2e/%2E%2E/internal"), "/internal");
        assert_eq!(n("//api///v1//x/"), "/api/v1/x/");
        assert_eq!(n("/api/./v1/."), "/api/v1/");
        assert_eq!(n("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(n("/a%2fb"), "/a%2fb");
        assert_eq!(n("/a%2Fb/./c"), "/a%2Fb/c");
        assert_eq!(n("/%61pi"), "/api");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/.."), "/");
        assert!(normalize_path("/a%zz").is_err());
        assert!(normalize_path("/a%00").is_err());
        assert!(normalize_path("a").is_err());
    }

    #[test]
    fn patterns() {
        let p = PathPattern::parse("/api/v1/jobs/{id}").unwrap();
        assert_eq!(p.shape(), "/api/v1/jobs/{}");
        assert_eq!(p.params().collect::<Vec<_>>(), vec!["id"]);
        assert!(PathPattern::parse("/a/{id}x").is_err());
        assert!(PathPattern::parse("/a/{id}/{id}").is_err());
        assert!(PathPattern::parse("/a/../b").is_err());
        assert_eq!(template_params("/jobs/{id}/x/{y}"), vec!["id", "y"]);
    }
}
