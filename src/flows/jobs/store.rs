//! The job store: every job's status, stage timestamps, result or error, webhook
//! record, owner (the consumer that submitted it) and spec (what to run, so a
//! restarted gateway can run the jobs it had not finished). In memory by default;
//! Redis hashes with a TTL when `REDIS_URL` is set (shared by every replica, and kept
//! across restarts). Redis is fail-closed: when it cannot be reached, submits answer
//! 503 and status reads 503.

mod progress;

pub use progress::Progress;

use super::JobSpec;
use redis::AsyncCommands;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Where a job is: `queued` → `generating` → `enriching` → `done` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Generating,
    Enriching,
    Done,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Generating => "generating",
            Status::Enriching => "enriching",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Status::Queued,
            "generating" => Status::Generating,
            "enriching" => Status::Enriching,
            "done" => Status::Done,
            "failed" => Status::Failed,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Done | Status::Failed)
    }
}

/// What `GET /api/v1/jobs/{job_id}` shows.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct JobView {
    /// The job's id (a UUIDv7).
    pub job_id: String,
    /// Where the job is.
    #[schemars(with = "Status")]
    pub status: &'static str,
    /// Stage name → RFC 3339 time it was entered.
    pub stages: BTreeMap<String, String>,
    /// The final result when `done`: the same shape as the pipeline's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Why the job failed, when `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Webhook delivery, when a `callback_url` was given and the job is final.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<super::callback::CallbackRecord>")]
    pub callback: Option<Value>,
}

/// A stored job.
#[derive(Debug, Clone)]
pub struct Stored {
    pub view: JobView,
    pub state: Status,
    pub owner: Option<String>,
    pub spec: Option<JobSpec>,
}

/// The store could not be reached (or a job could not be written to it).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A job's spec does not serialise.
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The job store.
pub enum Store {
    Memory(Mutex<HashMap<String, (Stored, Instant)>>, Duration),
    /// Boxed: a Redis client with TLS support is large.
    Redis(Box<RedisStore>),
}

/// Redis: one hash per job (`<prefix>job:<id>`, fields `status`, `stage:<name>`,
/// `result`, `error`, `callback`, `owner`, `spec`) expiring after the TTL, a sorted
/// set of unfinished job ids by submit time (`<prefix>jobs:pending`), and a lease key
/// per running job (`<prefix>job:<id>:lease`, `SET NX PX`) so that one worker of all
/// replicas runs it at a time.
pub struct RedisStore {
    client: redis::Client,
    conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    ttl: Duration,
    prefix: String,
}

impl Store {
    pub fn memory(ttl: Duration) -> Self {
        Store::Memory(Mutex::new(HashMap::new()), ttl)
    }

