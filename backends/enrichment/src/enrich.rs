//! The enrichment pipeline: clean, validate, then run the local analyses and
//! the external source concurrently, and aggregate everything in one
//! [`EnrichedDocument`].
//!
//! Sources, in the order of the `sources` list: `cleaning`, `language`,
//! `statistics` (word, sentence and character counts), `readability` (Flesch
//! reading ease; skipped unless the language is `en`), `keywords` (top-N,
//! `ENRICHMENT_KEYWORDS`, default 10), `external` (skipped when
//! `EXTERNAL_API_URL` is unset; a failure degrades, never fails, the request).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::clean::{clean, clean_line};
use crate::document::{validate, DocumentIn, EnrichedDocument, SourceReport, SourceStatus};
use crate::error::ApiError;
use crate::external::{ExternalSource, Outcome};
use crate::keywords::{self, Keyword};
use crate::language::{self, Detection};
use crate::stats::{self, Readability};

/// Settings and clients of the pipeline.
#[derive(Debug, Clone)]
pub struct Enricher {
    /// `DATA_VALIDATION_STRICT`.
    pub strict: bool,
    /// Keywords returned (`ENRICHMENT_KEYWORDS`).
    pub keyword_limit: usize,
    /// The external source, when configured.
    pub external: Option<ExternalSource>,
}

/// Results of the local analyses of a cleaned text.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalAnalysis {
    /// Detected language.
    pub language: Detection,
    /// Word count.
    pub word_count: usize,
    /// Sentence count.
    pub sentence_count: usize,
    /// Character count.
    pub character_count: usize,
    /// Flesch reading ease, English only.
    pub readability: Option<Readability>,
    /// Top keywords.
    pub keywords: Vec<Keyword>,
    /// One report per analysis: language, statistics, readability, keywords.
    pub reports: Vec<SourceReport>,
}

impl Enricher {
    /// Runs the whole pipeline on one document.
    pub async fn enrich(&self, doc: DocumentIn) -> Result<EnrichedDocument, ApiError> {
        let started = Instant::now();
        let (text, cleaning) = clean(&doc.text);
        let title = doc.title.as_deref().map(clean_line);
        let cleaning_report = report("cleaning", SourceStatus::Ok, None, started.elapsed());
        let warnings = validate(&doc, &text, title.as_deref(), self.strict)?;
        let id = doc.id.map(|id| id.trim().to_owned());
        let metadata = doc.metadata.unwrap_or_default();

        let external = async {
            match &self.external {
                None => (Outcome::Skipped, Duration::ZERO),
                Some(source) => {
                    let payload = json!({
                        "id": id, "title": title, "text": text, "metadata": metadata,
                    });
                    source.fetch(&payload).await
                }
            }
        };
        let local = {
            let (text, limit) = (text.clone(), self.keyword_limit);
            tokio::task::spawn_blocking(move || analyse(&text, limit))
        };
        let (local, (outcome, external_time)) = tokio::join!(local, external);
        let local = local.map_err(|e| ApiError::internal(format!("local analysis failed: {e}")))?;

        let (external, external_report) = match outcome {
            Outcome::Skipped => (
                None,
                report(
                    "external",
                    SourceStatus::Skipped,
                    Some("EXTERNAL_API_URL is not set".to_owned()),
                    external_time,
                ),
            ),
            Outcome::Ok(value) => (
                Some(value),
                report("external", SourceStatus::Ok, None, external_time),
            ),
            Outcome::Failed(reason) => (
                None,
                report(
                    "external",
                    SourceStatus::Failed,
                    Some(reason),
                    external_time,
                ),
            ),
        };
        let mut sources = vec![cleaning_report];
        sources.extend(local.reports);
        sources.push(external_report);
        let degraded = sources.iter().any(|s| s.status == SourceStatus::Failed);

        Ok(EnrichedDocument {
            id,
            title,
            text,
            metadata,
            language: local.language.code,
            language_confidence: local.language.confidence,
            word_count: local.word_count,
            sentence_count: local.sentence_count,
            character_count: local.character_count,
            readability: local.readability,
            keywords: local.keywords,
            cleaning,
            external,
            sources,
            warnings,
            degraded,
            duration_ms: millis(started.elapsed()),
        })
    }
}

/// Runs the local analyses on a cleaned text.
pub fn analyse(text: &str, keyword_limit: usize) -> LocalAnalysis {
    let mut reports = Vec::with_capacity(4);

    let t = Instant::now();
    let words = stats::words(text);
    let language = language::detect(&words);
    reports.push(report("language", SourceStatus::Ok, None, t.elapsed()));

    let t = Instant::now();
    let sentence_count = stats::sentence_count(text);
    let character_count = text.chars().count();
    reports.push(report("statistics", SourceStatus::Ok, None, t.elapsed()));

    let t = Instant::now();
    let readability = if language.code == "en" {
        stats::flesch(&words, sentence_count)
    } else {
        None
    };
    let skip_reason = match (&readability, language.code.as_str()) {
        (Some(_), _) => None,
        (None, "en") => Some("no words".to_owned()),
        (None, code) => Some(format!(
            "Flesch reading ease is computed for English only (language: {code})"
        )),
    };
    let status = if readability.is_some() {
        SourceStatus::Ok
    } else {
        SourceStatus::Skipped
    };
    reports.push(report("readability", status, skip_reason, t.elapsed()));

    let t = Instant::now();
    let keywords = keywords::top(&words, keyword_limit);
    reports.push(report("keywords", SourceStatus::Ok, None, t.elapsed()));

    LocalAnalysis {
        language,
        word_count: words.len(),
        sentence_count,
        character_count,
        readability,
        keywords,
        reports,
    }
}

fn report(
    name: &str,
    status: SourceStatus,
    detail: Option<String>,
    took: Duration,
) -> SourceReport {
    SourceReport {
        name: name.to_owned(),
        status,
        detail,
        duration_ms: millis(took),
    }
}

/// A duration in milliseconds, 3 decimals.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
