//! Environment overrides from the seed's Deployment: `API_GENERATION_URL` and
//! `API_ENRICHMENT_URL` replace the targets of the `generation` and `enrichment`
//! upstreams (when the file defines them).

use super::{Config, Errors, TargetConfig};

/// (variable, upstream name) pairs that override upstream targets.
pub const UPSTREAM_URL_OVERRIDES: [(&str, &str); 2] = [
    ("API_GENERATION_URL", "generation"),
    ("API_ENRICHMENT_URL", "enrichment"),
];

/// Replaces the targets of overridden upstreams with the single address of the URL.
/// `https://` URLs also turn on TLS towards the target. An unusable URL is an error.
pub(crate) fn apply_env_overrides(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) {
    for (var, name) in UPSTREAM_URL_OVERRIDES {
        let Some(url) = env(var).filter(|u| !u.trim().is_empty()) else {
            continue;
        };
        let Some(up) = config.upstreams.get_mut(name) else {
            continue;
        };
        match parse_target_url(&url) {
            Ok((addr, tls)) => {
                up.targets = vec![TargetConfig { addr, weight: 1 }];
                up.discovery = None;
                up.tls.set_enabled(tls);
            }
            Err(e) => errs.push(
                format!("upstreams.{name}"),
                format!("environment variable {var}={url:?}: {e}"),
            ),
        }
    }
}

/// Why a target URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetUrlError {
    #[error("not a URL: {0}")]
    NotUrl(#[source] http::uri::InvalidUri),
    #[error("unsupported scheme `{0}` (use http or https)")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
}

/// `http://host:port/...`, `https://host`, or `host:port` → (`host:port`, tls).
pub fn parse_target_url(url: &str) -> Result<(String, bool), TargetUrlError> {
    let uri: http::Uri = url.trim().parse().map_err(TargetUrlError::NotUrl)?;
    let tls = match uri.scheme_str() {
        None | Some("http") => false,
        Some("https") => true,
        Some(other) => return Err(TargetUrlError::Scheme(other.to_string())),
    };
    let auth = uri.authority().ok_or(TargetUrlError::NoHost)?;
    let port = auth.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((format!("{}:{port}", auth.host()), tls))
}
