//! api-generation's `POST /generate` bodies. The handler, validation
//! included, lives in `api-generation` (`api.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `max_tokens` when the request does not give one.
pub const DEFAULT_MAX_TOKENS: u32 = 64;
/// Largest accepted `max_tokens`.
pub const MAX_TOKENS_LIMIT: u32 = 1024;

/// Body of `POST /generate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GenerateRequest {
    /// Text to continue; must contain a non-blank character.
    #[schemars(regex(pattern = r"\S"))]
    pub prompt: String,
    /// Tokens to generate, `1..=1024`; default 64.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1024))]
    pub max_tokens: Option<u32>,
    /// Seed of the sampler; makes the answer deterministic and cacheable.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Admission priority; default `normal`.
    #[serde(default)]
    pub priority: Priority,
    /// Answer as a token stream (`text/event-stream`): one event per token whose JSON
    /// `data` has the piece of `text`, then one with `done: true`, `tokens`, `model`,
    /// `seed`, `duration_ms`. Default false.
    #[serde(default)]
    pub stream: bool,
}

/// Body of a successful `POST /generate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GenerateResponse {
    /// The generated continuation (the prompt is not repeated).
    pub text: String,
    /// Name of the model that produced it.
    pub model: String,
    /// Number of tokens (words and punctuation marks) in `text`.
    pub tokens: usize,
    /// True when served from the result cache.
    pub cached: bool,
    /// Time spent answering, in milliseconds.
    pub duration_ms: f64,
    /// The seed used (the request's, or a random one).
    pub seed: u64,
}

/// Urgency of a request; `normal` when not given.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Served after every `normal` and `high` waiter.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Served first.
    High,
}

impl Priority {
    /// Most urgent first: the order in which waiters are served.
    pub const BY_URGENCY: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The wire and metric-label name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    /// The index of `self` in [`Priority::BY_URGENCY`] (`high` 0, `normal` 1,
    /// `low` 2): the admission queue's and the generation threads' slot.
    pub fn slot(self) -> usize {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }
}
