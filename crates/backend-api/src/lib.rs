//! backend-api: the request and response bodies of the two backend services,
//! with their JSON Schemas (`schemars`), and nothing else: no HTTP, no runtime.
//!
//! The backends (`api-generation`, `api-enrichment`) serve these types, and the
//! gateway describes them in its OpenAPI document (`src/openapi/schemas.rs`)
//! without depending on the backend crates themselves. Each backend re-exports
//! the types from the module that used to define them (`api_generation::api::
//! GenerateRequest`, `api_enrichment::document::EnrichedDocument`, ...).

pub mod enrichment;
pub mod generation;
