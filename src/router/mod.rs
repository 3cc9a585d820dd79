//! Routing: a segment trie compiled from the route table. Lookup walks the normalised
//! path once (no per-route scan), gathers the routes whose path matches, and picks the
//! most specific one whose host, headers and method also match; ties go to file order.

mod encoded;
mod rewrite;

pub use crate::paths::{
    normalize_path, template_params, BadPath, PathPattern, PatternError, Segment,
};
pub use encoded::{encoded_in, refusal_message, EncodedSet};
pub use rewrite::{Rewrite, RewriteError};

use crate::config::MatchConfig;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use smallvec::SmallVec;
use std::collections::HashMap;

/// Captured path parameter values, in pattern order, borrowed from the request path.
pub type Params<'p> = SmallVec<[&'p str; 4]>;

/// The outcome of a lookup.
#[derive(Debug, PartialEq, Eq)]
pub enum Routed<'p> {
    /// Index of the route in the table, and its captured parameters.
    Found { route: usize, params: Params<'p> },
    /// No route has this path (with this host and headers).
    NotFound,
    /// Routes have this path but not this method; the `Allow` header value.
    MethodNotAllowed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

impl HostMatch {
    fn matches(&self, host: Option<&str>) -> bool {
        match (self, host) {
            (HostMatch::Any, _) => true,
            (HostMatch::Exact(h), Some(x)) => h.eq_ignore_ascii_case(x),
            (HostMatch::Suffix(s), Some(x)) => {
                x.len() > s.len() && x[x.len() - s.len()..].eq_ignore_ascii_case(s)
            }
            _ => false,
        }
    }
    fn rank(&self) -> u8 {
        match self {
            HostMatch::Any => 0,
            HostMatch::Suffix(_) => 1,
            HostMatch::Exact(_) => 2,
        }
    }
}

/// Everything but the path that a route checks, plus its rank.
#[derive(Debug)]
struct Entry {
    host: HostMatch,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Empty = any method.
    methods: Vec<Method>,
    /// Larger is more specific.
    rank: (u8, usize, usize, u8, usize, bool),
    /// The route's `path`, parsed.
    pattern: Option<PathPattern>,
}

#[derive(Debug, Default)]
struct Node {
    statics: HashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    exact: Vec<usize>,
    exact_slash: Vec<usize>,
    prefix: Vec<usize>,
}

/// Why a route's `match` does not compile.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error("header `{name}`: {source}")]
    HeaderName {
        name: String,
        #[source]
        source: http::header::InvalidHeaderName,
    },
    #[error("header `{name}` value: {source}")]
    HeaderValue {
        name: String,
        #[source]
        source: http::header::InvalidHeaderValue,
    },
    #[error("method `{method}`: {source}")]
    Method {
        method: String,
        #[source]
        source: http::method::InvalidMethod,
    },
    #[error(transparent)]
    Path(#[from] PatternError),
    #[error("a route needs `path` or `path_prefix`")]
    NoPath,
}

/// A matcher that does not compile, with the index of its route in the table.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct BuildError {
    pub route: usize,
    #[source]
    pub source: MatchError,
}

/// The compiled matcher for one route table.
#[derive(Debug, Default)]
pub struct Router {
    root: Node,
    /// The same trie with every static segment in lower case, for
    /// [`Router::lookup_folded`].
    folded: Node,
    entries: Vec<Entry>,
}

