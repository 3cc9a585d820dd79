//! api-generation: text generation from a word-level trigram model, behind a
//! TTL result cache and a priority admission queue, on dedicated generation
//! threads. `api-generation train CORPUS -o MODEL` writes a model file
//! ([`cli`]).
//!
//! The crate is a library with a thin binary (`src/main.rs`) so that tests can
//! start the real server on an ephemeral port with [`serve`].

// the HTTP plumbing shared with the other backend (crates/backend-common), at the
// crate root as before: `crate::error::ApiError`, `api_generation::telemetry`
pub use backend_common::{env, error, http, json, process, shutdown, telemetry};

pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod kafka;
pub mod metrics;
pub mod model;
pub mod pool;
pub mod prng;
pub mod queue;
pub mod stream;
pub mod tokenizer;

pub use app::{router, serve, StartupError};
pub use config::Config;

/// Service name in logs and metrics.
pub const SERVICE: &str = "api-generation";
