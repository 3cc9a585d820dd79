//! Async jobs, embedded mode: `POST` on an `async` route makes a job (UUIDv7), records
//! it as `queued` in the job store and puts it on the in-process queue, then answers
//! `202 {"job_id", "status_url"}` with `Location`. Workers inside the gateway
//! ([`worker`]) run the generation then the enrichment stage through the same
//! upstream pools as proxied requests, recording each stage; the `jobs` route answers
//! a job's state. A job submitted by an authenticated consumer is readable only by
//! that consumer (others get 404, as for an unknown id).
//!
//! Kafka mode (`KAFKA_BOOTSTRAP_SERVERS` set): the job is published instead of queued
//! ([`kafka`]), the backends run the stages, and [`tracker`] records them.
//!
//! A job's state changes are also streamed ([`events`]: `GET .../{job_id}/events`).
//!
//! Environment: `JOB_WORKERS` (jobs run at once, default 64), `JOB_QUEUE_LIMIT` (jobs
//! waiting before submits answer 503 `queue_full`, default 10000), `JOB_TTL_SECONDS`
//! (how long a job is kept, default 86400), `REDIS_URL` (Redis store, see [`store`]),
//! `JOB_LEASE_SECONDS` and `JOB_RECOVERY_SECONDS` (Redis store, see [`worker`]),
//! `JOB_EVENTS_POLL_MS` (see [`events`]).

pub mod callback;
pub mod events;
pub mod kafka;
pub mod metrics;
pub mod store;
pub mod tracker;
pub mod worker;

use super::step::Clients;
use super::FlowAnswer;
use crate::config::{AsyncConfig, CallbackConfig};
use crate::env;
use crate::upstream::Pool;
use callback::CallbackSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Status, Store};
use tokio::sync::mpsc;

/// One stage of a job: an upstream name and path (pools are looked up in the live
/// table when the stage runs, so reloads apply to queued jobs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageSpec {
    pub upstream: String,
    pub path: String,
}

/// What a job runs; kept with the job so that a restarted gateway can run it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobSpec {
    pub route: String,
    pub generation: StageSpec,
    pub enrichment: StageSpec,
    /// The generation request (the submitted body without `callback_url`).
    pub request: Value,
    pub callback: Option<CallbackSpec>,
    pub request_id: String,
}

#[cfg(test)]
impl JobSpec {
    pub(crate) fn for_tests() -> Self {
        let stage = |u: &str| StageSpec {
            upstream: u.into(),
            path: "/".into(),
        };
        JobSpec {
            route: "r".into(),
            generation: stage("g"),
            enrichment: stage("e"),
            request: serde_json::json!({"prompt": "x"}),
            callback: None,
            request_id: "rid".into(),
        }
    }
}

/// A compiled stage of an async route.
pub struct Stage {
    pub upstream: String,
    pub path: String,
    pub pool: Arc<Pool>,
}

/// A compiled `async` route.
pub struct SubmitRoute {
    pub route: String,
    pub topic: String,
    pub generation: Stage,
    pub enrichment: Stage,
    pub status_path: String,
    pub callback: CallbackConfig,
}

impl SubmitRoute {
    pub fn new(route: &str, a: &AsyncConfig, gen: Arc<Pool>, enr: Arc<Pool>) -> Self {
        Self {
            route: route.to_string(),
            topic: a.topic.clone(),
            generation: Stage {
                upstream: a.generation.upstream.clone(),
                path: a.generation.path.clone(),
                pool: gen,
            },
            enrichment: Stage {
                upstream: a.enrichment.upstream.clone(),
                path: a.enrichment.path.clone(),
                pool: enr,
            },
            status_path: a.status_path.clone(),
            callback: a.callback.clone(),
        }
    }
}

/// The 202 answer of a submit.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Accepted {
    /// The job's id (a UUIDv7).
    pub job_id: String,
    /// Where to read the job (also the `Location` header).
    pub status_url: String,
}

/// A job waiting for a worker.
pub struct Queued {
    pub id: String,
    pub spec: JobSpec,
}

