//! api-enrichment's `POST /enrich` bodies: the document that comes in, the
//! enriched document that goes out, and its parts. Validation, cleaning and the
//! analyses live in `api-enrichment`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

/// What cleaning did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CleaningReport {
    /// Characters in the input.
    pub original_length: usize,
    /// Characters in the cleaned text.
    pub cleaned_length: usize,
    /// Control and invisible characters removed.
    pub control_chars_removed: usize,
    /// HTML elements and comments removed (0 when the text had no markup).
    #[serde(default)]
    pub html_elements_removed: usize,
    /// True when stray HTML was removed or character references decoded.
    #[serde(default)]
    pub html_removed: bool,
    /// True when Unicode NFC normalisation changed the text.
    #[serde(default)]
    pub unicode_normalized: bool,
}

/// Flesch reading ease of an English text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Readability {
    /// `206.835 − 1.015 × words/sentences − 84.6 × syllables/words`, rounded to
    /// 2 decimals (not clamped: very short simple texts exceed 100).
    pub flesch_reading_ease: f64,
    /// `very easy` (≥ 90), `easy` (≥ 80), `fairly easy` (≥ 70), `standard`
    /// (≥ 60), `fairly difficult` (≥ 50), `difficult` (≥ 30), else `very difficult`.
    pub level: String,
    /// Average words per sentence, 2 decimals.
    pub words_per_sentence: f64,
    /// Average syllables per word, 2 decimals.
    pub syllables_per_word: f64,
}

/// A keyword and its number of occurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Keyword {
    /// The word, lowercase.
    pub word: String,
    /// Occurrences in the text.
    pub count: usize,
}

/// Overall tone of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// Compound score at least 0.05.
    Positive,
    /// Between -0.05 and 0.05.
    Neutral,
    /// Compound score at most -0.05.
    Negative,
}

/// The `sentiment` field of an enriched document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sentiment {
    /// `positive`, `neutral` or `negative`.
    pub label: Label,
    /// VADER compound score in `[-1, 1]`, 4 decimals.
    pub score: f64,
    /// Words that counted positively (after negation).
    pub positive_words: usize,
    /// Words that counted negatively (after negation).
    pub negative_words: usize,
}

/// Kind of a named entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    /// A person.
    Person,
    /// A company, institution or international organisation.
    Organization,
    /// A country.
    Country,
    /// A city.
    City,
}

/// One entry of the `entities` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entity {
    /// The name as written in the text.
    pub text: String,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: EntityKind,
    /// Occurrences in the text.
    pub count: usize,
    /// ISO 3166-1 alpha-2 code of the country (cities and countries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}
