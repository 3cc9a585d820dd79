//! Configuration of api-generation, from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `HOST` | listen address | `127.0.0.1` |
//! | `PORT` | listen port | `8001` |
//! | `GENERATION_MODEL_PATH` | model file written by `api-generation train` (see [`crate::model::file`]), loaded at start-up | unset: a model trained at start-up from the embedded corpus (`corpus/aesop.txt`) |
//! | `WORKER_PROCESSES` | generation threads (see [`crate::pool`]) | the number of CPUs |
//! | `CACHE_TTL_SECONDS` | lifetime of cached results; `0` disables the cache; at most 315360000 (10 years) | `3600` |
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
    /// Model file to load (`GENERATION_MODEL_PATH`); `None` = train from the
    /// embedded corpus.
    pub model_path: Option<PathBuf>,
    /// Generation threads (`WORKER_PROCESSES`, at least 1).
    pub workers: usize,
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
    /// Pause between the events of a token stream (`GENERATION_TOKEN_DELAY_MS`, default
    /// 0): a demo and test knob that makes pacing visible.
    pub token_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
            model_path: None,
            workers: default_workers(),
            cache_ttl: Duration::from_secs(3600),
            cache_capacity: 10_000,
            max_concurrent: 100,
            max_queue: 1000,
            body_limit: crate::http::DEFAULT_BODY_LIMIT,
            token_delay: Duration::ZERO,
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
        let workers = env::parse_or("WORKER_PROCESSES", d.workers)?;
        if workers == 0 {
            return Err(ConfigError {
                var: "WORKER_PROCESSES".to_owned(),
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        let ttl: u64 = env::parse_or("CACHE_TTL_SECONDS", d.cache_ttl.as_secs())?;
        if ttl > crate::cache::MAX_TTL.as_secs() {
            return Err(ConfigError {
                var: "CACHE_TTL_SECONDS".to_owned(),
                value: ttl.to_string(),
                reason: format!("must be at most {}", crate::cache::MAX_TTL.as_secs()),
            });
        }
        Ok(Self {
            host: env::string("HOST").unwrap_or(d.host),
            port: env::parse_or("PORT", d.port)?,
            model_path: env::string("GENERATION_MODEL_PATH").map(PathBuf::from),
            workers,
            cache_ttl: Duration::from_secs(ttl),
            cache_capacity: env::parse_or("GENERATION_CACHE_CAPACITY", d.cache_capacity)?,
            max_concurrent,
            max_queue: env::parse_or("MAX_QUEUE_SIZE", d.max_queue)?,
            body_limit: env::parse_or("BODY_LIMIT_BYTES", d.body_limit)?,
            token_delay: Duration::from_millis(env::parse_or("GENERATION_TOKEN_DELAY_MS", 0u64)?),
        })
    }
}

/// Default of `WORKER_PROCESSES`: the number of CPUs the process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
