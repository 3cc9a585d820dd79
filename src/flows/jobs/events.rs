//! `GET /api/v1/jobs/{job_id}/events`: a job's state changes as Server-Sent Events,
//! instead of polling its status. One event per state the job entered, in order
//! (`event: queued`, `generating`, `enriching`, then `done` or `failed`), those it
//! already passed first; a non-final event's data is `{"job_id", "status", "at"}`, the
//! final one's the whole job (as `GET` answers it: `result` or `error`). The stream
//! ends after the final event. Unknown ids (and another consumer's jobs) answer 404
//! before the stream, as the status route does.
//!
//! How changes are seen: a write this gateway makes (its workers, its Kafka tracker)
//! wakes the watchers at once; besides, the store is read every `JOB_EVENTS_POLL_MS`
//! (default 100 ms), which is how a Redis store shows the writes of other replicas.
//! (Redis keyspace notifications need `notify-keyspace-events` set on the server, and
//! pub/sub messages are lost while a subscriber reconnects; polling one hash needs
//! neither.) A stage entered and left between two reads is still sent: each stage
//! keeps its time in the job (`stages`).

use super::store::{JobView, Status, Stored};
use super::Jobs;
use crate::flows::sse::{self, EventSink, Gone};
use crate::flows::FlowAnswer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The states in the order a job enters them (`done` and `failed` both last).
const ORDER: [Status; 5] = [
    Status::Queued,
    Status::Generating,
    Status::Enriching,
    Status::Done,
    Status::Failed,
];

/// How long nothing changes before a keep-alive comment is sent, so that idle
/// connections stay open (the route's `sse_keepalive` sets another interval).
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// How a watch ended.
pub enum Watched {
    /// Nothing was written: answer this (404, 503).
    Answer(FlowAnswer),
    /// The stream was written to its end.
    Streamed,
    /// The client went away.
    Gone,
}

/// The events of the states in `view` not sent yet (`sent` of them were).
fn new_events(view: &JobView, state: Status, sent: &mut usize) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    let entered: Vec<Status> = ORDER
        .iter()
        .copied()
        .filter(|s| view.stages.contains_key(s.as_str()) || *s == state)
        .filter(|s| !s.is_final() || *s == state)
        .collect();
    for s in entered.iter().skip(*sent) {
        let data = if s.is_final() {
            serde_json::to_value(view).unwrap_or(Value::Null)
        } else {
            json!({
                "job_id": view.job_id,
                "status": s.as_str(),
                "at": view.stages.get(s.as_str()),
            })
        };
        out.push(sse::event(Some(s.as_str()), &data.to_string()));
    }
    *sent = entered.len().max(*sent);
    out
}

impl Jobs {
    /// Reads the job; `None`: 404 (unknown, malformed, or not this consumer's).
    async fn visible(
        &self,
        id: &str,
        consumer: Option<&str>,
    ) -> Result<Option<Stored>, FlowAnswer> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Ok(None);
        }
        match self.store.get(id).await {
            Ok(Some(j)) if j.owner.is_none() || j.owner.as_deref() == consumer => Ok(Some(j)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %e, "job store unavailable");
                Err(FlowAnswer::error(
                    503,
                    "job_store_unavailable",
                    "the job store cannot be reached",
                    None,
                )
                .with_error_type("job_store"))
            }
        }
    }

    /// Streams the job's state changes to `sink` until it is final.
    pub async fn watch(
        &self,
        id: &str,
        consumer: Option<&str>,
        sink: &mut dyn EventSink,
    ) -> Watched {
        let not_found =
            || Watched::Answer(FlowAnswer::error(404, "not_found", "no such job", None));
        let mut job = match self.visible(id, consumer).await {
            Ok(Some(j)) => j,
            Ok(None) => return not_found(),
            Err(a) => return Watched::Answer(a),
        };
        if sink.open().await.is_err() {
            return Watched::Gone;
        }
        let mut sent = 0;
        let keepalive = sink.keepalive().unwrap_or(KEEP_ALIVE_EVERY);
        let mut quiet_since = Instant::now();
        loop {
            for e in new_events(&job.view, job.state, &mut sent) {
                if sink.event(e).await.is_err() {
                    return Watched::Gone;
                }
                quiet_since = Instant::now();
            }
            if job.state.is_final() {
                return Watched::Streamed;
            }
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // a change between the last read and `enable` is caught by this read
            let fresh = self.visible(id, consumer).await;
            match fresh {
                Ok(Some(j))
                    if j.state != job.state || j.view.stages.len() != job.view.stages.len() =>
                {
                    job = j;
                    continue;
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    let gone = FlowAnswer::error(404, "not_found", "the job expired", None);
                    return self.end_with(sink, gone).await;
                }
                Err(a) => return self.end_with(sink, a).await,
            }
            let wait = self
                .events_poll
                .min(keepalive.saturating_sub(quiet_since.elapsed()));
            let _ = tokio::time::timeout(wait, changed).await;
            if quiet_since.elapsed() >= keepalive {
                if sink
                    .event(bytes::Bytes::from_static(sse::KEEP_ALIVE))
                    .await
                    .is_err()
                {
                    return Watched::Gone;
                }
                quiet_since = Instant::now();
            }
            match self.visible(id, consumer).await {
                Ok(Some(j)) => job = j,
                Ok(None) => {
                    let gone = FlowAnswer::error(404, "not_found", "the job expired", None);
                    return self.end_with(sink, gone).await;
                }
                Err(a) => return self.end_with(sink, a).await,
            }
        }
    }

    async fn end_with(&self, sink: &mut dyn EventSink, a: FlowAnswer) -> Watched {
        match sink.fail(a).await {
            Ok(()) => Watched::Streamed,
            Err(Gone) => Watched::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn view(stages: &[&str], status: &'static str) -> JobView {
        JobView {
            job_id: "j".into(),
            status,
            stages: stages
                .iter()
                .map(|s| ((*s).to_string(), "t".to_string()))
                .collect::<BTreeMap<_, _>>(),
            result: None,
            error: None,
            callback: None,
        }
    }

    #[test]
    fn each_state_is_sent_once_in_order_even_when_skipped_between_reads() {
        let mut sent = 0;
        let e = new_events(&view(&["queued"], "queued"), Status::Queued, &mut sent);
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with(b"event: queued\n"));
        assert!(new_events(&view(&["queued"], "queued"), Status::Queued, &mut sent).is_empty());
        // generating and enriching both happened since the last read
        let v = view(&["queued", "generating", "enriching", "done"], "done");
        let e = new_events(&v, Status::Done, &mut sent);
        let names: Vec<_> = e
            .iter()
            .map(|b| {
                String::from_utf8_lossy(b)
                    .lines()
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            ["event: generating", "event: enriching", "event: done"]
        );
        assert!(String::from_utf8_lossy(&e[2]).contains("\"status\":\"done\""));
    }
}
