//! `api-enrichment`: see the library docs and `config` for the environment.

use std::process::ExitCode;

use api_enrichment::{http, router, shutdown, telemetry, Config, SERVICE};

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(warning) = telemetry::init_logging() {
        tracing::warn!(service = SERVICE, "{warning}");
    }
    match run().await {
        Ok(()) => {
            tracing::info!(service = SERVICE, operation = "shutdown", "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(service = SERVICE, operation = "startup", "{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let router = router(&config)?;
    // with KAFKA_BOOTSTRAP_SERVERS, the Kafka stage runs beside the HTTP API
    api_enrichment::kafka::spawn(&router)?;
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    let address = listener.local_addr()?.to_string();
    tracing::info!(
        service = SERVICE,
        operation = "startup",
        address,
        "listening"
    );
    http::serve(listener, router, shutdown::signal(SERVICE)).await?;
    Ok(())
}
