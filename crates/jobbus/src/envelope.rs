//! The messages of the job topics. Every message is keyed by its job id (so one job's
//! messages of a topic stay in order on one partition) and carries JSON.
//!
//! | topic (default name) | written by | value |
//! |---|---|---|
//! | `generation-requests` | gateway | [`Envelope`] with `request` |
//! | `job-events` | api-generation | [`JobEvent`] `{"job_id","stage":"generation","event":"started"}` |
//! | `generation-responses` | api-generation | [`Envelope`] with `request` and `generation` |
//! | `enrichment-output` | api-enrichment | [`Envelope`] with `generation` and `enrichment` |
//! | `jobs-dead-letter` | either stage | [`DeadLetter`] |

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A job on its way through the stages; each stage adds its answer and its step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The job's id (a UUIDv7), also the message key.
    pub job_id: String,
    /// The submit's `X-Request-ID`, sent on by each stage.
    #[serde(default)]
    pub request_id: String,
    /// The generation request (the submitted body without `callback_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// api-generation's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<Value>,
    /// api-enrichment's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<Value>,
    /// One entry per stage run, in order.
    #[serde(default)]
    pub steps: Vec<StepReport>,
}

/// A stage's run, the same shape as an entry of the pipeline's `steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// The stage: `generation` or `enrichment`.
    pub name: String,
    /// The service that ran it (`api-generation`, `api-enrichment`).
    pub upstream: String,
    /// The status of its answer.
    pub status: Option<u16>,
    /// Time the stage took, in milliseconds.
    pub duration_ms: f64,
}

/// A stage took a job (the gateway shows it as `generating`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub job_id: String,
    /// `generation` or `enrichment`.
    pub stage: String,
    /// `started`.
    pub event: String,
}

/// A message a stage gave up on: the job fails with `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The job, when the message named one (its key, or its envelope).
    pub job_id: Option<String>,
    /// The stage that gave up.
    pub stage: String,
    /// Why.
    pub error: String,
    /// Tries made.
    pub attempts: u32,
    /// Where the message was read.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The message's value, as (lossy) UTF-8.
    pub payload: String,
}

impl Envelope {
    /// The message value.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The sampling seed of a job whose request gives none: derived from the job id
/// (FNV-1a), so a redelivered job generates the same text.
pub fn seed_for(job_id: &str) -> u64 {
    job_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
