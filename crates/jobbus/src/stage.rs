//! A backend stage: consume the input topic in the service's group, run each job,
//! produce the result, and only then store the input's offset (at-least-once: a
//! crash between the two makes the job run again, and a stage is idempotent by job
//! id, so the redone run answers the same).
//!
//! Messages are taken in batches (`KAFKA_BATCH_SIZE`, whatever is already fetched)
//! and run concurrently; the batch's results are produced and acknowledged by the
//! broker before the batch's offsets are stored, so an offset never gets ahead of an
//! unfinished message.
//!
//! Failures: a message that is not a job envelope, or a job the service refuses
//! (validation: [`StageError::Rejected`]), goes to the dead-letter topic at once
//! (another try would fail the same way); a job that fails for a passing reason
//! ([`StageError::Failed`]: overloaded, internal error) is tried again with a
//! backoff (100 ms, doubling, at most 5 s), `KAFKA_MAX_ATTEMPTS` tries in all, then
//! dead-lettered. The gateway marks the job `failed` with the dead letter's error.

use crate::client;
use crate::envelope::{DeadLetter, Envelope, JobEvent};
use crate::settings::Settings;
use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a stage did not produce a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StageError {
    /// The job itself is wrong (validation): never tried again.
    #[error("rejected: {0}")]
    Rejected(String),
    /// A passing failure: tried again.
    #[error("failed: {0}")]
    Failed(String),
}

/// What a stage reads and writes.
#[derive(Debug, Clone)]
pub struct Stage {
    /// `generation` or `enrichment`.
    pub name: &'static str,
    /// The service, in the step report and logs.
    pub service: &'static str,
    pub input: String,
    pub output: String,
    /// Where "started" events go (api-generation: the gateway shows `generating`).
    pub events: Option<String>,
    pub dead_letter: String,
}

/// One message to produce.
struct Out {
    topic: String,
    key: String,
    payload: Vec<u8>,
}

/// Starts [`run`] on the current runtime, for a service that keeps serving HTTP
/// meanwhile: when the stage stops with an error, the error is logged.
pub fn spawn<F, Fut>(settings: Settings, stage: Stage, process: F)
where
    F: Fn(Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Envelope, StageError>> + Send + 'static,
{
    let service = stage.service;
    tokio::spawn(async move {
        if let Err(e) = run(settings, stage, process).await {
            tracing::error!(service, operation = "kafka", error = %e, "Kafka stage stopped");
        }
    });
}

/// Runs the stage until the process ends. `process` gets the job's envelope and
/// returns it with the stage's answer added.
pub async fn run<F, Fut>(settings: Settings, stage: Stage, process: F) -> Result<(), KafkaError>
where
    F: Fn(Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Envelope, StageError>> + Send + 'static,
{
    let mut topics = vec![
        stage.input.as_str(),
        stage.output.as_str(),
        stage.dead_letter.as_str(),
    ];
    if let Some(e) = &stage.events {
        topics.push(e.as_str());
    }
    client::ensure_topics_retrying(&settings, &topics).await;
    let producer = client::producer(&settings)?;
    let consumer = client::consumer(&settings, &[&stage.input])?;
    tracing::info!(
        stage = stage.name,
        input = %stage.input,
        output = %stage.output,
        group = %settings.group_id,
        "Kafka stage consuming"
    );
    let process = Arc::new(process);
    let stage = Arc::new(stage);
    loop {
        let batch = client::next_batch(&consumer, settings.batch).await;
        let runs = batch.iter().map(|m| {
            let (process, stage, producer) = (process.clone(), stage.clone(), producer.clone());
            let m = m.clone();
            let attempts = settings.max_attempts;
            tokio::spawn(async move { handle(&*process, &stage, &producer, &m, attempts).await })
        });
        let mut outs = Vec::with_capacity(batch.len());
        let mut complete = true;
        for r in join_all(runs).await {
            match r {
                Ok(o) => outs.push(o),
                Err(e) => {
                    tracing::error!(stage = stage.name, error = %e, "a job's run panicked");
                    complete = false;
                }
            }
        }
        join_all(outs.iter().map(|o| deliver(&producer, o))).await;
        // a batch with a lost run keeps its offsets: it is read again after a restart
        if complete {
            client::store_offsets(&consumer, &batch);
        }
    }
}

/// Produces one message, trying again until the broker acknowledges it.
async fn deliver(p: &FutureProducer, o: &Out) {
    let mut wait = Duration::from_millis(200);
    loop {
        let rec = FutureRecord::to(&o.topic)
            .key(o.key.as_str())
            .payload(o.payload.as_slice());
        match p.send(rec, Duration::from_secs(5)).await {
            Ok(_) => return,
            Err((e, _)) => {
                tracing::warn!(topic = %o.topic, job_id = %o.key, error = %e, "cannot produce; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn handle<F, Fut>(
    process: &F,
    stage: &Stage,
    producer: &FutureProducer,
    m: &OwnedMessage,
    max_attempts: u32,
) -> Out
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<Envelope, StageError>>,
{
    let key = m
        .key()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_default();
    let dead = |job_id: Option<String>, error: String, attempts: u32| {
        tracing::warn!(stage = stage.name, job_id = job_id.as_deref().unwrap_or(""), error = %error, "job dead-lettered");
        let d = DeadLetter {
            job_id,
            stage: stage.name.to_owned(),
            error,
            attempts,
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            payload: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
        };
        Out {
            topic: stage.dead_letter.clone(),
            key: key.clone(),
            payload: serde_json::to_vec(&d).unwrap_or_default(),
        }
    };
    let mut env: Envelope = match serde_json::from_slice(m.payload().unwrap_or_default()) {
        Ok(e) => e,
        Err(e) => {
            let id = (!key.is_empty()).then(|| key.clone());
            return dead(id, format!("unparseable message: {e}"), 1);
        }
    };
    if env.job_id.is_empty() {
        if key.is_empty() {
            return dead(None, "the message names no job".into(), 1);
        }
        env.job_id = key.clone();
    }
    if let Some(topic) = &stage.events {
        let ev = JobEvent {
            job_id: env.job_id.clone(),
            stage: stage.name.to_owned(),
            event: "started".to_owned(),
        };
        let payload = serde_json::to_vec(&ev).unwrap_or_default();
        // not waited for: the event only shows progress
        let rec = FutureRecord::to(topic)
            .key(env.job_id.as_str())
            .payload(payload.as_slice());
        let _ = producer.send_result(rec);
    }
    let mut wait = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match process(env.clone()).await {
            Ok(out) => {
                return Out {
                    topic: stage.output.clone(),
                    key: env.job_id.clone(),
                    payload: out.to_bytes(),
                }
            }
            Err(StageError::Rejected(msg)) => {
                return dead(
                    Some(env.job_id.clone()),
                    format!("stage `{}` rejected the job: {msg}", stage.name),
                    attempt,
                )
            }
            Err(StageError::Failed(msg)) if attempt >= max_attempts => {
                return dead(
                    Some(env.job_id.clone()),
                    format!("stage `{}` failed {attempt} times: {msg}", stage.name),
                    attempt,
                )
            }
            Err(StageError::Failed(msg)) => {
                tracing::info!(stage = stage.name, job_id = %env.job_id, attempt, error = %msg, "stage failed; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
        }
    }
}
