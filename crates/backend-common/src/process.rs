//! A backend's process: its `main` (logging, run, exit code) and listening on its
//! address until SIGINT/SIGTERM, the same for both services.

use std::future::Future;
use std::process::ExitCode;

use axum::Router;

/// What a backend's start-up can fail with (configuration, model, port...).
pub type StartError = Box<dyn std::error::Error>;

/// Runs a backend's `main`: JSON logging, then `run`; logs how it ended and gives the
/// exit code.
pub async fn main(
    service: &'static str,
    run: impl Future<Output = Result<(), StartError>>,
) -> ExitCode {
    if let Some(warning) = crate::telemetry::init_logging() {
        tracing::warn!(service, "{warning}");
    }
    match run.await {
        Ok(()) => {
            tracing::info!(service, operation = "shutdown", "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(service, operation = "startup", "{e}");
            ExitCode::FAILURE
        }
    }
}

/// Listens on `host:port`, logs the address, and serves `router` until SIGINT or
/// SIGTERM, then waits for requests in flight.
pub async fn listen_and_serve(
    service: &'static str,
    host: &str,
    port: u16,
    router: Router,
) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
    let address = listener.local_addr()?.to_string();
    tracing::info!(service, operation = "startup", address, "listening");
    crate::http::serve(listener, router, crate::shutdown::signal(service)).await?;
    Ok(())
}
