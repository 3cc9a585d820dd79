//! The model file: a trained [`NgramModel`] saved by `api-generation train`
//! and loaded at start-up from `GENERATION_MODEL_PATH`.
//!
//! Format (version 1): one [MessagePack](https://msgpack.org) map, written
//! with named fields (`rmp-serde`'s `to_vec_named`), so any MessagePack tool
//! can read it:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `format` | string | always `"api-generation/ngram"` |
//! | `version` | unsigned | `1`; a reader refuses other versions |
//! | `name` | string | the model name (`model` in responses and metrics) |
//! | `corpus_tokens` | unsigned | tokens the model was trained on |
//! | `vocabulary` | array of strings | display form of each token; a token's id is its index, its lookup key the lowercase form |
//! | `unigram` | distribution | counts of every token |
//! | `bigram` | array of `[id, distribution]` | tokens that followed token `id`, by ascending `id` |
//! | `trigram` | array of `[id1, id2, distribution]` | tokens that followed `id1 id2`, by ascending `(id1, id2)` |
//!
//! A distribution is `{"tokens": [id...], "counts": [n...]}`: the same length,
//! ids ascending, counts at least 1. The same corpus always gives the same
//! bytes. Loading checks every id against the vocabulary, so a damaged file is
//! refused at start-up, not met while generating.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Distribution, NgramModel};

/// Value of the `format` field.
pub const FORMAT: &str = "api-generation/ngram";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// Why a model file cannot be written or loaded; every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not MessagePack of the expected shape.
    #[error("{path}: not an api-generation model file ({source}); train one with `api-generation train CORPUS -o MODEL`")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: rmp_serde::decode::Error,
    },
    /// The model cannot be encoded.
    #[error("{path}: cannot encode the model: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        source: rmp_serde::encode::Error,
    },
    /// The `format` field names another format.
    #[error("{path}: format {found:?} is not {FORMAT:?}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The format found.
        found: String,
    },
    /// A version this build cannot read.
    #[error(
        "{path}: model file version {found} is not supported (this build reads version {VERSION})"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
    /// Well-formed but inconsistent content.
    #[error("{path}: damaged model file: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Why a stored distribution is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistributionError {
    /// Tokens and counts differ in length.
    #[error("a distribution has as many tokens as counts")]
    Lengths,
    /// No token at all.
    #[error("empty distribution")]
    Empty,
    /// Tokens are not strictly ascending.
    #[error("distribution tokens are not in ascending order")]
    Unordered,
    /// A token id is not in the vocabulary.
    #[error("token id outside the vocabulary")]
    UnknownToken,
    /// A count of 0.
    #[error("zero count")]
    ZeroCount,
    /// The counts add up beyond `u64`.
    #[error("counts overflow")]
    Overflow,
}

/// The fields read first, to refuse another format or version clearly.
#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct StoredDistribution {
    tokens: Vec<u32>,
    counts: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct ModelFile {
    format: String,
    version: u32,
    name: String,
    corpus_tokens: u64,
    vocabulary: Vec<String>,
    unigram: StoredDistribution,
    bigram: Vec<(u32, StoredDistribution)>,
    trigram: Vec<(u32, u32, StoredDistribution)>,
}

impl Distribution {
    fn to_stored(&self) -> StoredDistribution {
        let mut previous = 0;
        let counts = self
            .cumulative
            .iter()
            .map(|&c| {
                let count = c - previous;
                previous = c;
                count
            })
            .collect();
        StoredDistribution {
            tokens: self.tokens.clone(),
            counts,
        }
    }

    fn from_stored(
        stored: StoredDistribution,
        vocabulary: usize,
    ) -> Result<Self, DistributionError> {
        if stored.tokens.len() != stored.counts.len() {
            return Err(DistributionError::Lengths);
        }
        if stored.tokens.is_empty() {
            return Err(DistributionError::Empty);
        }
        if !stored.tokens.windows(2).all(|w| w[0] < w[1]) {
            return Err(DistributionError::Unordered);
        }
        if stored.tokens.iter().any(|&t| t as usize >= vocabulary) {
            return Err(DistributionError::UnknownToken);
        }
        let mut total: u64 = 0;
        let mut cumulative = Vec::with_capacity(stored.counts.len());
        for count in stored.counts {
            if count == 0 {
                return Err(DistributionError::ZeroCount);
            }
            total = total
                .checked_add(count)
                .ok_or(DistributionError::Overflow)?;
            cumulative.push(total);
        }
        Ok(Self {
            tokens: stored.tokens,
            cumulative,
        })
    }
}

impl NgramModel {
    /// The model encoded in the file format (deterministic for a given model).
    pub fn to_file_bytes(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        let mut bigram: Vec<(u32, StoredDistribution)> = self
            .bigram
            .iter()
            .map(|(&k, d)| (k, d.to_stored()))
            .collect();
        bigram.sort_unstable_by_key(|(k, _)| *k);
        let mut trigram: Vec<(u32, u32, StoredDistribution)> = self
            .trigram
            .iter()
            .map(|(&(a, b), d)| (a, b, d.to_stored()))
            .collect();
        trigram.sort_unstable_by_key(|(a, b, _)| (*a, *b));
        let file = ModelFile {
            format: FORMAT.to_owned(),
            version: VERSION,
            name: self.name.clone(),
            corpus_tokens: self.corpus_tokens as u64,
            vocabulary: self.display.clone(),
            unigram: self.unigram.to_stored(),
            bigram,
            trigram,
        };
        rmp_serde::to_vec_named(&file)
    }

