//! `jwt`: verifies a bearer JWT and sets the request's identity (consumer, roles,
//! scopes, forwarded claims). Missing or bad token → 401 with
//! `WWW-Authenticate: Bearer` (RFC 6750 `error="invalid_token"`); a valid token
//! without a required scope → 403 `error="insufficient_scope"`.
//!
//! ```yaml
//! - { name: jwt, secret_env: JWT_SECRET, algorithms: [HS256], scopes: [generate] }
//! - { name: jwt, jwks_url: "https://idp.example/.well-known/jwks.json", algorithms: [RS256], audience: api }
//! ```
//!
//! Dependencies: a JWKS URL is fetched in the background; when it is down the keys
//! already fetched keep working (fail-open on refresh); with none ever fetched (and no
//! other key) a request is refused with 503 (fail-closed).

mod claims;
mod jwks;
mod keys;
mod settings;
mod verify;

pub use settings::{Alg, JwtSettings};

use crate::auth::{deny, parse_duration, Reason};
use crate::{
    BuildCtx, CredentialKind, Decision, Factory, Flow, Plugin, PluginFailure, PluginMetrics,
    RequestCall, SettingsError,
};
use async_trait::async_trait;
use http::HeaderName;
use jsonwebtoken::{Algorithm, DecodingKey};
use keys::Key;
use pingora_http::RequestHeader;
use std::collections::HashMap;
use std::sync::Arc;
use verify::{Checked, Verifier};

/// The `jwt` plugin.
pub struct Jwt {
    verifier: Verifier,
    scopes: Vec<String>,
    roles_claim: String,
    consumer_claim: String,
    forward: Vec<(String, HeaderName)>,
    metrics: PluginMetrics,
    /// `gateway_auth_requests_total{method="jwt"}`, looked up once.
    requests: prometheus::IntCounter,
}

const CHALLENGE: &str = "Bearer realm=\"api\"";

fn invalid_token(message: &str) -> String {
    format!(
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{}\"",
        message.replace(['"', '\\'], "'")
    )
}

/// The bearer credential of `Authorization`, if any (`None`: absent; `Some("")`: the
/// header is there but not a bearer token).
fn bearer(req: &RequestHeader) -> Option<&str> {
    let v = req.headers.get(http::header::AUTHORIZATION)?;
    let v = v.to_str().unwrap_or("").trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    Some(if scheme.eq_ignore_ascii_case("bearer") {
        rest.trim()
    } else {
        ""
    })
}

#[async_trait]
impl Plugin for Jwt {
    fn sets_identity(&self) -> bool {
        true
    }

    async fn on_request(&self, call: &mut RequestCall<'_>) -> Decision {
        // client-sent copies of the identity headers never reach the upstream, in any
        // spelling (`X_User_Id` is `X-User-Id` to a WSGI server)
        crate::auth::strip_folded(call.req, self.forward.iter().map(|(_, h)| h));
        self.requests.inc();
        let token = match bearer(call.req) {
            None => {
                return Ok(Flow::Respond(deny(
                    &self.metrics,
                    Reason::Missing,
                    Some(CHALLENGE.into()),
                    "a bearer token is required",
                )))
            }
            Some("") => {
                let m = "the Authorization header is not a bearer token";
                return Ok(Flow::Respond(deny(
                    &self.metrics,
                    Reason::Malformed,
                    Some(invalid_token(m)),
                    m,
                )));
            }
            Some(t) => t,
        };
        let claims = match self.verifier.check(token).await {
            Checked::Valid(c) => c,
            Checked::Refused((reason, message)) => {
                return Ok(Flow::Respond(deny(
                    &self.metrics,
                    reason,
                    Some(invalid_token(&message)),
                    message,
                )))
            }
            Checked::Unavailable(m) => return Err(PluginFailure::unavailable("jwt", m)),
        };
        let identity = claims::identity(&claims, &self.consumer_claim, &self.roles_claim);
        let missing: Vec<&str> = self
            .scopes
            .iter()
            .filter(|s| !identity.has_scope(s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let needed = self.scopes.join(" ");
            let challenge = format!(
                "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"{}\"",
                needed.replace(['"', '\\'], "'")
            );
            let message = format!("missing scope: {}", missing.join(", "));
            let mut reply = deny(
                &self.metrics,
                Reason::InsufficientScope,
                Some(challenge),
                message,
            );
            reply = reply.with_details(serde_json::json!({ "missing_scopes": missing }));
            call.set_identity(identity);
            return Ok(Flow::Respond(reply));
        }
        let mut identity = identity;
        claims::forward(call.req, &claims, &mut identity, &self.forward);
        call.set_identity(identity);
        Ok(Flow::Continue)
    }
}

fn read(cx: &BuildCtx<'_>, field: &str, p: &str) -> Result<Vec<u8>, SettingsError> {
    let path = cx.file(p);
    std::fs::read(&path)
        .map_err(|e| SettingsError::at(field, format!("cannot read {}: {e}", path.display())))
}

impl Factory for Jwt {
    const NAME: &'static str = "jwt";
    const SUMMARY: &'static str =
        "Verify a bearer JWT (HMAC secret, PEM key, JWKS file or URL); 401/403 otherwise";
    type Settings = JwtSettings;

    fn api_doc(s: &Self::Settings, _base_dir: &std::path::Path) -> crate::ApiDoc {
        let (key, desc) = crate::bearer_with_scopes(
            "bearerJwt",
            "A JWT in `Authorization: Bearer <token>`; `exp` is required.",
            &s.scopes,
        );
        let scheme = serde_json::json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": desc });
        crate::ApiDoc::auth(vec![(key, scheme)]).with(crate::DEPENDENCY_ANSWER)
    }