/// The job service: store, queue and the HTTP clients of the stages.
pub struct Jobs {
    pub store: Store,
    pub clients: Clients,
    tx: mpsc::UnboundedSender<Queued>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Queued>>>,
    /// Jobs queued and not yet taken by a worker.
    pub waiting: AtomicUsize,
    pub limit: usize,
    pub workers: usize,
    pub metrics: metrics::JobMetrics,
    /// Lease of a running job (Redis store).
    pub lease: Duration,
    /// Recovery sweep interval and minimum age of the jobs it takes (Redis store).
    pub recovery: Duration,
    /// Kafka mode: jobs are published and run by the backends (`None`: embedded).
    pub kafka: Option<Arc<kafka::Bus>>,
    /// Woken after each job state this gateway writes (the job events' watchers).
    pub changed: tokio::sync::Notify,
    /// How often a job events watcher reads the store (`JOB_EVENTS_POLL_MS`).
    pub events_poll: Duration,
}

/// Why the job service cannot start from the environment.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error(transparent)]
    Number(#[from] crate::env::BadNumber),
    #[error("REDIS_URL: {0}")]
    Redis(#[from] redis_connect::ConnectError),
    #[error("job metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Kafka(#[from] kafka::BusError),
}

impl Jobs {
    /// The service configured from the environment, its metrics in `registry`.
    pub fn from_env(registry: &prometheus::Registry) -> Result<Arc<Self>, JobsError> {
        let ttl = Duration::from_secs(env::number("JOB_TTL_SECONDS", 86_400u64)?);
        let store = match std::env::var("REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => Store::redis(url.trim(), ttl, "gateway:")?,
            _ => Store::memory(ttl),
        };
        let workers = env::number::<usize>("JOB_WORKERS", 64)?.max(1);
        let limit = env::number::<usize>("JOB_QUEUE_LIMIT", 10_000)?.max(1);
        let metrics = metrics::JobMetrics::new(Some(registry))?;
        let mut jobs = Self::new(store, workers, limit, metrics);
        jobs.lease = Duration::from_secs(env::number("JOB_LEASE_SECONDS", 60u64)?.max(1));
        jobs.recovery = Duration::from_secs(env::number("JOB_RECOVERY_SECONDS", 10u64)?.max(1));
        jobs.kafka = kafka::Bus::from_env()?;
        jobs.events_poll = Duration::from_millis(env::number("JOB_EVENTS_POLL_MS", 100u64)?.max(1));
        Ok(Arc::new(jobs))
    }

    pub fn new(store: Store, workers: usize, limit: usize, metrics: metrics::JobMetrics) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            metrics,
            lease: Duration::from_secs(60),
            recovery: Duration::from_secs(10),
            store,
            clients: Clients::default(),
            tx,
            rx: Mutex::new(Some(rx)),
            waiting: AtomicUsize::new(0),
            limit,
            workers,
            kafka: None,
            changed: tokio::sync::Notify::new(),
            events_poll: Duration::from_millis(100),
        }
    }

    /// The queue's receiving end, once (for the workers).
    pub fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Queued>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Puts a job on the queue.
    pub fn enqueue(&self, q: Queued) -> bool {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(q).is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        self.metrics.waiting.inc();
        self.metrics.in_flight.with_label_values(&["queued"]).inc();
        true
    }

    /// A worker took a job off the queue.
    pub fn dequeued(&self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.metrics.waiting.dec();
        self.metrics.in_flight.with_label_values(&["queued"]).dec();
    }

    /// `POST` on an async route.
    pub async fn submit(
        &self,
        route: &SubmitRoute,
        body: &[u8],
        owner: Option<&str>,
        request_id: &str,
    ) -> FlowAnswer {
        let mut request: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return FlowAnswer::error(
                    400,
                    "bad_request",
                    "the body must be a JSON object",
                    None,
                )
            }
        };
        // a job's stages answer JSON: a token stream cannot be stored (yet)
        if let Some(o) = request.as_object_mut() {
            o.remove("stream");
        }
        let callback = match request
            .as_object_mut()
            .and_then(|o| o.remove("callback_url"))
        {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) => match callback::check(&route.callback, &url).await {
                Ok(spec) => Some(spec),
                Err(e) => {
                    return FlowAnswer::error(400, "invalid_callback_url", e.to_string(), None)
                }
            },
            Some(_) => {
                return FlowAnswer::error(
                    400,
                    "invalid_callback_url",
                    "`callback_url` must be a string",
                    None,
                )
            }
        };
        let id = uuid::Uuid::now_v7().to_string();
        let spec = JobSpec {
            route: route.route.clone(),
            generation: StageSpec {
                upstream: route.generation.upstream.clone(),
                path: route.generation.path.clone(),
            },
            enrichment: StageSpec {
                upstream: route.enrichment.upstream.clone(),
                path: route.enrichment.path.clone(),
            },
            request,
            callback,
            request_id: request_id.to_string(),
        };
        if let Some(bus) = &self.kafka {
            return self.submit_kafka(bus, route, id, owner, spec).await;
        }
        if self.waiting.load(Ordering::Relaxed) >= self.limit {
            return FlowAnswer::error(
                503,
                "queue_full",
                "too many jobs are waiting; try again",
                None,
            )
            .with_header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        if let Err(e) = self.store.create(&id, owner, &spec).await {
            return store_unavailable(&e);
        }
        if !self.enqueue(Queued {
            id: id.clone(),
            spec,
        }) {
            let _ = self.store.forget(&id).await;
            return FlowAnswer::error(503, "queue_unavailable", "the job queue is stopped", None);
        }
        self.metrics.jobs.with_label_values(&["accepted"]).inc();
        accepted(route, id)
    }

    /// `GET` on the jobs route.
    pub async fn status(&self, id: &str, consumer: Option<&str>) -> FlowAnswer {
        let not_found = || FlowAnswer::error(404, "not_found", "no such job", None);
        if uuid::Uuid::parse_str(id).is_err() {
            return not_found();
        }
        match self.store.get(id).await {
            Ok(Some(j)) => {
                if j.owner.is_some() && j.owner.as_deref() != consumer {
                    return not_found();
                }
                FlowAnswer::json(200, serde_json::to_value(&j.view).unwrap_or(Value::Null))
            }
            Ok(None) => not_found(),
            Err(e) => {
                tracing::warn!(error = %e, "job store unavailable");
                FlowAnswer::error(
                    503,
                    "job_store_unavailable",
                    "the job store cannot be reached",
                    None,
                )
                .with_error_type("job_store")
            }
        }
    }
}

