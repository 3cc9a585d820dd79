//! The documents of `POST /enrich`: what comes in, how it is validated, what
//! goes out.
//!
//! Input: `{"text": string (required), "id"?: string, "title"?: string,
//! "metadata"?: object}`. Syntax errors, a missing `text`, or a field of the
//! wrong type are 400 `bad_request` in every mode.
//!
//! Validation (`DATA_VALIDATION_STRICT`): the problems below are a 422
//! `validation_error` listing all of them in strict mode, and `warnings` of the
//! result otherwise (the document is then enriched as it is):
//! - a field other than `text`, `id`, `title`, `metadata` (ignored when lenient);
//! - a `text` that is empty once cleaned;
//! - an `id` or `title` that is present but blank.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clean::CleaningReport;
use crate::entities::Entity;
use crate::error::ApiError;
use crate::keywords::Keyword;
use crate::sentiment::Sentiment;
use crate::stats::Readability;

/// The fields a document may have.
pub const KNOWN_FIELDS: [&str; 4] = ["text", "id", "title", "metadata"];

/// Body of `POST /enrich`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DocumentIn {
    /// The text to clean and analyse.
    pub text: String,
    /// Caller's identifier, echoed.
    #[serde(default)]
    pub id: Option<String>,
    /// Title, cleaned and echoed.
    #[serde(default)]
    pub title: Option<String>,
    /// Free-form object, echoed unchanged.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Fields not listed in [`KNOWN_FIELDS`].
    #[serde(flatten)]
    pub unknown: Map<String, Value>,
}

/// Checks a document whose text and title are already cleaned. Returns the
/// warnings (lenient mode) or a 422 naming every problem (strict mode).
pub fn validate(
    doc: &DocumentIn,
    clean_text: &str,
    clean_title: Option<&str>,
    strict: bool,
) -> Result<Vec<String>, ApiError> {
    let mut problems = Vec::new();
    if !doc.unknown.is_empty() {
        let names: Vec<String> = doc.unknown.keys().map(|k| format!("`{k}`")).collect();
        problems.push(format!(
            "unknown field{} {} (expected one of {})",
            if names.len() > 1 { "s" } else { "" },
            names.join(", "),
            KNOWN_FIELDS.join(", ")
        ));
    }
    if clean_text.is_empty() {
        problems.push("`text` is empty after cleaning".to_owned());
    }
    if doc.id.as_deref().is_some_and(|id| id.trim().is_empty()) {
        problems.push("`id` is blank".to_owned());
    }
    if clean_title.is_some_and(str::is_empty) {
        problems.push("`title` is blank".to_owned());
    }
    if strict && !problems.is_empty() {
        return Err(ApiError::validation(problems.join("; ")));
    }
    Ok(problems)
}

/// Whether an analysis ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    /// Ran and contributed to the result.
    Ok,
    /// Not run (not applicable or not configured); `detail` says why.
    Skipped,
    /// Ran and failed; `detail` says why. Only the external source can fail.
    Failed,
}

/// One entry of the `sources` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceReport {
    /// `cleaning`, `language`, `statistics`, `readability`, `keywords`,
    /// `sentiment`, `entities` or `external`.
    pub name: String,
    /// Outcome.
    pub status: SourceStatus,
    /// Reason of a skip or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Time spent, in milliseconds.
    pub duration_ms: f64,
}

/// Body of a successful `POST /enrich`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnrichedDocument {
    /// The caller's `id`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The cleaned title, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The cleaned text.
    pub text: String,
    /// The caller's metadata (`{}` when not given).
    pub metadata: Map<String, Value>,
    /// ISO 639-1 code (`en`, `fr`, `es`, `de`) or `und`.
    pub language: String,
    /// Share of stopword evidence for `language`, `[0, 1]`.
    pub language_confidence: f64,
    /// Number of words.
    pub word_count: usize,
    /// Number of sentences.
    pub sentence_count: usize,
    /// Number of characters of the cleaned text.
    pub character_count: usize,
    /// Flesch reading ease; null unless the language is English.
    pub readability: Option<Readability>,
    /// Most frequent non-stopwords.
    pub keywords: Vec<Keyword>,
    /// Lexicon sentiment (VADER); null when the language is detected as
    /// another than English.
    #[serde(default)]
    pub sentiment: Option<Sentiment>,
    /// Cities, countries, organisations and people named in the text, in
    /// order of first appearance.
    #[serde(default)]
    pub entities: Vec<Entity>,
    /// What cleaning changed.
    pub cleaning: CleaningReport,
    /// The external source's answer; null when skipped or failed.
    pub external: Option<Value>,
    /// Every analysis and whether it ran, in order.
    pub sources: Vec<SourceReport>,
    /// Validation findings tolerated in lenient mode.
    pub warnings: Vec<String>,
    /// True when a source failed (the result is complete otherwise).
    pub degraded: bool,
    /// True when served from the Redis cache (`REDIS_URL`).
    #[serde(default)]
    pub cached: bool,
    /// Time spent, in milliseconds.
    pub duration_ms: f64,
}
