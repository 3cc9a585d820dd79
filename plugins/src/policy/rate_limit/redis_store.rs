//! The Redis store: one atomic Lua script per decision (one round trip), keys with a
//! TTL, Redis's own clock, so every gateway replica shares the same buckets. The
//! connection (a `ConnectionManager`, which reconnects by itself) is made on the first
//! request of a serving gateway, kept in `Shared` by URL, and every call is bounded by
//! a short timeout. After a failure the store is skipped for a second (the caller falls
//! back), then one request probes it again; the outage is logged once, when it starts,
//! and its end once.

use super::gcra::Gcra;
use super::sliding::Sliding;
use super::Decision;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local ahead = tat + interval - now
if ahead <= capacity then
  redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', math.floor(ahead / 1000) + 1)
  return {1, ahead}
end
return {0, tat - now}
";

const SLIDING_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local idx = math.floor(now / period)
local elapsed = now - idx * period
local s = redis.call('HMGET', KEYS[1], 'i', 'p', 'c')
local si = tonumber(s[1]) or -2
local p = tonumber(s[2]) or 0
local c = tonumber(s[3]) or 0
if si ~= idx then
  if si == idx - 1 then p = c else p = 0 end
  c = 0
end
local ok = 0
if p * (period - elapsed) / period + c + 1 <= limit then
  ok = 1
  c = c + 1
end
redis.call('HSET', KEYS[1], 'i', string.format('%.0f', idx), 'p', p, 'c', c)
redis.call('PEXPIRE', KEYS[1], math.floor(2 * period / 1000) + 1)
return {ok, p, c, elapsed}
";

/// `token_limit`'s window: adds ARGV[1] tokens (0: only reads) to the key, whose
/// window of ARGV[2] ms starts at its first charge; returns {used, ms left}.
const TOKENS_LUA: &str = r"
local add = tonumber(ARGV[1])
local v
if add > 0 then
  v = redis.call('INCRBY', KEYS[1], add)
  if v == add then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
else
  v = tonumber(redis.call('GET', KEYS[1])) or 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[2]) end
return {v, ttl}
";

/// The scripts, loaded once per process (`EVALSHA`, `EVAL` when Redis lost them).
fn scripts() -> &'static (redis::Script, redis::Script, redis::Script) {
    static S: OnceLock<(redis::Script, redis::Script, redis::Script)> = OnceLock::new();
    S.get_or_init(|| {
        (
            redis::Script::new(GCRA_LUA),
            redis::Script::new(SLIDING_LUA),
            redis::Script::new(TOKENS_LUA),
        )
    })
}

/// One Redis server as the rate limits of this process use it (kept in `Shared` by URL).
pub struct RedisStore {
    client: redis::Client,
    timeout: Duration,
    conn: OnceLock<ConnectionManager>,
    /// Milliseconds (process clock) before which the store is not tried again.
    skip_until_ms: AtomicU64,
    outage: AtomicBool,
}

/// Why the store could not decide.
#[derive(Debug)]
pub struct StoreError(pub String);

impl RedisStore {
    /// Parses the URL and reads the TLS files of a `rediss://` URL; opens nothing.
    pub fn new(
        url: &str,
        tls: &redis_connect::TlsFiles,
        timeout: Duration,
    ) -> Result<Self, redis_connect::ConnectError> {
        let client = redis_connect::client(url, tls)?;
        Ok(Self {
            client,
            timeout,
            conn: OnceLock::new(),
            skip_until_ms: AtomicU64::new(0),
            outage: AtomicBool::new(false),
        })
    }

    fn manager(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(c) = self.conn.get() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), cfg)
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(self.conn.get_or_init(|| m).clone())
    }

    /// Whether to try Redis for this request: not during the second after a failure,
    /// except for one probe per second.
    fn should_try(&self) -> bool {
        let skip = self.skip_until_ms.load(Ordering::Acquire);
        if skip == 0 {
            return true;
        }
        let now = super::local::now_us() / 1000;
        now >= skip
            && self
                .skip_until_ms
                .compare_exchange(skip, now + 1000, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    fn failed(&self, e: &StoreError) {
        let now = super::local::now_us() / 1000;
        self.skip_until_ms.store(now + 1000, Ordering::Release);
        if !self.outage.swap(true, Ordering::AcqRel) {
            tracing::warn!(error = %e.0, "rate_limit: Redis is unreachable; limits fall back until it returns");
        }
    }

    fn succeeded(&self) {
        if self.skip_until_ms.load(Ordering::Relaxed) != 0 {
            self.skip_until_ms.store(0, Ordering::Release);
        }
        if self.outage.load(Ordering::Relaxed) && self.outage.swap(false, Ordering::AcqRel) {
            tracing::info!("rate_limit: Redis is back; shared limits apply again");
        }
    }

    /// Runs one script; `Ok(None)`: skipped (the store failed less than a second ago).
    async fn run(
        &self,
        script: &redis::Script,
        key: &str,
        a: u64,
        b: u64,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        if !self.should_try() {
            return Ok(None);
        }
        let result = async {
            let mut conn = self.manager()?;
            let mut inv = script.key(key);
            inv.arg(a).arg(b);
            let call = inv.invoke_async::<Vec<i64>>(&mut conn);
            match tokio::time::timeout(self.timeout, call).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(StoreError(e.to_string())),
                Err(_) => Err(StoreError(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                ))),
            }
        }
        .await;
        match result {
            Ok(v) => {
                self.succeeded();
                Ok(Some(v))
            }
            Err(e) => {
                self.failed(&e);
                Err(e)
            }
        }
    }

    pub async fn gcra(&self, g: &Gcra, key: &str) -> Result<Option<Decision>, StoreError> {
        let Some(v) = self
            .run(&scripts().0, key, g.interval_us, g.capacity_us)
            .await?
        else {
            return Ok(None);
        };
        match v.as_slice() {
            [ok, ahead] => Ok(Some(g.outcome(*ok == 1, (*ahead).max(0) as u64))),
            _ => Err(StoreError("unexpected script answer".into())),
        }
    }

    /// `token_limit`: charges `add` tokens (0: reads) in a window of `window_ms`;
    /// `(used, ms until the window ends)`, one atomic script.
    pub async fn tokens(
        &self,
        key: &str,
        add: u64,
        window_ms: u64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        let Some(v) = self.run(&scripts().2, key, add, window_ms).await? else {
            return Ok(None);
        };
        match v.as_slice() {
            [used, left] => Ok(Some(((*used).max(0) as u64, (*left).max(0) as u64))),
            _ => Err(StoreError("unexpected script answer".into())),
        }
    }

    pub async fn sliding(&self, s: &Sliding, key: &str) -> Result<Option<Decision>, StoreError> {
        let Some(v) = self.run(&scripts().1, key, s.period_us, s.limit).await? else {
            return Ok(None);
        };
        match v.as_slice() {
            [ok, p, c, elapsed] => Ok(Some(s.outcome(
                *ok == 1,
                (*p).max(0) as u64,
                (*c).max(0) as u64,
                (*elapsed).max(0) as u64,
            ))),
            _ => Err(StoreError("unexpected script answer".into())),
        }
    }
}
