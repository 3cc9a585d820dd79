//! Prometheus collectors of the generation service (names from the SPEC).
//!
//! - `generation_requests_total{model,type}`: generation requests answered with
//!   a text; `type` is the channel, `sync` for `POST /generate`.
//! - `generation_duration_seconds`: time to answer a generation request
//!   (cache hits included), queue wait included.
//! - `generation_cache_hits_total`, `generation_cache_misses_total`: lookups of
//!   cacheable requests (those with a `seed`).
//! - `generation_queue_size{priority}`: requests waiting for a slot, per priority.
//! - `generation_queue_wait_time_seconds`: time from arrival to admission.
//! - `generation_stream_events_total`: token stream events sent (pieces and the last).
//! - `generation_streams_total{outcome}`: token streams ended, `completed` or
//!   `cancelled` (the client went away before the last event).

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::queue::Priority;

/// Buckets for the generation and queue-wait histograms, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// All collectors of the service.
#[derive(Clone)]
pub struct GenerationMetrics {
    /// `generation_requests_total{model,type}`.
    pub requests: IntCounterVec,
    /// `generation_duration_seconds`.
    pub duration: Histogram,
    /// `generation_cache_hits_total`.
    pub cache_hits: IntCounter,
    /// `generation_cache_misses_total`.
    pub cache_misses: IntCounter,
    /// Queue gauges and wait histogram, shared with the admission gate.
    pub queue: QueueMetrics,
    /// `generation_stream_events_total`.
    pub stream_events: IntCounter,
    /// `generation_streams_total{outcome}`.
    pub streams: IntCounterVec,
}

/// The admission queue's collectors.
#[derive(Clone)]
pub struct QueueMetrics {
    /// `generation_queue_size{priority}`.
    pub size: IntGaugeVec,
    /// `generation_queue_wait_time_seconds`.
    pub wait: Histogram,
}

impl GenerationMetrics {
    /// Creates every collector and registers it in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new("generation_requests_total", "Generation requests answered"),
            &["model", "type"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "generation_duration_seconds",
                "Time to answer a generation request",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let cache_hits = IntCounter::new(
            "generation_cache_hits_total",
            "Seeded requests answered from the cache",
        )?;
        let cache_misses = IntCounter::new(
            "generation_cache_misses_total",
            "Seeded requests not found in the cache",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(cache_hits.clone()))?;
        registry.register(Box::new(cache_misses.clone()))?;
        let stream_events =
            IntCounter::new("generation_stream_events_total", "Token stream events sent")?;
        let streams = IntCounterVec::new(
            Opts::new(
                "generation_streams_total",
                "Token streams ended: completed, or cancelled by the client going away",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(stream_events.clone()))?;
        registry.register(Box::new(streams.clone()))?;
        for outcome in ["completed", "cancelled"] {
            streams.with_label_values(&[outcome]).inc_by(0);
        }
        Ok(Self {
            stream_events,
            streams,
            requests,
            duration,
            cache_hits,
            cache_misses,
            queue: QueueMetrics::new(registry)?,
        })
    }
}

impl QueueMetrics {
    /// Creates the queue collectors and registers them in `registry`; the
    /// gauge starts at 0 for every priority.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let size = IntGaugeVec::new(
            Opts::new(
                "generation_queue_size",
                "Requests waiting for a generation slot",
            ),
            &["priority"],
        )?;
        let wait = Histogram::with_opts(
            HistogramOpts::new(
                "generation_queue_wait_time_seconds",
                "Time a request waited for a generation slot",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(size.clone()))?;
        registry.register(Box::new(wait.clone()))?;
        for priority in Priority::BY_URGENCY {
            size.with_label_values(&[priority.as_str()]).set(0);
        }
        Ok(Self { size, wait })
    }
}
