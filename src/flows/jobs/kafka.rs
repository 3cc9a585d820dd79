//! Async jobs, Kafka mode (`KAFKA_BOOTSTRAP_SERVERS` set): a submit records the job
//! `queued`, publishes it to the route's `topic` with the idempotent producer (keyed
//! by job id) and answers 202 only once the broker acknowledged it. When the broker
//! does not acknowledge within `KAFKA_PUBLISH_TIMEOUT_MS` (default 5000; the
//! producer's `message.timeout.ms`) the record is removed and the submit answers 503
//! `queue_unavailable`: nothing is accepted. The stages run in api-generation and
//! api-enrichment; [`super::tracker`] follows them.

use super::{JobSpec, Jobs, SubmitRoute};
use crate::flows::FlowAnswer;
use arc_swap::ArcSwap;
use jobbus::rdkafka::error::KafkaError;
use jobbus::rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use jobbus::{Envelope, Settings};
use std::sync::Arc;
use std::time::Duration;

/// The gateway's connection to Kafka: its settings and the producer.
pub struct Bus {
    pub settings: Settings,
    producer: ArcSwap<FutureProducer>,
}

/// `KAFKA_*` settings or the producer are wrong.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Settings(#[from] jobbus::SettingsError),
    #[error("Kafka producer: {0}")]
    Client(#[from] KafkaError),
}

impl Bus {
    /// The bus, or `None` when `KAFKA_BOOTSTRAP_SERVERS` is unset (embedded mode).
    pub fn from_env() -> Result<Option<Arc<Self>>, BusError> {
        let Some(settings) = Settings::from_env("api-gateway")? else {
            return Ok(None);
        };
        let producer = jobbus::client::producer(&settings)?;
        Ok(Some(Arc::new(Self {
            settings,
            producer: ArcSwap::from_pointee(producer),
        })))
    }

    /// Publishes `env` to `topic` and waits for the broker's acknowledgement.
    pub async fn publish(&self, topic: &str, env: &Envelope) -> Result<(), KafkaError> {
        let payload = env.to_bytes();
        let producer = self.producer.load_full();
        let rec = FutureRecord::to(topic)
            .key(env.job_id.as_str())
            .payload(payload.as_slice());
        // a full local queue fails at once rather than holding the client
        let res = producer.send(rec, Duration::ZERO).await;
        match res {
            Ok(_) => Ok(()),
            Err((e, _)) => {
                // an idempotent producer that hit a fatal error stays unusable: replace it
                if let Some((code, reason)) = producer.client().fatal_error() {
                    tracing::warn!(%code, reason, "Kafka producer failed fatally; making a new one");
                    match jobbus::client::producer(&self.settings) {
                        Ok(p) => self.producer.store(Arc::new(p)),
                        Err(e) => tracing::warn!(error = %e, "cannot make a Kafka producer"),
                    }
                }
                Err(e)
            }
        }
    }

    /// Sends what the producer still holds (at shutdown).
    pub fn flush(&self, within: Duration) {
        let _ = self.producer.load().flush(within);
    }
}

impl Jobs {
    /// The Kafka half of a submit: the job is recorded, then published; 202 after the
    /// broker's ack, else the record is removed and 503.
    pub(super) async fn submit_kafka(
        &self,
        bus: &Bus,
        route: &SubmitRoute,
        id: String,
        owner: Option<&str>,
        spec: JobSpec,
    ) -> FlowAnswer {
        if let Err(e) = self.store.create(&id, owner, &spec).await {
            return super::store_unavailable(&e);
        }
        let env = Envelope {
            job_id: id.clone(),
            request_id: spec.request_id.clone(),
            request: Some(spec.request),
            ..Envelope::default()
        };
        if let Err(e) = bus.publish(&route.topic, &env).await {
            tracing::warn!(job_id = id, topic = route.topic, error = %e, "cannot publish the job");
            if let Err(e) = self.store.forget(&id).await {
                tracing::warn!(job_id = id, error = %e, "cannot remove the refused job");
            }
            return FlowAnswer::error(
                503,
                "queue_unavailable",
                "the job queue (Kafka) cannot be reached; the job was not accepted",
                None,
            )
            .with_header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("5"),
            )
            .with_error_type("queue_unavailable");
        }
        self.metrics.jobs.with_label_values(&["accepted"]).inc();
        super::accepted(route, id)
    }
}
