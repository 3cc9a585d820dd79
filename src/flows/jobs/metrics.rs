//! Async job metrics: `gateway_jobs_total{status}` (`accepted`, `done`, `failed`),
//! `gateway_jobs_waiting` (queued, not yet taken by a worker),
//! `gateway_jobs_in_flight{stage}` (`queued`, `generating`, `enriching`: jobs of this
//! instance in each stage now) and
//! `gateway_job_webhooks_total{status}` (`delivered`, `failed`, `refused`).

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct JobMetrics {
    pub jobs: IntCounterVec,
    pub waiting: IntGauge,
    pub in_flight: IntGaugeVec,
    pub webhooks: IntCounterVec,
}

impl JobMetrics {
    /// Creates the collectors; registers them when a registry is given.
    pub fn new(registry: Option<&Registry>) -> Result<Self, prometheus::Error> {
        let m = Self {
            jobs: IntCounterVec::new(
                Opts::new(
                    "gateway_jobs_total",
                    "Async jobs by outcome (accepted, done, failed)",
                ),
                &["status"],
            )?,
            waiting: IntGauge::new("gateway_jobs_waiting", "Async jobs queued, not yet running")?,
            in_flight: IntGaugeVec::new(
                Opts::new(
                    "gateway_jobs_in_flight",
                    "Async jobs of this instance by stage (queued, generating, enriching)",
                ),
                &["stage"],
            )?,
            webhooks: IntCounterVec::new(
                Opts::new(
                    "gateway_job_webhooks_total",
                    "Job webhook deliveries by outcome (delivered, failed, refused)",
                ),
                &["status"],
            )?,
        };
        if let Some(r) = registry {
            r.register(Box::new(m.jobs.clone()))?;
            r.register(Box::new(m.waiting.clone()))?;
            r.register(Box::new(m.in_flight.clone()))?;
            r.register(Box::new(m.webhooks.clone()))?;
        }
        Ok(m)
    }
}