    /// Writes the model to `path` (replacing it).
    pub fn save(&self, path: &Path) -> Result<(), ModelFileError> {
        let bytes = self
            .to_file_bytes()
            .map_err(|source| ModelFileError::Encode {
                path: path.to_owned(),
                source,
            })?;
        std::fs::write(path, bytes).map_err(|source| ModelFileError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<Self, ModelFileError> {
        let bytes = std::fs::read(path).map_err(|source| ModelFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_file_bytes(&bytes).map_err(|e| e.at(path))
    }

    /// Decodes and checks the bytes of a model file.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, ModelFileError> {
        // the path is filled in by `load`
        let decode = |source| ModelFileError::Decode {
            path: PathBuf::new(),
            source,
        };
        let header: Header = rmp_serde::from_slice(bytes).map_err(decode)?;
        if header.format != FORMAT {
            return Err(ModelFileError::Format {
                path: PathBuf::new(),
                found: header.format,
            });
        }
        if header.version != VERSION {
            return Err(ModelFileError::Version {
                path: PathBuf::new(),
                found: header.version,
            });
        }
        let file: ModelFile = rmp_serde::from_slice(bytes).map_err(decode)?;
        let invalid = |reason: String| ModelFileError::Invalid {
            path: PathBuf::new(),
            reason,
        };
        let bad = |e: DistributionError| invalid(e.to_string());
        let size = file.vocabulary.len();
        if size == 0 || u32::try_from(size).is_err() {
            return Err(invalid(format!("vocabulary of {size} tokens")));
        }
        let mut index = HashMap::with_capacity(size);
        for (id, form) in file.vocabulary.iter().enumerate() {
            // `size` fits in u32 (checked above), so every id does.
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            if index.insert(form.to_lowercase(), id).is_some() {
                return Err(invalid(format!("token {form:?} appears twice")));
            }
        }
        let mut bigram = HashMap::with_capacity(file.bigram.len());
        for (k, d) in file.bigram {
            if k as usize >= size {
                return Err(invalid("bigram context outside the vocabulary".to_owned()));
            }
            bigram.insert(k, Distribution::from_stored(d, size).map_err(bad)?);
        }
        let mut trigram = HashMap::with_capacity(file.trigram.len());
        for (a, b, d) in file.trigram {
            if a as usize >= size || b as usize >= size {
                return Err(invalid("trigram context outside the vocabulary".to_owned()));
            }
            trigram.insert((a, b), Distribution::from_stored(d, size).map_err(bad)?);
        }
        Ok(Self {
            name: file.name,
            display: file.vocabulary,
            index,
            unigram: Distribution::from_stored(file.unigram, size).map_err(bad)?,
            bigram,
            trigram,
            corpus_tokens: usize::try_from(file.corpus_tokens).unwrap_or(usize::MAX),
        })
    }
}

impl ModelFileError {
    /// The same error, naming `path`.
    fn at(self, path: &Path) -> Self {
        let path = path.to_owned();
        match self {
            Self::Io { source, .. } => Self::Io { path, source },
            Self::Decode { source, .. } => Self::Decode { path, source },
            Self::Encode { source, .. } => Self::Encode { path, source },
            Self::Format { found, .. } => Self::Format { path, found },
            Self::Version { found, .. } => Self::Version { path, found },
            Self::Invalid { reason, .. } => Self::Invalid { path, reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "The fox ran to the wood.\n\nThe fox saw the Lion. The Lion slept.";

    #[test]
    fn round_trip_generates_the_same_text() {
        let model = NgramModel::train("tiny", TINY).expect("trains");
        let bytes = model.to_file_bytes().expect("encodes");
        assert_eq!(
            bytes,
            model.to_file_bytes().expect("encodes"),
            "deterministic"
        );
        let loaded = NgramModel::from_file_bytes(&bytes).expect("loads");
        assert_eq!(loaded.name(), "tiny");
        assert_eq!(loaded.vocabulary_size(), model.vocabulary_size());
        assert_eq!(loaded.corpus_tokens(), model.corpus_tokens());
        for seed in 0..20 {
            assert_eq!(
                loaded.generate("the fox", 30, seed),
                model.generate("the fox", 30, seed)
            );
        }
    }

    #[test]
    fn refuses_other_formats_versions_and_damage() {
        let text = NgramModel::from_file_bytes(TINY.as_bytes()).expect_err("text");
        assert!(matches!(text, ModelFileError::Decode { .. }), "{text}");

        #[derive(Serialize)]
        struct Other {
            format: &'static str,
            version: u32,
        }
        let other = rmp_serde::to_vec_named(&Other {
            format: FORMAT,
            version: 2,
        })
        .expect("encodes");
        let error = NgramModel::from_file_bytes(&other).expect_err("version 2");
        assert!(error.to_string().contains("version 2"), "{error}");

        let model = NgramModel::train("tiny", TINY).expect("trains");
        let mut file: ModelFile =
            rmp_serde::from_slice(&model.to_file_bytes().expect("encodes")).expect("decodes");
        file.vocabulary.truncate(2);
        let damaged = rmp_serde::to_vec_named(&file).expect("encodes");
        let error = NgramModel::from_file_bytes(&damaged).expect_err("damaged");
        assert!(matches!(error, ModelFileError::Invalid { .. }), "{error}");
    }

    #[test]
    fn errors_name_the_path() {
        let error = NgramModel::load(Path::new("/nonexistent/model.bin")).expect_err("missing");
        assert!(
            error.to_string().contains("/nonexistent/model.bin"),
            "{error}"
        );
    }
}
