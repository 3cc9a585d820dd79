//! `api-generation`: see the library docs and `config` for the environment.

use std::process::ExitCode;

use api_generation::{process, router, Config, SERVICE};

#[tokio::main]
async fn main() -> ExitCode {
    // `api-generation train ...` (and --help): see `cli`; no subcommand serves.
    if let Some(code) = api_generation::cli::dispatch() {
        return code;
    }
    process::main(SERVICE, run()).await
}

async fn run() -> Result<(), process::StartError> {
    let config = Config::from_env()?;
    // Train before listening: once the port accepts, the service is ready.
    let router = router(&config)?;
    // with KAFKA_BOOTSTRAP_SERVERS, the Kafka stage runs beside the HTTP API
    api_generation::kafka::spawn(&router)?;
    process::listen_and_serve(SERVICE, &config.host, config.port, router).await
}
