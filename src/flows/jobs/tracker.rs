//! Kafka mode: the gateway follows the stages. One consumer (group `KAFKA_GROUP_ID`,
//! default `api-gateway`) reads the stage topics and moves each job forward in the
//! job store:
//!
//! | topic (default) | message | job becomes |
//! |---|---|---|
//! | `job-events` | `{"job_id","stage":"generation","event":"started"}` | `generating` |
//! | `generation-responses` | envelope with `generation` | `enriching` |
//! | `enrichment-output` | envelope with `generation` and `enrichment` | `done`, `result` = `{"result","generation","steps"}` |
//! | `jobs-dead-letter` | `{"job_id","stage","error",...}` | `failed` with `error` |
//!
//! Messages of different topics arrive in any order, and any of them may come twice
//! (at-least-once): [`Store::progress`](super::store::Store::progress) only moves a
//! job forward and never changes a final one, so a job gets one result. The webhook
//! fires when the job becomes final, from the replica that recorded it. Offsets are
//! stored once the store write succeeded (a store that cannot be reached is retried,
//! holding the consumer back).
//!
//! The consumer is assigned every partition of these topics (no group membership: a
//! restarted gateway resumes at once, without a rebalance) and commits its offsets
//! under `KAFKA_GROUP_ID`. Every replica reads every message; the store's forward-only
//! update makes the repeats no-ops, and only the replica whose write made a job final
//! fires its webhook. Replicas should share the job store (`REDIS_URL`); with the
//! in-memory store each replica records the jobs it accepted. Partitions added to a
//! topic later are read after a restart.

use super::kafka::Bus;
use super::store::{Progress, Status};
use super::Jobs;
use jobbus::rdkafka::message::OwnedMessage;
use jobbus::rdkafka::Message;
use jobbus::{client, DeadLetter, Envelope, JobEvent, Topics};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// What a message does to its job.
#[derive(Debug, PartialEq)]
struct Update {
    job_id: String,
    status: Status,
    result: Option<Value>,
    error: Option<String>,
}

/// Runs the tracker until `stop` resolves. `request_topics` are the async routes'
/// `topic`s, created with the stage topics when missing.
pub async fn run(
    jobs: Arc<Jobs>,
    bus: Arc<Bus>,
    request_topics: Vec<String>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let t = &bus.settings.topics;
    let followed = [
        t.events.as_str(),
        t.responses.as_str(),
        t.output.as_str(),
        t.dead_letter.as_str(),
    ];
    let mut all: Vec<&str> = followed.to_vec();
    all.push(t.requests.as_str());
    all.extend(request_topics.iter().map(String::as_str));
    all.sort_unstable();
    all.dedup();
    tokio::select! {
        () = client::ensure_topics_retrying(&bus.settings, &all) => {}
        () = &mut stop => return,
    }
    let consumer = match client::assigned_consumer(&bus.settings, &followed).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot make the Kafka consumer; job stages are not followed");
            return;
        }
    };
    tracing::info!(group = %bus.settings.group_id, topics = ?followed, "following the job stages on Kafka");
    loop {
        let batch = tokio::select! {
            b = client::next_batch(&consumer, bus.settings.batch) => b,
            () = &mut stop => break,
        };
        futures::future::join_all(batch.iter().map(|m| apply(&jobs, &bus, m))).await;
        client::store_offsets(&consumer, &batch);
    }
    bus.flush(Duration::from_secs(2));
}

