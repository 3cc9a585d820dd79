//! api-enrichment: validates, cleans (HTML, Unicode NFC, whitespace) and
//! enriches documents (language, counts, readability, keywords, sentiment,
//! named entities, optional external source), aggregated in one result, with
//! an optional Redis cache.
//!
//! The crate is a library with a thin binary (`src/main.rs`) so that tests can
//! start the real server on an ephemeral port with [`serve`].

// the HTTP plumbing shared with the other backend (crates/backend-common), at the
// crate root as before: `crate::error::ApiError`, `api_enrichment::telemetry`
pub use backend_common::{env, error, http, json, process, shutdown, telemetry};

pub mod app;
pub mod cache;
pub mod clean;
pub mod config;
pub mod document;
pub mod enrich;
pub mod entities;
pub mod external;
pub mod html;
pub mod kafka;
pub mod keywords;
pub mod language;
pub mod metrics;
pub mod sentiment;
pub mod stats;
pub mod stopwords;
pub mod workers;

pub use app::{router, serve, StartupError};
pub use config::Config;

/// Service name in logs and metrics.
pub const SERVICE: &str = "api-enrichment";
