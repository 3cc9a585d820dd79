//! The token stream of `POST /generate` with `"stream": true`: Server-Sent Events, one
//! per token whose JSON `data` is `{"text": <piece>}` (the pieces joined are the
//! unstreamed answer's `text` for the same seed), then one `{"done": true, "tokens",
//! "model", "seed", "duration_ms", "cached"}`. `GENERATION_TOKEN_DELAY_MS` paces the
//! events. A client that goes away ends the stream: nothing more is sent, the log
//! says how far it got, and `generation_streams_total{outcome="cancelled"}` counts it
//! (`generation_stream_events_total` counts the events sent).

use crate::api::GenerateResponse;
use crate::app::AppState;
use crate::metrics::GenerationMetrics;
use axum::response::sse::{Event, KeepAlive, Sse};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Logs and counts a stream that ended before its last event (the client went away).
struct Progress {
    sent: Arc<AtomicUsize>,
    total: usize,
    metrics: GenerationMetrics,
}

impl Drop for Progress {
    fn drop(&mut self) {
        let sent = self.sent.load(Ordering::Relaxed);
        let outcome = if sent < self.total {
            tracing::info!(
                sent,
                total = self.total,
                "token stream cancelled: the client went away"
            );
            "cancelled"
        } else {
            "completed"
        };
        self.metrics.streams.with_label_values(&[outcome]).inc();
    }
}

/// The event stream of one answer.
pub fn events(
    state: &AppState,
    answer: GenerateResponse,
    pieces: Vec<String>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let delay = state.token_delay();
    let total = pieces.len() + 1;
    let sent = Arc::new(AtomicUsize::new(0));
    let progress = Progress {
        sent: sent.clone(),
        total,
        metrics: state.metrics().clone(),
    };
    let last = serde_json::json!({
        "done": true,
        "tokens": answer.tokens,
        "model": answer.model,
        "seed": answer.seed,
        "duration_ms": answer.duration_ms,
        "cached": answer.cached,
    });
    let items: Vec<serde_json::Value> = pieces
        .into_iter()
        .map(|p| serde_json::json!({ "text": p }))
        .chain(std::iter::once(last))
        .collect();
    let stream = async_stream(items, delay, sent, progress);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The events in order, `delay` apart; counts what was sent.
fn async_stream(
    items: Vec<serde_json::Value>,
    delay: Duration,
    sent: Arc<AtomicUsize>,
    progress: Progress,
) -> impl futures::Stream<Item = Result<Event, Infallible>> {
    let state = (items.into_iter(), sent, progress, true);
    futures::stream::unfold(state, move |(mut it, sent, progress, first)| async move {
        let item = it.next()?;
        if !first && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        sent.fetch_add(1, Ordering::Relaxed);
        progress.metrics.stream_events.inc();
        let event = Event::default().data(item.to_string());
        Some((Ok(event), (it, sent, progress, false)))
    })
}
