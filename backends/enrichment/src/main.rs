//! `api-enrichment`: see the library docs and `config` for the environment.

use std::process::ExitCode;

use api_enrichment::{process, router, Config, SERVICE};

#[tokio::main]
async fn main() -> ExitCode {
    process::main(SERVICE, run()).await
}

async fn run() -> Result<(), process::StartError> {
    let config = Config::from_env()?;
    let router = router(&config)?;
    // with KAFKA_BOOTSTRAP_SERVERS, the Kafka stage runs beside the HTTP API
    api_enrichment::kafka::spawn(&router)?;
    process::listen_and_serve(SERVICE, &config.host, config.port, router).await
}
