//! Metrics, logs and trace context.

pub mod access;
pub mod logging;
pub mod metrics;
pub mod otel;
pub mod series;
pub mod trace;

pub use metrics::Metrics;
