//! The embedded workers: take jobs from the in-process queue and run them, at most
//! `JOB_WORKERS` at once, through the live table's pools; record each stage
//! (`generating`, `enriching`, then `done` with the result or `failed` with the
//! error), then deliver the webhook. A stage whose pool has no target that can take
//! it (all down, breakers open) is waited for, up to 60 s, before the job fails.
//!
//! With the Redis store, a worker takes the job's lease (`JOB_LEASE_SECONDS`, renewed
//! while it runs) before running it, then checks its status: a job leased by another
//! worker of any replica, or already final, is skipped, so one job runs at a time and
//! a finished one never again. At start, and every `JOB_RECOVERY_SECONDS` while this
//! replica's queue is empty, the unfinished jobs submitted at least that long ago are
//! queued again: those a killed replica had queued or was running (once its lease ran
//! out) are run by the survivors.

use super::store::Status;
use super::{callback, Jobs, Queued};
use crate::flows::pipeline::{run_steps, Origin, Step, StepHook};
use crate::upstream::Pool;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a job waits for a pool that has no target that can take it.
const UNAVAILABLE_PATIENCE: Duration = Duration::from_secs(60);

/// Finds a pool of the live table by upstream name.
pub type Pools = Arc<dyn Fn(&str) -> Option<Arc<Pool>> + Send + Sync>;

/// Runs the workers until the queue closes or `stop` resolves.
pub async fn run(jobs: Arc<Jobs>, pools: Pools, stop: impl std::future::Future<Output = ()>) {
    let Some(mut rx) = jobs.take_receiver() else {
        return;
    };
    recover(&jobs, Duration::ZERO).await;
    let sweeper = {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(jobs.recovery).await;
                if jobs.waiting.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                    recover(&jobs, jobs.recovery).await;
                }
            }
        })
    };
    let _stop_sweeper = AbortOnDrop(sweeper);
    let slots = Arc::new(Semaphore::new(jobs.workers));
    tokio::pin!(stop);
    loop {
        let q = tokio::select! {
            q = rx.recv() => match q { Some(q) => q, None => return },
            () = &mut stop => return,
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        jobs.dequeued();
        let (jobs, pools) = (jobs.clone(), pools.clone());
        tokio::spawn(async move {
            leased(&jobs, &pools, q).await;
            drop(permit);
        });
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a job under its lease (Redis store), renewed while it runs.
async fn leased(jobs: &Arc<Jobs>, pools: &Pools, q: Queued) {
    match jobs.store.claim(&q.id, jobs.lease).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            // left pending: a later recovery sweep runs it
            tracing::warn!(job_id = q.id, error = %e, "cannot take the job's lease");
            return;
        }
    }
    // only a shared store has leases to keep alive
    let renew = (jobs.store.kind() == "redis").then(|| {
        let (jobs, id) = (jobs.clone(), q.id.clone());
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(jobs.lease / 3).await;
                if let Err(e) = jobs.store.renew(&id, jobs.lease).await {
                    tracing::warn!(job_id = id, error = %e, "cannot renew the job's lease");
                }
            }
        }))
    });
    let id = q.id.clone();
    run_job(jobs, pools, q).await;
    drop(renew);
    if let Err(e) = jobs.store.release(&id).await {
        tracing::warn!(job_id = id, error = %e, "cannot release the job's lease");
    }
}

/// Queues again the unfinished jobs submitted at least `min_age` ago (Redis store).
async fn recover(jobs: &Jobs, min_age: Duration) {
    let ids = match jobs.store.unfinished(min_age).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list unfinished jobs");
            return;
        }
    };
    let mut n = 0usize;
    for id in ids {
        if let Ok(Some(j)) = jobs.store.get(&id).await {
            if let (true, Some(spec)) = (super::runnable(j.state), j.spec) {
                jobs.enqueue(Queued { id, spec });
                n += 1;
            }
        }
    }
    if n > 0 {
        tracing::info!(jobs = n, "unfinished jobs queued again");
    }
}

struct Stages<'a> {
    jobs: &'a Jobs,
    id: &'a str,
    /// The stage counted in `gateway_jobs_in_flight` now.
    current: std::sync::Mutex<Option<&'static str>>,
}

