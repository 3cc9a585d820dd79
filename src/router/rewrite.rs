//! The path sent upstream, planned from the route's `rewrite`.

use super::{template_params, Params, PathPattern};
use crate::config::RewriteConfig;

/// Why a `rewrite` does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The template names a parameter the route's path does not have.
    #[error("`{{{0}}}` is not a parameter of `match.path`")]
    UnknownParam(String),
}

/// A compiled `rewrite`.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    strip_prefix: Option<String>,
    add_prefix: Option<String>,
    /// Template pieces: literal text and parameter indexes (into the match's params).
    template: Option<Vec<Piece>>,
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    Param(usize),
}

impl Rewrite {
    /// `pattern` is the route's `match.path`, whose parameters a template may use.
    pub fn compile(
        cfg: Option<&RewriteConfig>,
        pattern: Option<&PathPattern>,
    ) -> Result<Self, RewriteError> {
        let Some(cfg) = cfg else {
            return Ok(Self::default());
        };
        let template = match &cfg.path {
            None => None,
            Some(tpl) => {
                let names: Vec<&str> = pattern.map(|p| p.params().collect()).unwrap_or_default();
                let mut pieces = Vec::new();
                let mut rest = tpl.as_str();
                for name in template_params(tpl) {
                    let marker = format!("{{{name}}}");
                    let Some(at) = rest.find(&marker) else { break };
                    if at > 0 {
                        pieces.push(Piece::Lit(rest[..at].to_string()));
                    }
                    let idx = names
                        .iter()
                        .position(|n| *n == name)
                        .ok_or_else(|| RewriteError::UnknownParam(name.to_string()))?;
                    pieces.push(Piece::Param(idx));
                    rest = &rest[at + marker.len()..];
                }
                if !rest.is_empty() {
                    pieces.push(Piece::Lit(rest.to_string()));
                }
                Some(pieces)
            }
        };
        Ok(Self {
            strip_prefix: cfg
                .strip_prefix
                .clone()
                .map(|s| s.trim_end_matches('/').to_string()),
            add_prefix: cfg
                .add_prefix
                .clone()
                .map(|s| s.trim_end_matches('/').to_string()),
            template,
        })
    }

    /// Whether the path changes at all (the common bare route does not).
    pub fn is_identity(&self) -> bool {
        self.strip_prefix.is_none() && self.add_prefix.is_none() && self.template.is_none()
    }

    /// The upstream path and query for a normalised `path`.
    pub fn apply(&self, path: &str, params: &Params<'_>, query: Option<&str>) -> String {
        let mut out = String::with_capacity(path.len() + 16);
        if let Some(t) = &self.template {
            for p in t {
                match p {
                    Piece::Lit(s) => out.push_str(s),
                    Piece::Param(i) => out.push_str(params.get(*i).copied().unwrap_or_default()),
                }
            }
        } else {
            let mut rest = path;
            if let Some(strip) = &self.strip_prefix {
                if let Some(r) = path.strip_prefix(strip.as_str()) {
                    if r.is_empty() || r.starts_with('/') {
                        rest = r;
                    }
                }
            }
            if let Some(add) = &self.add_prefix {
                out.push_str(add);
            }
            if rest.is_empty() {
                out.push('/');
            } else {
                out.push_str(rest);
            }
        }
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}
