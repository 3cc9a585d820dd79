//! Configuration of api-enrichment, from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HOST` | listen address | `127.0.0.1` |
//! | `PORT` | listen port | `8002` |
//! | `DATA_VALIDATION_STRICT` | refuse (422) unknown fields and empty text instead of warning | `false` |
//! | `EXTERNAL_API_URL` | `http://` URL of the external enrichment source; unset = skipped | unset |
//! | `EXTERNAL_API_TIMEOUT` | seconds (fractions allowed) allowed to the external source | `5` |
//! | `ENRICHMENT_KEYWORDS` | keywords returned per document | `10` |
//! | `ENRICHMENT_WORKERS` | threads running the local analyses, shared by all requests (see [`crate::workers`]) | the number of CPUs |
//! | `REDIS_URL` | Redis result cache keyed by content hash (see [`crate::cache`]); fail-open; `rediss://` for TLS | unset: no cache |
//! | `REDIS_CA_FILE`, `REDIS_CERT_FILE`, `REDIS_KEY_FILE` | with `rediss://`: CA bundle, client certificate and key (crate `redis-connect`) | unset |
//! | `CACHE_TTL_SECONDS` | lifetime of cached results in Redis; `0` turns the cache off | `3600` |
//! | `BODY_LIMIT_BYTES` | largest accepted request body | `1048576` |
//! | `LOG_LEVEL` | log filter | `info` |

use std::time::Duration;

use crate::env::{self, ConfigError};

/// Default listen port.
pub const DEFAULT_PORT: u16 = 8002;

/// Settings of the service; [`Config::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listen host (`HOST`).
    pub host: String,
    /// Listen port (`PORT`).
    pub port: u16,
    /// Strict validation (`DATA_VALIDATION_STRICT`).
    pub strict: bool,
    /// External source URL (`EXTERNAL_API_URL`).
    pub external_url: Option<String>,
    /// External source timeout (`EXTERNAL_API_TIMEOUT`).
    pub external_timeout: Duration,
    /// Keywords per document (`ENRICHMENT_KEYWORDS`).
    pub keyword_limit: usize,
    /// Request body limit in bytes (`BODY_LIMIT_BYTES`).
    pub body_limit: usize,
    /// Analysis threads (`ENRICHMENT_WORKERS`, at least 1).
    pub workers: usize,
    /// Redis cache URL (`REDIS_URL`); `None` = no cache.
    pub redis_url: Option<String>,
    /// Cached results' lifetime (`CACHE_TTL_SECONDS`); zero = no cache.
    pub cache_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            strict: false,
            external_url: None,
            external_timeout: Duration::from_secs(5),
            keyword_limit: 10,
            body_limit: crate::http::DEFAULT_BODY_LIMIT,
            workers: crate::workers::default_threads(),
            redis_url: None,
            cache_ttl: Duration::from_secs(3600),
        }
    }
}

impl Config {
    /// Reads the variables of the table above; unset ones keep their default.
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let workers = env::parse_or("ENRICHMENT_WORKERS", d.workers)?;
        if workers == 0 {
            return Err(ConfigError {
                var: "ENRICHMENT_WORKERS".to_owned(),
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Self {
            host: env::string("HOST").unwrap_or(d.host),
            port: env::parse_or("PORT", d.port)?,
            strict: env::bool_or("DATA_VALIDATION_STRICT", d.strict)?,
            external_url: env::string("EXTERNAL_API_URL"),
            external_timeout: env::seconds_or("EXTERNAL_API_TIMEOUT", d.external_timeout)?,
            keyword_limit: env::parse_or("ENRICHMENT_KEYWORDS", d.keyword_limit)?,
            body_limit: env::parse_or("BODY_LIMIT_BYTES", d.body_limit)?,
            workers,
            redis_url: env::string("REDIS_URL"),
            cache_ttl: Duration::from_secs(env::parse_or(
                "CACHE_TTL_SECONDS",
                d.cache_ttl.as_secs(),
            )?),
        })
    }
}