/// A submit whose record cannot be written: 503, nothing accepted.
fn store_unavailable(e: &store::StoreError) -> FlowAnswer {
    tracing::warn!(error = %e, "job store unavailable");
    FlowAnswer::error(
        503,
        "job_store_unavailable",
        "the job store cannot be reached; the job was not accepted",
        None,
    )
    .with_error_type("job_store")
}

/// The 202 of an accepted job, with `Location`.
fn accepted(route: &SubmitRoute, id: String) -> FlowAnswer {
    let status_url = route.status_path.replace("{job_id}", &id);
    let accepted = Accepted {
        job_id: id,
        status_url: status_url.clone(),
    };
    let body = serde_json::to_value(accepted).unwrap_or(Value::Null);
    let mut a = FlowAnswer::json(202, body);
    if let Ok(v) = http::HeaderValue::from_str(&status_url) {
        a = a.with_header(http::header::LOCATION, v);
    }
    a
}

/// Whether a stored status lets a worker run the job (a redelivered or recovered job
/// that already finished is not run again).
pub fn runnable(s: Status) -> bool {
    !s.is_final()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn another_consumer_cannot_read_a_job() {
        let jobs = Jobs::new(
            Store::memory(Duration::from_secs(60)),
            1,
            10,
            metrics::JobMetrics::new(None).unwrap(),
        );
        let id = uuid::Uuid::now_v7().to_string();
        jobs.store
            .create(&id, Some("alice"), &JobSpec::for_tests())
            .await
            .unwrap();
        assert_eq!(jobs.status(&id, Some("alice")).await.status, 200);
        assert_eq!(jobs.status(&id, Some("bob")).await.status, 404);
        assert_eq!(jobs.status(&id, None).await.status, 404);
        let anon = uuid::Uuid::now_v7().to_string();
        jobs.store
            .create(&anon, None, &JobSpec::for_tests())
            .await
            .unwrap();
        assert_eq!(jobs.status(&anon, Some("bob")).await.status, 200);
        assert_eq!(jobs.status("nope", None).await.status, 404);
    }
}
