//! JSON logs, one object per line on stdout, written by a background thread so that
//! request handling never waits on the terminal or a pipe. When the writer falls
//! behind, lines are dropped rather than slowing the proxy (tracing-appender's
//! non-blocking writer, lossy mode).

use tracing_subscriber::EnvFilter;

/// Keep this alive for the life of the process: dropping it flushes pending lines.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the global JSON logger at `level` (`error`..`trace`, or a full filter).
pub fn init(service: &'static str, level: &str) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish();
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("a logger was already installed");
    }
    tracing::info!(service, "logging started");
    guard
}
