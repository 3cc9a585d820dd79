//! Where refresh tokens live: Redis when `REDIS_URL` is set (shared by every gateway
//! instance), else process memory. Either is kept in [`crate::Shared`], so tokens
//! survive reloads. Tokens are stored under the SHA-256 of their value, never the
//! value itself; taking one removes it (single use).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// What a refresh token stands for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub consumer: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// Unix seconds after which it is refused.
    pub expires: u64,
}

/// The Redis store did not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("command timed out")]
    CommandTimeout,
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
}

/// A refresh-token store.
pub enum Store {
    Memory(MemoryStore),
    Redis(Box<RedisStore>),
}

impl Store {
    /// Keeps `rec` under `hash` until it expires.
    pub async fn put(&self, hash: &str, rec: &Record, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.put(hash, rec);
                Ok(())
            }
            Store::Redis(r) => r.put(hash, rec, ttl).await,
        }
    }

    /// Removes and returns the record under `hash` (single use).
    pub async fn take(&self, hash: &str) -> Result<Option<Record>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.take(hash)),
            Store::Redis(r) => r.take(hash).await,
        }
    }
}

/// Refresh tokens in memory; expired ones are dropped as new ones come.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Record>>,
}

/// Above this many tokens, expired ones are swept on insert.
const SWEEP_AT: usize = 10_000;

impl MemoryStore {
    fn put(&self, hash: &str, rec: &Record) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            let now = super::unix_now();
            map.retain(|_, r| r.expires > now);
        }
        map.insert(hash.to_string(), rec.clone());
    }

    fn take(&self, hash: &str) -> Option<Record> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(hash)
    }
}

/// Refresh tokens in Redis (`SET .. EX`, `GETDEL`: Redis 6.2 or later).
pub struct RedisStore {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

const PREFIX: &str = "gateway:refresh:";
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisStore {
    /// Parses the URL and reads the TLS files of a `rediss://` URL; connects on first
    /// use.
    pub fn new(
        url: &str,
        tls: &redis_connect::TlsFiles,
    ) -> Result<Self, redis_connect::ConnectError> {
        let client = redis_connect::client(url, tls)?;
        Ok(Self {
            client,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    async fn conn(&self) -> Result<redis::aio::MultiplexedConnection, StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(
            REDIS_TIMEOUT,
            self.client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| StoreError::ConnectTimeout)??;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        let mut c = self.conn().await?;
        match tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<T>(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                *self.conn.lock().await = None;
                Err(e.into())
            }
            Err(_) => {
                *self.conn.lock().await = None;
                Err(StoreError::CommandTimeout)
            }
        }
    }

    async fn put(&self, hash: &str, rec: &Record, ttl: Duration) -> Result<(), StoreError> {
        let v = serde_json::to_string(rec)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{PREFIX}{hash}"))
            .arg(v)
            .arg("EX")
            .arg(ttl.as_secs().max(1));
        self.run::<()>(cmd).await
    }

    async fn take(&self, hash: &str) -> Result<Option<Record>, StoreError> {
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(format!("{PREFIX}{hash}"));
        let v: Option<String> = self.run(cmd).await?;
        Ok(v.and_then(|s| serde_json::from_str(&s).ok()))
    }
}
