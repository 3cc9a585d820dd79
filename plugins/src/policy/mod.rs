//! Policy plugins: rate limiting, load shedding (concurrency), body limits, CORS,
//! header transforms, client address filters, request validation and response
//! compression.

pub mod body_limit;
pub mod cache;
pub mod client_addr;
pub mod compress;
pub mod concurrency;
pub mod cors;
pub mod headers;
pub mod ip_filter;
pub(crate) mod limit_key;
pub mod mirror;
pub mod rate_limit;
pub mod token_limit;
pub mod units;
pub mod validate;
