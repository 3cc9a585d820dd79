//! The command line: `api-generation` serves (no arguments), and
//! `api-generation train CORPUS -o MODEL [--name NAME]` trains a model from a
//! UTF-8 corpus (paragraphs separated by blank lines) and writes it as a model
//! file (format: [`crate::model::file`]) for `GENERATION_MODEL_PATH`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::model::{ModelFileError, NgramModel, TrainError};

/// Arguments of the `api-generation` binary.
#[derive(Debug, Parser)]
#[command(
    name = "api-generation",
    version,
    about = "Text generation service; with no subcommand it serves (configured by environment variables)"
)]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model from a UTF-8 corpus and write it to a model file.
    Train {
        /// The corpus: UTF-8 text, paragraphs separated by blank lines.
        corpus: PathBuf,
        /// The model file to write (replaced if it exists).
        #[arg(short, long, value_name = "MODEL")]
        output: PathBuf,
        /// Model name (`model` in responses); default `trigram-<corpus file stem>`.
        #[arg(long)]
        name: Option<String>,
    },
}

/// Why `train` failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainCommandError {
    /// The corpus cannot be read as UTF-8 text.
    #[error("cannot read corpus {path}: {source}")]
    Corpus {
        /// The corpus file.
        path: PathBuf,
        /// The I/O or UTF-8 error.
        source: std::io::Error,
    },
    /// The corpus cannot be trained on.
    #[error("cannot train on {path}: {source}")]
    Train {
        /// The corpus file.
        path: PathBuf,
        /// Why.
        source: TrainError,
    },
    /// The model file cannot be written.
    #[error("cannot write the model: {0}")]
    Save(#[from] ModelFileError),
}

/// What `train` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainSummary {
    /// The model's name.
    pub name: String,
    /// Distinct tokens.
    pub vocabulary: usize,
    /// Tokens trained on.
    pub corpus_tokens: usize,
}

/// Parses the command line; runs a subcommand and returns its exit code, or
/// `None` when the service should serve. `--help`, `--version` and usage
/// errors print and exit here (clap).
pub fn dispatch() -> Option<ExitCode> {
    let command = Cli::parse().command?;
    Some(run(command))
}

/// Runs a subcommand, printing its outcome; the exit code is non-zero on failure.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Train {
            corpus,
            output,
            name,
        } => match train(&corpus, &output, name) {
            Ok(summary) => {
                println!(
                    "wrote {}: model {}, {} distinct tokens, trained on {} tokens",
                    output.display(),
                    summary.name,
                    summary.vocabulary,
                    summary.corpus_tokens
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("api-generation train: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Trains a model from the corpus file and writes it to `output`.
pub fn train(
    corpus: &Path,
    output: &Path,
    name: Option<String>,
) -> Result<TrainSummary, TrainCommandError> {
    let text = std::fs::read_to_string(corpus).map_err(|source| TrainCommandError::Corpus {
        path: corpus.to_owned(),
        source,
    })?;
    let name = name.unwrap_or_else(|| {
        let stem = corpus
            .file_stem()
            .map_or_else(|| "custom".into(), |s| s.to_string_lossy());
        format!("trigram-{stem}")
    });
    let model = NgramModel::train(name, &text).map_err(|source| TrainCommandError::Train {
        path: corpus.to_owned(),
        source,
    })?;
    model.save(output)?;
    Ok(TrainSummary {
        name: model.name().to_owned(),
        vocabulary: model.vocabulary_size(),
        corpus_tokens: model.corpus_tokens(),
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["api-generation", "train", "c.txt", "-o", "m.bin"])
            .expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Train { name: None, .. })
        ));
        assert!(Cli::try_parse_from(["api-generation"])
            .expect("parses")
            .command
            .is_none());
        assert!(Cli::try_parse_from(["api-generation", "train", "c.txt"]).is_err());
    }
}
