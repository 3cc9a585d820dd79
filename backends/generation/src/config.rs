//! Configuration of api-generation, from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HOST` | listen address | `127.0.0.1` |
//! | `PORT` | listen port | `8001` |
//! | `GENERATION_MODEL_PATH` | UTF-8 corpus text file the model is trained from at start-up | the embedded corpus (`corpus/aesop.txt`) |
//! | `CACHE_TTL_SECONDS` | lifetime of cached results; `0` disables the cache | `3600` |
//! | `GENERATION_CACHE_CAPACITY` | most results kept in the cache | `10000` |
//! | `MAX_CONCURRENT_REQUESTS` | generations running at once | `100` |
//! | `MAX_QUEUE_SIZE` | requests allowed to wait for a slot; more get 503 | `1000` |
//! | `BODY_LIMIT_BYTES` | largest accepted request body | `1048576` |
//! | `LOG_LEVEL` | log filter | `info` |

use std::path::PathBuf;
use std::time::Duration;

use crate::env::{self, ConfigError};

/// Default listen port.
pub const DEFAULT_PORT: u16 = 8001;

/// Settings of the service; [`Config::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listen host (`HOST`).
    pub host: String,
    /// Listen port (`PORT`).
    pub port: u16,
    /// Corpus to train from (`GENERATION_MODEL_PATH`); `None` = embedded corpus.
    pub model_path: Option<PathBuf>,
    /// Cache entry lifetime (`CACHE_TTL_SECONDS`); zero disables the cache.
    pub cache_ttl: Duration,
    /// Cache size bound (`GENERATION_CACHE_CAPACITY`).
    pub cache_capacity: usize,
    /// Concurrent generations (`MAX_CONCURRENT_REQUESTS`, at least 1).
    pub max_concurrent: usize,
    /// Waiting requests allowed (`MAX_QUEUE_SIZE`).
    pub max_queue: usize,
    /// Request body limit in bytes (`BODY_LIMIT_BYTES`).
    pub body_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            model_path: None,
            cache_ttl: Duration::from_secs(3600),
            cache_capacity: 10_000,
            max_concurrent: 100,
            max_queue: 1000,
            body_limit: crate::http::DEFAULT_BODY_LIMIT,
        }
    }
}

impl Config {
    /// Reads the variables of the table above; unset ones keep their default.
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let max_concurrent = env::parse_or("MAX_CONCURRENT_REQUESTS", d.max_concurrent)?;
        if max_concurrent == 0 {
            return Err(ConfigError {
                var: "MAX_CONCURRENT_REQUESTS".to_owned(),
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Self {
            host: env::string("HOST").unwrap_or(d.host),
            port: env::parse_or("PORT", d.port)?,
            model_path: env::string("GENERATION_MODEL_PATH").map(PathBuf::from),
            cache_ttl: Duration::from_secs(env::parse_or(
                "CACHE_TTL_SECONDS",
                d.cache_ttl.as_secs(),
            )?),
            cache_capacity: env::parse_or("GENERATION_CACHE_CAPACITY", d.cache_capacity)?,
            max_concurrent,
            max_queue: env::parse_or("MAX_QUEUE_SIZE", d.max_queue)?,
            body_limit: env::parse_or("BODY_LIMIT_BYTES", d.body_limit)?,
        })
    }
}
