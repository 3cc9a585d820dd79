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

pub use backend_api::enrichment::{
    DocumentIn, EnrichedDocument, SourceReport, SourceStatus, KNOWN_FIELDS,
};

use crate::error::ApiError;

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
