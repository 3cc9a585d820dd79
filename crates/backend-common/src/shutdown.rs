//! Graceful shutdown trigger.

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM. Axum then stops
/// accepting connections and waits for in-flight requests to finish.
/// If a handler cannot be installed, that signal is logged and ignored.
pub async fn signal(service: &'static str) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(service, error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(e) => {
                tracing::warn!(service, error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    let name = tokio::select! {
        () = ctrl_c => "SIGINT",
        () = terminate => "SIGTERM",
    };
    tracing::info!(
        service,
        operation = "shutdown",
        signal = name,
        "shutdown signal received; draining in-flight requests"
    );
}