/// Reads what a message says about its job.
fn update(t: &Topics, m: &OwnedMessage) -> Option<Update> {
    let payload = m.payload().unwrap_or_default();
    let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
    let u = |job_id: String, status, result, error| {
        Some(Update {
            job_id,
            status,
            result,
            error,
        })
    };
    if m.topic() == t.dead_letter {
        let d: DeadLetter = serde_json::from_slice(payload).ok()?;
        let id = d.job_id.or(key)?;
        return u(id, Status::Failed, None, Some(d.error));
    }
    if m.topic() == t.events {
        let e: JobEvent = serde_json::from_slice(payload).ok()?;
        let status = match (e.stage.as_str(), e.event.as_str()) {
            ("generation", "started") => Status::Generating,
            ("enrichment", "started") => Status::Enriching,
            _ => return None,
        };
        return u(e.job_id, status, None, None);
    }
    let env: Envelope = serde_json::from_slice(payload).ok()?;
    if m.topic() == t.output {
        let result = json!({
            "result": env.enrichment,
            "generation": env.generation,
            "steps": env.steps,
        });
        return u(env.job_id, Status::Done, Some(result), None);
    }
    if m.topic() == t.responses {
        return u(env.job_id, Status::Enriching, None, None);
    }
    None
}

async fn apply(jobs: &Arc<Jobs>, bus: &Bus, m: &OwnedMessage) {
    let Some(u) = update(&bus.settings.topics, m) else {
        tracing::warn!(
            topic = m.topic(),
            partition = m.partition(),
            offset = m.offset(),
            "a job message that cannot be read was skipped"
        );
        return;
    };
    let mut wait = Duration::from_millis(100);
    let progress = loop {
        let res = jobs
            .store
            .progress(&u.job_id, u.status, u.result.as_ref(), u.error.as_deref())
            .await;
        match res {
            Ok(p) => break p,
            Err(e) => {
                tracing::warn!(job_id = u.job_id, error = %e, "cannot record the job's stage; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    };
    if let Progress::Moved(callback) = progress {
        jobs.changed.notify_waiters();
        if u.status.is_final() {
            let outcome = if u.status == Status::Done {
                "done"
            } else {
                "failed"
            };
            jobs.metrics.jobs.with_label_values(&[outcome]).inc();
            if let Some(cb) = callback {
                let jobs = jobs.clone();
                tokio::spawn(async move { super::worker::notify(&jobs, &u.job_id, &cb).await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jobbus::rdkafka::message::Timestamp;

    fn msg(topic: &str, key: &str, v: Value) -> OwnedMessage {
        let payload = serde_json::to_vec(&v).unwrap();
        OwnedMessage::new(
            Some(payload),
            Some(key.as_bytes().to_vec()),
            topic.into(),
            Timestamp::NotAvailable,
            0,
            0,
            None,
        )
    }

    #[test]
    fn each_topic_moves_the_job_to_its_state() {
        let t = Topics::from_env();
        let ev = json!({"job_id": "j", "stage": "generation", "event": "started"});
        let u = update(&t, &msg("job-events", "j", ev)).unwrap();
        assert_eq!(u.status, Status::Generating);
        let env = json!({"job_id": "j", "generation": {"text": "t"}});
        let u = update(&t, &msg("generation-responses", "j", env)).unwrap();
        assert_eq!(u.status, Status::Enriching);
        let env = json!({"job_id": "j", "generation": {"text": "t"}, "enrichment": {"k": 1},
            "steps": [{"name": "generation", "upstream": "api-generation", "status": 200, "duration_ms": 1.0}]});
        let u = update(&t, &msg("enrichment-output", "j", env)).unwrap();
        assert_eq!(u.status, Status::Done);
        let r = u.result.unwrap();
        assert_eq!(r["result"], json!({"k": 1}));
        assert_eq!(r["generation"]["text"], "t");
        assert_eq!(r["steps"][0]["name"], "generation");
        let dead = json!({"job_id": null, "stage": "generation", "error": "bad", "attempts": 1,
            "topic": "generation-requests", "partition": 0, "offset": 3, "payload": "x"});
        let u = update(&t, &msg("jobs-dead-letter", "k", dead)).unwrap();
        assert_eq!(
            (u.job_id.as_str(), u.status, u.error.as_deref()),
            ("k", Status::Failed, Some("bad"))
        );
        assert!(update(&t, &msg("enrichment-output", "j", json!("garbage"))).is_none());
    }
}