impl Router {
    /// Compiles the matchers; `routes[i]` is route index `i`. Matchers must have been
    /// validated (a bad one is an error here too, never a panic).
    pub fn build<'a>(
        routes: impl IntoIterator<Item = &'a MatchConfig>,
    ) -> Result<Self, BuildError> {
        let mut r = Router::default();
        for (idx, m) in routes.into_iter().enumerate() {
            r.add(idx, m)
                .map_err(|source| BuildError { route: idx, source })?;
        }
        Ok(r)
    }

    fn add(&mut self, idx: usize, m: &MatchConfig) -> Result<(), MatchError> {
        let host = match m.host.as_deref() {
            None => HostMatch::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
                None => HostMatch::Exact(h.to_ascii_lowercase()),
            },
        };
        let mut headers = Vec::new();
        for (k, v) in &m.headers {
            let name =
                HeaderName::from_bytes(k.as_bytes()).map_err(|source| MatchError::HeaderName {
                    name: k.clone(),
                    source,
                })?;
            let value = HeaderValue::from_str(v).map_err(|source| MatchError::HeaderValue {
                name: k.clone(),
                source,
            })?;
            headers.push((name, value));
        }
        let mut methods = Vec::new();
        for meth in &m.methods {
            methods.push(Method::from_bytes(meth.as_bytes()).map_err(|source| {
                MatchError::Method {
                    method: meth.clone(),
                    source,
                }
            })?);
        }
        let mut pattern = None;
        let (kind, statics, total) = if let Some(p) = &m.path {
            let pat = pattern.insert(PathPattern::parse(p)?);
            let statics = pat
                .segments
                .iter()
                .filter(|s| matches!(s, Segment::Static(_)))
                .count();
            for (root, fold) in [(&mut self.root, false), (&mut self.folded, true)] {
                let mut node = root;
                for seg in &pat.segments {
                    node = match seg {
                        Segment::Static(s) => node.statics.entry(folded(s, fold)).or_default(),
                        Segment::Param(_) => node.param.get_or_insert_with(Default::default),
                    };
                }
                if pat.trailing_slash {
                    node.exact_slash.push(idx);
                } else {
                    node.exact.push(idx);
                }
            }
            let kind = if statics == pat.segments.len() { 3 } else { 2 };
            (kind, statics, pat.segments.len())
        } else if let Some(prefix) = &m.path_prefix {
            let mut n = 0;
            for (root, fold) in [(&mut self.root, false), (&mut self.folded, true)] {
                let mut node = root;
                n = 0;
                for seg in prefix.split('/').filter(|s| !s.is_empty()) {
                    node = node.statics.entry(folded(seg, fold)).or_default();
                    n += 1;
                }
                node.prefix.push(idx);
            }
            (1, n, n)
        } else {
            return Err(MatchError::NoPath);
        };
        let rank = (
            kind,
            statics,
            total,
            host.rank(),
            headers.len(),
            !methods.is_empty(),
        );
        self.entries.push(Entry {
            host,
            headers,
            methods,
            rank,
            pattern,
        });
        Ok(())
    }

    /// The parsed `path` of route `idx` (none for a `path_prefix` route).
    pub fn pattern(&self, idx: usize) -> Option<&PathPattern> {
        self.entries.get(idx)?.pattern.as_ref()
    }

    /// Finds the route for a request. `path` must be normalised; `host` is lower- or
    /// mixed-case without port.
    pub fn lookup<'p>(
        &self,
        method: &Method,
        host: Option<&str>,
        headers: &HeaderMap,
        path: &'p str,
    ) -> Routed<'p> {
        self.lookup_in(&self.root, method, host, headers, path)
    }

    /// The route a case-insensitive upstream (Express, IIS, Spring's options) would
    /// give `path_lower` (the normalised path in lower case): static segments are
    /// compared in lower case. Used to refuse a path that reaches another route that
    /// way (`/api/v1/Admin` under an open `/api/v1` beside a guarded `/api/v1/admin`).
    pub fn lookup_folded(
        &self,
        method: &Method,
        host: Option<&str>,
        headers: &HeaderMap,
        path_lower: &str,
    ) -> Option<usize> {
        match self.lookup_in(&self.folded, method, host, headers, path_lower) {
            Routed::Found { route, .. } => Some(route),
            _ => None,
        }
    }

    fn lookup_in<'p>(
        &self,
        root: &Node,
        method: &Method,
        host: Option<&str>,
        headers: &HeaderMap,
        path: &'p str,
    ) -> Routed<'p> {
        let trailing = path.len() > 1 && path.ends_with('/');
        let mut segs: SmallVec<[&'p str; 16]> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segs.len() > 64 {
            segs.truncate(64);
        }
        let mut cands: SmallVec<[(usize, Params<'p>); 8]> = SmallVec::new();
        let mut captured = Params::new();
        walk(root, &segs, trailing, &mut captured, &mut cands);

        let mut best: Option<(usize, Params<'p>)> = None;
        let mut path_only = false;
        for (idx, params) in cands {
            let Some(e) = self.entries.get(idx) else {
                continue;
            };
            if !e.host.matches(host) || !e.headers.iter().all(|(k, v)| headers.get(k) == Some(v)) {
                continue;
            }
            if !e.methods.is_empty() && !e.methods.contains(method) {
                path_only = true;
                continue;
            }
            let better = match &best {
                None => true,
                Some((b, _)) => self.entries.get(*b).is_some_and(|be| {
                    (e.rank, std::cmp::Reverse(idx)) > (be.rank, std::cmp::Reverse(*b))
                }),
            };
            if better {
                best = Some((idx, params));
            }
        }
        match best {
            Some((route, params)) => Routed::Found { route, params },
            None if path_only => {
                Routed::MethodNotAllowed(self.allow(host, headers, &segs, trailing))
            }
            None => Routed::NotFound,
        }
    }

    fn allow(
        &self,
        host: Option<&str>,
        headers: &HeaderMap,
        segs: &[&str],
        trailing: bool,
    ) -> String {
        let mut cands: SmallVec<[(usize, Params<'_>); 8]> = SmallVec::new();
        walk(&self.root, segs, trailing, &mut Params::new(), &mut cands);
        let mut allow: Vec<&str> = Vec::new();
        for (idx, _) in cands {
            let Some(e) = self.entries.get(idx) else {
                continue;
            };
            if e.host.matches(host) && e.headers.iter().all(|(k, v)| headers.get(k) == Some(v)) {
                for m in &e.methods {
                    if !allow.contains(&m.as_str()) {
                        allow.push(m.as_str());
                    }
                }
            }
        }
        allow.sort_unstable();
        allow.join(", ")
    }
}

/// A static segment as stored in a trie: as written, or in lower case.
fn folded(s: &str, fold: bool) -> Box<str> {
    if fold {
        s.to_ascii_lowercase().into()
    } else {
        s.into()
    }
}

fn walk<'p>(
    node: &Node,
    segs: &[&'p str],
    trailing: bool,
    captured: &mut Params<'p>,
    out: &mut SmallVec<[(usize, Params<'p>); 8]>,
) {
    for r in &node.prefix {
        out.push((*r, Params::new()));
    }
    let Some((first, rest)) = segs.split_first() else {
        let exact = if trailing {
            &node.exact_slash
        } else {
            &node.exact
        };
        for r in exact {
            out.push((*r, captured.clone()));
        }
        return;
    };
    if let Some(child) = node.statics.get(*first) {
        walk(child, rest, trailing, captured, out);
    }
    if let Some(child) = &node.param {
        captured.push(first);
        walk(child, rest, trailing, captured, out);
        captured.pop();
    }
}

/// The request host without port, from `Host` or the HTTP/2 authority.
pub fn request_host<'a>(headers: &'a HeaderMap, uri: &'a http::Uri) -> Option<&'a str> {
    let raw = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.host())?;
    if raw.starts_with('[') {
        return raw.find(']').map(|i| &raw[..=i]);
    }
    Some(raw.rsplit_once(':').map_or(raw, |(h, _)| h))
}

#[cfg(test)]
mod tests;
