//! Kafka mode's store update: a job only moves forward (`queued` → `generating` →
//! `enriching` → `done`/`failed`), and a final job never changes. The stages' messages
//! come from several topics, in any order and possibly more than once (at-least-once),
//! so an event that would move a job back, or touch a final job, is ignored; only the
//! first final event of a job sets its result or error. Atomic in Redis (one script).

use super::{now_rfc3339, redis_err, Status, Store, StoreError};
use crate::flows::jobs::callback::CallbackSpec;
use crate::flows::jobs::JobSpec;
use serde_json::Value;

/// What [`Store::progress`] did.
#[derive(Debug, PartialEq)]
pub enum Progress {
    /// The job moved; for a final state, the job's webhook (if any) is due.
    Moved(Option<CallbackSpec>),
    /// The job was already there or further (a late or repeated event).
    Stale,
    /// No such job (expired, or its submit was refused).
    Unknown,
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Queued => 0,
        Status::Generating => 1,
        Status::Enriching => 2,
        Status::Done | Status::Failed => 3,
    }
}

/// KEYS: job hash, pending set. ARGV: status, its rank, time, result ("" = none),
/// error ("" = none), TTL seconds, job id. Returns {0, false} unknown, {1, false} stale, {2, spec}.
const SCRIPT: &str = r"
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {0, false} end
local ranks = {queued = 0, generating = 1, enriching = 2, done = 3, failed = 3}
local r = ranks[cur] or 0
if r >= 3 or tonumber(ARGV[2]) <= r then return {1, false} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'stage:' .. ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
redis.call('EXPIRE', KEYS[1], ARGV[6])
local spec = false
if tonumber(ARGV[2]) >= 3 then
  redis.call('ZREM', KEYS[2], ARGV[7])
  spec = redis.call('HGET', KEYS[1], 'spec')
end
return {2, spec}
";

impl Store {
    /// Moves the job forward to `status` (with its result or error), unless it is
    /// already there, further, or final.
    pub async fn progress(
        &self,
        id: &str,
        status: Status,
        result: Option<&Value>,
        error: Option<&str>,
    ) -> Result<Progress, StoreError> {
        let ts = now_rfc3339();
        match self {
            Store::Memory(m, _) => {
                let mut map = m.lock().unwrap_or_else(|e| e.into_inner());
                let Some((s, _)) = map.get_mut(id) else {
                    return Ok(Progress::Unknown);
                };
                if s.state.is_final() || rank(status) <= rank(s.state) {
                    return Ok(Progress::Stale);
                }
                s.state = status;
                s.view.status = status.as_str();
                s.view.stages.insert(status.as_str().to_string(), ts);
                s.view.result = result.cloned().or(s.view.result.take());
                s.view.error = error.map(str::to_owned).or(s.view.error.take());
                let cb = if status.is_final() {
                    s.spec.take().and_then(|sp| sp.callback)
                } else {
                    None
                };
                Ok(Progress::Moved(cb))
            }
            Store::Redis(r) => {
                let mut c = r.conn().await?;
                let reply: (i64, Option<String>) = redis::Script::new(SCRIPT)
                    .key(r.key(id))
                    .key(r.pending_key())
                    .arg(status.as_str())
                    .arg(rank(status))
                    .arg(ts)
                    .arg(result.map(Value::to_string).unwrap_or_default())
                    .arg(error.unwrap_or_default())
                    .arg(r.ttl_secs())
                    .arg(id)
                    .invoke_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                Ok(match reply {
                    (2, spec) => Progress::Moved(
                        spec.and_then(|s| serde_json::from_str::<JobSpec>(&s).ok())
                            .and_then(|sp| sp.callback),
                    ),
                    (1, _) => Progress::Stale,
                    _ => Progress::Unknown,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_job_only_moves_forward_and_a_final_job_never_changes() {
        let s = Store::memory(Duration::from_secs(60));
        s.create("a", None, &JobSpec::for_tests()).await.unwrap();
        let p = |st| s.progress("a", st, None, None);
        assert_eq!(p(Status::Enriching).await.unwrap(), Progress::Moved(None));
        assert_eq!(p(Status::Generating).await.unwrap(), Progress::Stale);
        let r1 = serde_json::json!({"n": 1});
        let done = s
            .progress("a", Status::Done, Some(&r1), None)
            .await
            .unwrap();
        assert_eq!(done, Progress::Moved(None));
        let r2 = serde_json::json!({"n": 2});
        let again = s
            .progress("a", Status::Done, Some(&r2), None)
            .await
            .unwrap();
        assert_eq!(again, Progress::Stale);
        let failed = s
            .progress("a", Status::Failed, None, Some("x"))
            .await
            .unwrap();
        assert_eq!(failed, Progress::Stale);
        let j = s.get("a").await.unwrap().unwrap();
        assert_eq!(j.view.status, "done");
        assert_eq!(j.view.result, Some(r1));
        assert_eq!(j.view.error, None);
        assert_eq!(
            s.progress("zz", Status::Done, None, None).await.unwrap(),
            Progress::Unknown
        );
    }
}