    /// A Redis store on `url` (connected on first use).
    /// The error is the client's; [`super::JobsError::Redis`] names the variable.
    pub fn redis(
        url: &str,
        ttl: Duration,
        prefix: &str,
    ) -> Result<Self, redis_connect::ConnectError> {
        let client = redis_connect::client_from_env(url)?;
        Ok(Store::Redis(Box::new(RedisStore {
            client,
            conn: tokio::sync::OnceCell::new(),
            ttl,
            prefix: prefix.to_string(),
        })))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(..) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    /// Records a new queued job.
    pub async fn create(
        &self,
        id: &str,
        owner: Option<&str>,
        spec: &JobSpec,
    ) -> Result<(), StoreError> {
        let ts = now_rfc3339();
        match self {
            Store::Memory(m, ttl) => {
                let mut map = m.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if map.len() % 1024 == 0 {
                    map.retain(|_, (_, exp)| *exp > now);
                }
                let view = JobView {
                    job_id: id.to_string(),
                    status: Status::Queued.as_str(),
                    stages: BTreeMap::from([("queued".to_string(), ts)]),
                    result: None,
                    error: None,
                    callback: None,
                };
                let stored = Stored {
                    view,
                    state: Status::Queued,
                    owner: owner.map(str::to_owned),
                    spec: Some(spec.clone()),
                };
                map.insert(id.to_string(), (stored, now + *ttl));
                Ok(())
            }
            Store::Redis(r) => {
                let spec = serde_json::to_string(spec).map_err(StoreError::Encode)?;
                let mut fields = vec![
                    ("status", Status::Queued.as_str().to_string()),
                    ("stage:queued", ts),
                    ("spec", spec),
                ];
                if let Some(o) = owner {
                    fields.push(("owner", o.to_string()));
                }
                let key = r.key(id);
                let mut c = r.conn().await?;
                redis::pipe()
                    .atomic()
                    .hset_multiple(&key, &fields)
                    .ignore()
                    .expire(&key, r.ttl_secs())
                    .ignore()
                    .zadd(r.pending_key(), id, unix_ms())
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
                    .map_err(redis_err)
            }
        }
    }

    /// Moves a job to `status`, stamping the stage, with its result or error.
    pub async fn advance(
        &self,
        id: &str,
        status: Status,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let ts = now_rfc3339();
        match self {
            Store::Memory(m, _) => {
                let mut map = m.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((s, _)) = map.get_mut(id) {
                    s.state = status;
                    s.view.status = status.as_str();
                    s.view.stages.insert(status.as_str().to_string(), ts);
                    if let Some(r) = result {
                        s.view.result = Some(r.clone());
                    }
                    if let Some(e) = error {
                        s.view.error = Some(e.to_string());
                    }
                }
                Ok(())
            }
            Store::Redis(r) => {
                let key = r.key(id);
                let mut fields = vec![
                    ("status".to_string(), status.as_str().to_string()),
                    (format!("stage:{}", status.as_str()), ts),
                ];
                if let Some(v) = result {
                    fields.push(("result".into(), v.to_string()));
                }
                if let Some(e) = error {
                    fields.push(("error".into(), e.to_string()));
                }
                let mut p = redis::pipe();
                p.atomic().hset_multiple(&key, &fields).ignore();
                p.expire(&key, r.ttl_secs()).ignore();
                if status.is_final() {
                    p.zrem(r.pending_key(), id).ignore();
                }
                let mut c = r.conn().await?;
                p.query_async::<()>(&mut c).await.map_err(redis_err)
            }
        }
    }

    /// Records the webhook delivery.
    pub async fn set_callback(&self, id: &str, record: &Value) -> Result<(), StoreError> {
        match self {
            Store::Memory(m, _) => {
                let mut map = m.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((s, _)) = map.get_mut(id) {
                    s.view.callback = Some(record.clone());
                }
                Ok(())
            }
            Store::Redis(r) => {
                let mut c = r.conn().await?;
                c.hset::<_, _, _, ()>(r.key(id), "callback", record.to_string())
                    .await
                    .map_err(redis_err)
            }
        }
    }

    /// A job, if it exists (and has not expired).
    pub async fn get(&self, id: &str) -> Result<Option<Stored>, StoreError> {
        match self {
            Store::Memory(m, _) => {
                let map = m.lock().unwrap_or_else(|e| e.into_inner());
                Ok(map
                    .get(id)
                    .filter(|(_, exp)| *exp > Instant::now())
                    .map(|(s, _)| s.clone()))
            }
            Store::Redis(r) => {
                let mut c = r.conn().await?;
                let h: HashMap<String, String> = c.hgetall(r.key(id)).await.map_err(redis_err)?;
                Ok(from_hash(id, h))
            }
        }
    }

    /// Jobs not finished and submitted at least `min_age` ago, oldest first (Redis
    /// only: the in-memory store's jobs die with the process).
    pub async fn unfinished(&self, min_age: Duration) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Memory(..) => Ok(Vec::new()),
            Store::Redis(r) => {
                let mut c = r.conn().await?;
                let max = unix_ms().saturating_sub(u64::try_from(min_age.as_millis()).unwrap_or(0));
                c.zrangebyscore(r.pending_key(), 0, max)
                    .await
                    .map_err(redis_err)
            }
        }
    }

    /// Takes the job's lease for `ttl`: false when another worker (of any replica)
    /// holds it. The in-memory store has one process: always true.
    pub async fn claim(&self, id: &str, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            Store::Memory(..) => Ok(true),
            Store::Redis(r) => {
                let mut c = r.conn().await?;
                let set: Option<String> = redis::cmd("SET")
                    .arg(r.lease_key(id))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                Ok(set.is_some())
            }
        }
    }

    /// Extends the job's lease.
    pub async fn renew(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Store::Memory(..) => Ok(()),
            Store::Redis(r) => {
                let mut c = r.conn().await?;
                let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
                c.pexpire::<_, ()>(r.lease_key(id), ms)
                    .await
                    .map_err(redis_err)
            }
        }
    }

    /// Gives the job's lease back.
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(..) => Ok(()),
            Store::Redis(r) => {
                let mut c = r.conn().await?;
                c.del::<_, ()>(r.lease_key(id)).await.map_err(redis_err)
            }
        }
    }

    /// Forgets a job that could not be queued.
    pub async fn forget(&self, id: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(m, _) => {
                m.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
                Ok(())
            }
            Store::Redis(r) => {
                let mut c = r.conn().await?;
                redis::pipe()
                    .del(r.key(id))
                    .ignore()
                    .zrem(r.pending_key(), id)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
                    .map_err(redis_err)
            }
        }
    }
}

