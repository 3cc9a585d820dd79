//! Cache keys. The primary key is the method, scheme, host, path and query of the
//! request: two hosts never share an entry (the host omission of CVE-2026-2836 cannot
//! happen). A `HEAD` is looked up under `GET` (RFC 9110 9.3.2: the same header
//! section). Answers that vary add the generation of the URI's variants and the
//! request's values of each `Vary` header.

use http::{HeaderMap, HeaderName, Method};

/// The parts of a request the key is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primary {
    /// The key itself: `GET http://host/path?query`.
    pub key: String,
    /// Lower-case host (with its port, when the client sent one).
    pub host: String,
    pub path: String,
}

/// The primary key of a request; `None` without a host (nothing to key on safely).
pub fn primary(
    method: &Method,
    tls: bool,
    host: Option<&str>,
    path: &str,
    query: Option<&str>,
) -> Option<Primary> {
    let host = host.map(str::trim).filter(|h| !h.is_empty())?;
    let host = host.to_ascii_lowercase();
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let scheme = if tls { "https" } else { "http" };
    let mut key = format!("{method} {scheme}://{host}{path}");
    if let Some(q) = query {
        key.push('?');
        key.push_str(q);
    }
    Some(Primary {
        key,
        host,
        path: path.to_string(),
    })
}

/// The host of a request: `Host`, else the URI's authority (HTTP/2).
pub fn host_of(headers: &HeaderMap, uri: &http::Uri) -> Option<String> {
    headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
}

/// The key of one variant: the primary key, the generation, then `name=values` for
/// each `Vary` name (every field line of the name, joined by `,`; bytes escaped, so
/// no two values share a key).
pub fn variant(primary: &str, generation: u64, names: &[HeaderName], req: &HeaderMap) -> String {
    let mut key = format!("{primary}\n#{generation}");
    for name in names {
        key.push('\n');
        key.push_str(name.as_str());
        key.push('=');
        for (i, v) in req.get_all(name).iter().enumerate() {
            if i > 0 {
                key.push(',');
            }
            key.extend(v.as_bytes().escape_ascii().map(char::from));
        }
    }
    key
}

/// The `Vary` names of an answer, lower-case, in order, without repeats.
pub fn vary_names(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = Vec::new();
    for v in headers.get_all(http::header::VARY) {
        let Ok(s) = v.to_str() else { continue };
        for t in s.split(',') {
            if let Ok(n) = HeaderName::from_bytes(t.trim().as_bytes()) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::HeaderValue;

    #[test]
    fn host_and_method_are_in_the_key() {
        let a = primary(&Method::GET, false, Some("A.example"), "/x", Some("q=1")).unwrap();
        let b = primary(&Method::GET, false, Some("b.example"), "/x", Some("q=1")).unwrap();
        assert_eq!(a.key, "GET http://a.example/x?q=1");
        assert_ne!(a.key, b.key);
        let head = primary(&Method::HEAD, false, Some("a.example"), "/x", Some("q=1")).unwrap();
        assert_eq!(head.key, a.key, "HEAD is answered from GET");
        let tls = primary(&Method::GET, true, Some("a.example"), "/x", Some("q=1")).unwrap();
        assert_ne!(tls.key, a.key);
        assert!(primary(&Method::GET, false, None, "/x", None).is_none());
    }

    #[test]
    fn variants_differ_by_header_values() {
        let names = vary_names(&{
            let mut h = HeaderMap::new();
            h.append(
                "vary",
                HeaderValue::from_static("Accept-Language, accept-language"),
            );
            h.append("vary", HeaderValue::from_static("X-Tenant"));
            h
        });
        assert_eq!(names.len(), 2);
        let req = |lang: &str| {
            let mut h = HeaderMap::new();
            h.insert("accept-language", HeaderValue::from_str(lang).unwrap());
            h
        };
        let en = variant("GET http://h/", 1, &names, &req("en"));
        let fr = variant("GET http://h/", 1, &names, &req("fr"));
        assert_ne!(en, fr);
        assert_eq!(en, variant("GET http://h/", 1, &names, &req("en")));
        assert_ne!(en, variant("GET http://h/", 2, &names, &req("en")));
    }
}