impl Stages<'_> {
    fn enter(&self, stage: Option<&'static str>) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let g = &self.jobs.metrics.in_flight;
        if let Some(prev) = cur.take() {
            g.with_label_values(&[prev]).dec();
        }
        if let Some(s) = stage {
            g.with_label_values(&[s]).inc();
        }
        *cur = stage;
    }
}

impl Drop for Stages<'_> {
    fn drop(&mut self) {
        self.enter(None);
    }
}

#[async_trait::async_trait]
impl StepHook for Stages<'_> {
    async fn starting(&self, index: usize) {
        let s = if index == 0 {
            Status::Generating
        } else {
            Status::Enriching
        };
        self.enter(Some(s.as_str()));
        record(self.jobs, self.id, s, None, None).await;
    }
}

/// Store writes are retried a few times: a job's state must not be lost to a blip.
async fn record(jobs: &Jobs, id: &str, s: Status, result: Option<&Value>, error: Option<&str>) {
    for attempt in 0..5u32 {
        match jobs.store.advance(id, s, result, error).await {
            Ok(()) => {
                jobs.changed.notify_waiters();
                return;
            }
            Err(e) => {
                tracing::warn!(job_id = id, status = s.as_str(), attempt, error = %e, "cannot record the job's state");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
}

async fn run_job(jobs: &Jobs, pools: &Pools, q: Queued) {
    let id = q.id.as_str();
    if let Ok(Some(j)) = jobs.store.get(id).await {
        if !super::runnable(j.state) {
            return;
        }
    }
    let spec = &q.spec;
    let mut steps = Vec::with_capacity(2);
    for (name, st) in [
        ("generation", &spec.generation),
        ("enrichment", &spec.enrichment),
    ] {
        match pools(&st.upstream) {
            Some(pool) => steps.push(Step {
                name: name.to_string(),
                upstream: st.upstream.clone(),
                pool,
                path: st.path.clone(),
            }),
            None => {
                let msg = format!("upstream `{}` is no longer configured", st.upstream);
                record(jobs, id, Status::Failed, None, Some(&msg)).await;
                jobs.metrics.jobs.with_label_values(&["failed"]).inc();
                return finish(jobs, &q).await;
            }
        }
    }
    let body = Bytes::from(spec.request.to_string());
    let hook = Stages {
        jobs,
        id,
        current: std::sync::Mutex::new(None),
    };
    // an accepted job waits out a pool with no target (a backend restarting, breakers
    // open) for a while instead of failing at once
    let deadline = Instant::now() + UNAVAILABLE_PATIENCE;
    let origin = Origin {
        request_id: &spec.request_id,
        traceparent: None,
    };
    loop {
        match run_steps(&jobs.clients, &steps, body.clone(), origin, true, &hook).await {
            Ok(result) => {
                record(jobs, id, Status::Done, Some(&result), None).await;
                jobs.metrics.jobs.with_label_values(&["done"]).inc();
            }
            Err(e) => match e.unavailable_for() {
                Some(wait) if Instant::now() + wait < deadline => {
                    tokio::time::sleep(wait.max(Duration::from_millis(200))).await;
                    continue;
                }
                _ => {
                    record(jobs, id, Status::Failed, None, Some(&e.message())).await;
                    jobs.metrics.jobs.with_label_values(&["failed"]).inc();
                }
            },
        }
        break;
    }
    finish(jobs, &q).await;
}

/// Delivers the webhook of a finished job.
async fn finish(jobs: &Jobs, q: &Queued) {
    if let Some(cb) = &q.spec.callback {
        notify(jobs, &q.id, cb).await;
    }
}

/// POSTs the final job to its webhook and records the delivery (both modes).
pub(crate) async fn notify(jobs: &Jobs, id: &str, cb: &callback::CallbackSpec) {
    let view = match jobs.store.get(id).await {
        Ok(Some(j)) => j.view,
        _ => return,
    };
    let body = Bytes::from(serde_json::to_vec(&view).unwrap_or_default());
    let rec = callback::deliver(cb, id, body).await;
    if let Some(status) = rec["status"].as_str() {
        jobs.metrics.webhooks.with_label_values(&[status]).inc();
    }
    if let Err(e) = jobs.store.set_callback(id, &rec).await {
        tracing::warn!(job_id = id, error = %e, "cannot record the webhook delivery");
    }
}