    fn build(s: JwtSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        Ok(Arc::new(Jwt::new(s, cx)?))
    }
}

impl Jwt {
    /// Builds the plugin from its settings (see [`Factory::build`]).
    pub fn new(s: JwtSettings, cx: &BuildCtx<'_>) -> Result<Jwt, SettingsError> {
        let leeway = parse_duration("leeway", &s.leeway)?.as_secs();
        let refresh = parse_duration("jwks_refresh", &s.jwks_refresh)?;
        let refetch_interval = parse_duration("jwks_refetch_interval", &s.jwks_refetch_interval)?;
        let accepted: Option<Vec<Algorithm>> = s
            .algorithms
            .as_ref()
            .map(|l| l.iter().map(|a| a.algorithm()).collect());
        if accepted.as_ref().is_some_and(|a| a.is_empty()) {
            return Err(SettingsError::at(
                "algorithms",
                "give at least one algorithm",
            ));
        }
        let mut fixed = Vec::new();
        let mut check_key = |k: Key, field: &str| {
            let family = k.key.family();
            let all = family.algorithms();
            if !all.iter().any(|a| k.allows(*a, accepted.as_deref())) {
                return Err(SettingsError::at(
                    field,
                    format!(
                        "no algorithm in `algorithms` fits this key (a {:?} key)",
                        k.key.family()
                    ),
                ));
            }
            fixed.push(k);
            Ok(())
        };
        if let Some(var) = &s.secret_env {
            let secret = cx.secret("secret_env", var)?;
            check_key(
                Key {
                    kid: None,
                    key: DecodingKey::from_secret(secret.as_bytes()),
                    alg: None,
                },
                "secret_env",
            )?;
        }
        if let Some(p) = &s.public_key_file {
            let key = Key::from_pem(&read(cx, "public_key_file", p)?)
                .map_err(|e| SettingsError::at("public_key_file", format!("{p}: {e}")))?;
            check_key(key, "public_key_file")?;
        }
        if let Some(p) = &s.jwks_file {
            let (keys, skipped) = keys::parse_jwks(&read(cx, "jwks_file", p)?)
                .map_err(|e| SettingsError::at("jwks_file", format!("{p}: {e}")))?;
            if let Some(first) = skipped.first() {
                return Err(SettingsError::at("jwks_file", format!("{p}: {first}")));
            }
            for k in keys {
                check_key(k, "jwks_file")?;
            }
        }
        let remote = match &s.jwks_url {
            None => None,
            Some(url) => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| SettingsError::at("jwks_url", format!("`{url}`: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(SettingsError::at("jwks_url", "use an http(s) URL"));
                }
                if cx.shared.is_dry() {
                    None
                } else {
                    let metrics = cx.shared.metrics.clone();
                    let cache = cx.shared.state(url, || jwks::JwksCache::new(url, metrics));
                    cache.start(refresh);
                    Some(cache)
                }
            }
        };
        if fixed.is_empty() && s.jwks_url.is_none() {
            return Err(SettingsError::whole(
                "give a key: `secret_env`, `public_key_file`, `jwks_file` or `jwks_url`",
            ));
        }
        let issuer = s.issuer.map(|i| i.into_vec());
        let audience = s.audience.map(|a| a.into_vec());
        let algs: Vec<Algorithm> = match &accepted {
            Some(a) => a.clone(),
            None => [
                jsonwebtoken::AlgorithmFamily::Hmac,
                jsonwebtoken::AlgorithmFamily::Rsa,
                jsonwebtoken::AlgorithmFamily::Ec,
                jsonwebtoken::AlgorithmFamily::Ed,
            ]
            .iter()
            .flat_map(|f| f.algorithms().iter().copied())
            .collect(),
        };
        let validations: HashMap<Algorithm, jsonwebtoken::Validation> = algs
            .iter()
            .map(|a| {
                (
                    *a,
                    verify::validation(&[*a], leeway, issuer.as_deref(), audience.as_deref()),
                )
            })
            .collect();
        let mut forward = Vec::with_capacity(s.forward_claims.len());
        for (claim, header) in &s.forward_claims {
            let h = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                SettingsError::at(
                    format!("forward_claims.{claim}"),
                    format!("`{header}` is not a valid header name"),
                )
            })?;
            forward.push((claim.clone(), h));
        }
        if s.max_token_length < 64 {
            return Err(SettingsError::at("max_token_length", "at least 64 bytes"));
        }
        let single = match (fixed.as_slice(), &remote, s.jwks_url.is_some()) {
            ([k], None, false) => {
                let algs: Vec<Algorithm> = k
                    .key
                    .family()
                    .algorithms()
                    .iter()
                    .copied()
                    .filter(|a| k.allows(*a, accepted.as_deref()))
                    .collect();
                Some(verify::validation(
                    &algs,
                    leeway,
                    issuer.as_deref(),
                    audience.as_deref(),
                ))
            }
            _ => None,
        };
        Ok(Jwt {
            verifier: Verifier {
                single,
                fixed,
                remote,
                refetch_interval,
                accepted,
                validations,
                leeway,
                max_len: s.max_token_length,
            },
            scopes: s.scopes,
            roles_claim: s.roles_claim,
            consumer_claim: s.consumer_claim,
            forward,
            metrics: cx.shared.metrics.clone(),
            requests: cx
                .shared
                .metrics
                .auth_requests
                .with_label_values(&[CredentialKind::Jwt.as_str()]),
        })
    }
}

#[cfg(test)]
mod tests;
