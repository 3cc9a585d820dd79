//! `api-gateway`: serve, check a route table, or print its JSON Schema.

use api_gateway::{config, observability, runtime, server, upstream};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(not(feature = "system-allocator"))]
mod allocator;

/// mimalloc: the proxy allocates small, short-lived objects per request (headers,
/// sessions); glibc's malloc spent ~13% of the proxy's CPU on them in profiles.
/// The `system-allocator` feature leaves it out, for heap profilers that see only malloc.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: allocator::Mimalloc = allocator::Mimalloc;

#[derive(Parser)]
#[command(
    name = "api-gateway",
    version,
    about = "An API gateway on Pingora, steered by routes.yaml"
)]
struct Cli {
    /// Route table to serve.
    #[arg(
        long,
        env = "ROUTES_FILE",
        default_value = "routes.yaml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve (the default).
    Serve {
        /// Zero-downtime upgrade: take the listeners of the gateway running now (through
        /// `UPGRADE_SOCK`), then send that one SIGQUIT; it drains and exits.
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a route table without serving: exit 0 with a summary, or 1 with every error.
    Check {
        /// The file to check (default: --config).
        file: Option<PathBuf>,
    },
    /// Print the JSON Schema of routes.yaml.
    Schema,
    /// Print the OpenAPI 3.1 document of a route table (what `/openapi.json` serves).
    Openapi {
        /// The route table (default: --config).
        file: Option<PathBuf>,
    },
}

/// Validates and builds the table in `path` as a reload would, dry (no connection is
/// opened): a table that validates must also build (names resolve, files exist, plugin
/// settings hold).
fn build_dry(path: &std::path::Path) -> Result<runtime::Runtime, config::ConfigErrors> {
    let parsed = config::load_file_located(path)?;
    runtime::Runtime::build(
        parsed,
        &upstream::Registry::new(),
        &gateway_plugins::Shared::dry(),
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Cmd::Serve { upgrade: false }) {
        Cmd::Check { file } => {
            let path = file.unwrap_or(cli.config);
            match build_dry(&path) {
                Ok(rt) => {
                    println!(
                        "ok: {}: {} routes, {} upstreams",
                        path.display(),
                        rt.routes.len(),
                        rt.config.upstreams.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Openapi { file } => {
            let path = file.unwrap_or(cli.config);
            match build_dry(&path) {
                Ok(rt) => {
                    let base = config::base_dir(&path.display().to_string()).to_path_buf();
                    let doc = api_gateway::openapi::document(&rt.config, &base);
                    match serde_json::to_string_pretty(&doc) {
                        Ok(s) => {
                            println!("{s}");
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!("cannot render the document: {e}");
                            ExitCode::FAILURE
                        }
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Schema => match serde_json::to_string_pretty(&schemars::schema_for!(config::Config)) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot render the schema: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Serve { upgrade } => {
            let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
            let _guard = observability::logging::init("api-gateway", &level);
            let result = server::Settings::from_env(cli.config)
                .map(|s| server::Settings { upgrade, ..s })
                .and_then(server::serve);
            if let Err(e) = result {
                tracing::error!(error = %e, "cannot start");
                eprintln!("api-gateway: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}
