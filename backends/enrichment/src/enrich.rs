//! The enrichment pipeline: look the request up in the Redis cache (when
//! `REDIS_URL` is set), clean, validate, then run the local analyses
//! concurrently on the analysis threads ([`crate::workers`]) and the external
//! source, and aggregate everything in one [`EnrichedDocument`].
//!
//! Sources, in the order of the `sources` list: `cleaning`, `language`,
//! `statistics` (word, sentence and character counts), `readability` (Flesch
//! reading ease; skipped unless the language is `en`), `keywords` (top-N,
//! `ENRICHMENT_KEYWORDS`, default 10), `sentiment` (VADER lexicon; skipped
//! when the language is detected as another than English), `entities`
//! (gazetteer of cities, countries, organisations and people), `external`
//! (skipped when `EXTERNAL_API_URL` is unset; a failure degrades, never
//! fails, the request). The language is detected first (readability and
//! sentiment depend on it); statistics with readability, keywords, sentiment
//! and entities then run in parallel (`rayon::join`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cache::{Lookup, RedisCache};
use crate::clean::{clean, clean_line, CleaningReport};
use crate::document::{validate, DocumentIn, EnrichedDocument, SourceReport, SourceStatus};
use crate::entities::{self, Entity};
use crate::error::ApiError;
use crate::external::{ExternalSource, Outcome};
use crate::keywords::{self, Keyword};
use crate::language::{self, Detection, UNDETERMINED};
use crate::sentiment::{self, Sentiment};
use crate::stats::{self, Readability};
use crate::workers::Workers;

/// Settings and clients of the pipeline.
#[derive(Debug, Clone)]
pub struct Enricher {
    /// `DATA_VALIDATION_STRICT`.
    pub strict: bool,
    /// Keywords returned (`ENRICHMENT_KEYWORDS`).
    pub keyword_limit: usize,
    /// The external source, when configured.
    pub external: Option<ExternalSource>,
    /// The analysis threads (`ENRICHMENT_WORKERS`).
    pub workers: Workers,
    /// The Redis result cache, when `REDIS_URL` is set.
    pub cache: Option<RedisCache>,
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
    /// Lexicon sentiment, unless the language is known not to be English.
    pub sentiment: Option<Sentiment>,
    /// Named entities found.
    pub entities: Vec<Entity>,
    /// One report per analysis: language, statistics, readability, keywords,
    /// sentiment, entities.
    pub reports: Vec<SourceReport>,
}

impl Enricher {
    /// Runs the whole pipeline on one document, through the cache when set.
    pub async fn enrich(&self, doc: DocumentIn) -> Result<EnrichedDocument, ApiError> {
        let started = Instant::now();
        let Some(cache) = &self.cache else {
            return self.compute(doc, started).await;
        };
        let key = RedisCache::key(&doc, &self.settings());
        if let Lookup::Hit(mut hit) = cache.get(&key).await {
            hit.cached = true;
            hit.duration_ms = millis(started.elapsed());
            return Ok(*hit);
        }
        let enriched = self.compute(doc, started).await?;
        if !enriched.degraded {
            cache.put(&key, &enriched).await;
        }
        Ok(enriched)
    }

    /// The settings that change an answer (part of the cache key).
    fn settings(&self) -> serde_json::Value {
        json!({
            "strict": self.strict,
            "keywords": self.keyword_limit,
            "external": self.external.as_ref().map(ExternalSource::url),
        })
    }

    async fn compute(
        &self,
        doc: DocumentIn,
        started: Instant,
    ) -> Result<EnrichedDocument, ApiError> {
        let lost = |e: crate::workers::WorkerLost| ApiError::internal(e.to_string());
        let (raw_text, raw_title) = (doc.text.clone(), doc.title.clone());
        let (text, cleaning, title) = self
            .workers
            .run(move || -> (String, CleaningReport, Option<String>) {
                let (text, cleaning) = clean(&raw_text);
                (text, cleaning, raw_title.as_deref().map(clean_line))
            })
            .await
            .map_err(lost)?;
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
            self.workers.run(move || analyse(&text, limit))
        };
        let (local, (outcome, external_time)) = tokio::join!(local, external);
        let local = local.map_err(lost)?;

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
            sentiment: local.sentiment,
            entities: local.entities,
            cleaning,
            external,
            sources,
            warnings,
            degraded,
            cached: false,
            duration_ms: millis(started.elapsed()),
        })
    }
}

/// Runs the local analyses on a cleaned text: the language first, then the
/// others in parallel (on the current rayon pool).
pub fn analyse(text: &str, keyword_limit: usize) -> LocalAnalysis {
    let t = Instant::now();
    let words = stats::words(text);
    let language = language::detect(&words);
    let language_report = report("language", SourceStatus::Ok, None, t.elapsed());

    let ((counts, (keywords, keywords_report)), ((sentiment, sentiment_report), entities)) =
        rayon::join(
            || {
                rayon::join(
                    || statistics(text, &words, &language),
                    || {
                        let t = Instant::now();
                        let keywords = keywords::top(&words, keyword_limit);
                        let r = report("keywords", SourceStatus::Ok, None, t.elapsed());
                        (keywords, r)
                    },
                )
            },
            || {
                rayon::join(
                    || sentiment_of(&words, &language),
                    || {
                        let t = Instant::now();
                        let found = entities::find(text);
                        (
                            found,
                            report("entities", SourceStatus::Ok, None, t.elapsed()),
                        )
                    },
                )
            },
        );
    let (entities, entities_report) = entities;
    let mut reports = vec![language_report];
    reports.extend(counts.reports);
    reports.extend([keywords_report, sentiment_report, entities_report]);

    LocalAnalysis {
        language,
        word_count: words.len(),
        sentence_count: counts.sentence_count,
        character_count: counts.character_count,
        readability: counts.readability,
        keywords,
        sentiment,
        entities,
        reports,
    }
}

struct Counts {
    sentence_count: usize,
    character_count: usize,
    readability: Option<Readability>,
    reports: [SourceReport; 2],
}

/// The `statistics` and `readability` analyses.
fn statistics(text: &str, words: &[String], language: &Detection) -> Counts {
    let t = Instant::now();
    let sentence_count = stats::sentence_count(text);
    let character_count = text.chars().count();
    let statistics = report("statistics", SourceStatus::Ok, None, t.elapsed());

    let t = Instant::now();
    let readability = if language.code == "en" {
        stats::flesch(words, sentence_count)
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
    Counts {
        sentence_count,
        character_count,
        readability,
        reports: [
            statistics,
            report("readability", status, skip_reason, t.elapsed()),
        ],
    }
}

/// The `sentiment` analysis: English lexicon, so skipped for texts detected
/// as French, Spanish or German (run for `en` and `und`).
fn sentiment_of(words: &[String], language: &Detection) -> (Option<Sentiment>, SourceReport) {
    let t = Instant::now();
    let code = language.code.as_str();
    if code != "en" && code != UNDETERMINED {
        let reason = format!("the sentiment lexicon is English (language: {code})");
        return (
            None,
            report(
                "sentiment",
                SourceStatus::Skipped,
                Some(reason),
                t.elapsed(),
            ),
        );
    }
    let sentiment = sentiment::score(words);
    (
        Some(sentiment),
        report("sentiment", SourceStatus::Ok, None, t.elapsed()),
    )
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