impl RedisStore {
    async fn conn(&self) -> Result<redis::aio::ConnectionManager, StoreError> {
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| async {
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), cfg)
                    .await
                    .map_err(redis_err)
            })
            .await
            .cloned()
    }

    fn key(&self, id: &str) -> String {
        format!("{}job:{id}", self.prefix)
    }

    fn lease_key(&self, id: &str) -> String {
        format!("{}job:{id}:lease", self.prefix)
    }

    fn pending_key(&self) -> String {
        format!("{}jobs:pending", self.prefix)
    }

    fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(i64::MAX)
    }
}

fn redis_err(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn from_hash(id: &str, mut h: HashMap<String, String>) -> Option<Stored> {
    let state = Status::parse(h.get("status")?)?;
    let json = |s: Option<String>| s.and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let stages = h
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("stage:").map(|s| (s.to_string(), v.clone())))
        .collect();
    Some(Stored {
        view: JobView {
            job_id: id.to_string(),
            status: state.as_str(),
            stages,
            result: json(h.remove("result")),
            error: h.remove("error"),
            callback: json(h.remove("callback")),
        },
        state,
        owner: h.remove("owner"),
        spec: h.remove("spec").and_then(|s| serde_json::from_str(&s).ok()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn memory_store_keeps_stages_and_owner() {
        let s = Store::memory(Duration::from_secs(60));
        let spec = JobSpec::for_tests();
        s.create("a", Some("alice"), &spec).await.unwrap();
        s.advance("a", Status::Generating, None, None)
            .await
            .unwrap();
        s.advance("a", Status::Done, Some(&serde_json::json!({"x": 1})), None)
            .await
            .unwrap();
        let j = s.get("a").await.unwrap().unwrap();
        assert_eq!(j.view.status, "done");
        assert_eq!(j.owner.as_deref(), Some("alice"));
        assert!(j.view.stages.contains_key("queued"));
        assert!(j.view.stages.contains_key("generating"));
        assert!(j.view.stages.contains_key("done"));
        assert_eq!(j.view.result, Some(serde_json::json!({"x": 1})));
        assert!(s.get("b").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn memory_store_expires() {
        let s = Store::memory(Duration::from_millis(1));
        s.create("a", None, &JobSpec::for_tests()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(s.get("a").await.unwrap().is_none());
    }
}
