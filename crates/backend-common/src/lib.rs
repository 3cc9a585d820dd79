//! backend-common: the HTTP plumbing shared by the two backend services
//! (`api-generation`, `api-enrichment`). Each backend re-exports these modules
//! at its crate root (`api_generation::telemetry`, ...), so their paths did not
//! change when this code became a crate of its own.
//!
//! | module | concept |
//! |---|---|
//! | [`env`] | reading configuration from environment variables, with typed errors |
//! | [`error`] | [`error::ApiError`]: the JSON error body `{"error","message"}` and its status |
//! | [`json`] | [`json::ValidJson`]: JSON body extractor (415 / 413 / 400 with serde's message) |
//! | [`http`] | the finishing touches every router gets: body limit, JSON 404/405, probes' and metrics' plumbing, serve with graceful shutdown |
//! | [`telemetry`] | JSON logs (`LOG_LEVEL`), per-request access log and HTTP metrics |
//! | [`shutdown`] | the SIGINT/SIGTERM future |
//! | [`process`] | a backend's `main` and listening until a signal |
//! | `testing` | feature `test-support`, for the backends' tests: a backend in process or as a child process, metric reading |

pub mod env;
pub mod error;
pub mod http;
pub mod json;
pub mod process;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
