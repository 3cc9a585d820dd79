//! A word-level trigram language model with backoff, trained from plain text.
//!
//! Training: the corpus is split into paragraphs (blank-line separated), each
//! paragraph is tokenised (see [`crate::tokenizer`]) and closed with a `.` when
//! it does not already end a sentence; trigram, bigram and unigram counts are
//! collected over the whole token stream.
//!
//! Sampling the next token given the last two `(a, b)`:
//! - if `(a, b)` was seen: from the trigram counts with probability 0.8, else
//!   from the bigram counts of `b` (a fixed interpolation that keeps the text
//!   from copying the corpus verbatim);
//! - else if `b` was seen: from the bigram counts of `b`;
//! - else from the unigram counts.
//!
//! Words of the prompt unknown to the model break the context; an empty or
//! unknown prompt starts as after the end of a sentence. Every choice draws
//! from one [`SplitMix64`] stream seeded by the request, and every distribution
//! is stored in token-id order, so a (prompt, max_tokens, seed) triple always
//! yields the same text for a given corpus.
//!
//! A trained model can be saved to and loaded from a file: see [`file`].

use std::collections::HashMap;

use crate::prng::SplitMix64;
use crate::tokenizer::{self, ends_sentence};

pub mod file;

pub use file::ModelFileError;

/// Probability, in percent, of sampling from the trigram counts when the
/// two-token context was seen in the corpus.
const TRIGRAM_WEIGHT_PERCENT: u64 = 80;

/// Why a corpus cannot be trained on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrainError {
    /// The corpus contains no word.
    EmptyCorpus,
    /// More distinct tokens than `u32` ids.
    VocabularyTooLarge,
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::EmptyCorpus => "the corpus contains no words",
            Self::VocabularyTooLarge => "the corpus has more than 2^32 distinct tokens",
        })
    }
}

impl std::error::Error for TrainError {}

/// Generated text and the number of tokens (words and punctuation marks) in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The continuation of the prompt (the prompt itself is not repeated).
    pub text: String,
    /// Number of tokens generated: always the requested `max_tokens`.
    pub tokens: usize,
    /// What each token adds to `text`, in order (joined, they are `text`): the events
    /// of a token stream.
    pub pieces: Vec<String>,
}

/// Counts of the tokens that followed a context, as a cumulative table.
#[derive(Debug, Default)]
struct Distribution {
    tokens: Vec<u32>,
    cumulative: Vec<u64>,
}

impl Distribution {
    fn from_counts(counts: HashMap<u32, u64>) -> Self {
        let mut pairs: Vec<(u32, u64)> = counts.into_iter().collect();
        pairs.sort_unstable();
        let mut total = 0;
        let (tokens, cumulative) = pairs
            .into_iter()
            .map(|(token, count)| {
                total += count;
                (token, total)
            })
            .unzip();
        Self { tokens, cumulative }
    }

    fn sample(&self, rng: &mut SplitMix64) -> Option<u32> {
        let total = *self.cumulative.last()?;
        let target = rng.below(total);
        let index = self.cumulative.partition_point(|&c| c <= target);
        self.tokens.get(index).copied()
    }
}

/// The trained model.
#[derive(Debug)]
pub struct NgramModel {
    name: String,
    display: Vec<String>,
    index: HashMap<String, u32>,
    unigram: Distribution,
    bigram: HashMap<u32, Distribution>,
    trigram: HashMap<(u32, u32), Distribution>,
    corpus_tokens: usize,
}

impl NgramModel {
    /// Trains a model called `name` from `corpus`.
    pub fn train(name: impl Into<String>, corpus: &str) -> Result<Self, TrainError> {
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut surface: Vec<HashMap<String, u64>> = Vec::new();
        let mut stream: Vec<u32> = Vec::new();

        for paragraph in paragraphs(corpus) {
            let mut tokens = tokenizer::tokenize(paragraph);
            if tokens.last().is_some_and(|t| !ends_sentence(t)) {
                tokens.push(".".to_owned());
            }
            let mut sentence_start = true;
            for token in tokens {
                let key = token.to_lowercase();
                let next_id =
                    u32::try_from(index.len()).map_err(|_| TrainError::VocabularyTooLarge)?;
                let id = *index.entry(key).or_insert(next_id);
                if id == next_id {
                    surface.push(HashMap::new());
                }
                let shouting =
                    token.chars().count() > 1 && token.chars().all(|c| !c.is_lowercase());
                if !sentence_start && !shouting {
                    if let Some(forms) = surface.get_mut(id as usize) {
                        *forms.entry(token.clone()).or_default() += 1;
                    }
                }
                sentence_start = ends_sentence(&token);
                stream.push(id);
            }
        }
        if stream.is_empty() {
            return Err(TrainError::EmptyCorpus);
        }

        let mut uni: HashMap<u32, u64> = HashMap::new();
        let mut bi: HashMap<u32, HashMap<u32, u64>> = HashMap::new();
        let mut tri: HashMap<(u32, u32), HashMap<u32, u64>> = HashMap::new();
        for (i, &token) in stream.iter().enumerate() {
            *uni.entry(token).or_default() += 1;
            if let Some(&prev) = i.checked_sub(1).and_then(|j| stream.get(j)) {
                *bi.entry(prev).or_default().entry(token).or_default() += 1;
                if let Some(&prev2) = i.checked_sub(2).and_then(|j| stream.get(j)) {
                    *tri.entry((prev2, prev))
                        .or_default()
                        .entry(token)
                        .or_default() += 1;
                }
            }
        }

        let mut keys: Vec<(String, u32)> = index.iter().map(|(k, &v)| (k.clone(), v)).collect();
        keys.sort_unstable_by_key(|&(_, id)| id);
        let display = keys
            .into_iter()
            .zip(surface)
            .map(|((lower, _), forms)| {
                // Most frequent mid-sentence spelling ("Lion", "I"), else lowercase.
                forms
                    .into_iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                    .map_or(lower, |(form, _)| form)
            })
            .collect();

        Ok(Self {
            name: name.into(),
            display,
            index,
            unigram: Distribution::from_counts(uni),
            bigram: bi
                .into_iter()
                .map(|(k, v)| (k, Distribution::from_counts(v)))
                .collect(),
            trigram: tri
                .into_iter()
                .map(|(k, v)| (k, Distribution::from_counts(v)))
                .collect(),
            corpus_tokens: stream.len(),
        })
    }

    /// The model's name (the `model` field of responses and metric labels).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of distinct tokens.
    pub fn vocabulary_size(&self) -> usize {
        self.display.len()
    }

    /// Number of tokens the model was trained on.
    pub fn corpus_tokens(&self) -> usize {
        self.corpus_tokens
    }

    /// Generates `max_tokens` tokens continuing `prompt`, deterministically for
    /// a given `seed`.
    pub fn generate(&self, prompt: &str, max_tokens: usize, seed: u64) -> Generation {
        let mut rng = SplitMix64::new(seed);
        let prompt_ids: Vec<Option<u32>> = tokenizer::tokenize(prompt)
            .iter()
            .map(|t| self.index.get(&t.to_lowercase()).copied())
            .collect();
        let full_stop = self.index.get(".").copied();
        let (mut before, mut last) = match prompt_ids.as_slice() {
            [] => (None, full_stop),
            [.., None] => (None, full_stop),
            [only] => (None, *only),
            [.., a, b] => (*a, *b),
        };
        let sentence_start = last
            .and_then(|id| self.display.get(id as usize))
            .is_none_or(|t| ends_sentence(t));

        let mut out: Vec<u32> = Vec::with_capacity(max_tokens);
        for _ in 0..max_tokens {
            let trigram = before.zip(last).and_then(|k| self.trigram.get(&k));
            let bigram = last.and_then(|b| self.bigram.get(&b));
            let dist = match (trigram, bigram) {
                (Some(t), Some(b)) => {
                    if rng.below(100) < TRIGRAM_WEIGHT_PERCENT {
                        t
                    } else {
                        b
                    }
                }
                (Some(t), None) => t,
                (None, Some(b)) => b,
                (None, None) => &self.unigram,
            };
            let Some(next) = dist
                .sample(&mut rng)
                .or_else(|| self.unigram.sample(&mut rng))
            else {
                break;
            };
            out.push(next);
            before = last;
            last = Some(next);
        }

        let words = out
            .iter()
            .filter_map(|&id| self.display.get(id as usize).map(String::as_str));
        let pieces = tokenizer::detokenize_pieces(words, sentence_start);
        Generation {
            text: pieces.concat(),
            tokens: out.len(),
            pieces,
        }
    }
}

/// Blank-line separated paragraphs of `text`.
fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n")
        .flat_map(|chunk| chunk.split("\r\n\r\n"))
        .filter(|p| !p.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "The fox ran to the wood.\n\nThe fox saw the Lion. The Lion slept.";

    #[test]
    fn trains_counts_and_display_forms() {
        let model = NgramModel::train("tiny", TINY).expect("trains");
        assert_eq!(model.name(), "tiny");
        // the fox ran to wood . saw lion slept
        assert_eq!(model.vocabulary_size(), 9);
        assert_eq!(model.corpus_tokens(), 17);
        let lion = model.index.get("lion").copied().expect("known");
        assert_eq!(model.display[lion as usize], "Lion");
    }

    #[test]
    fn deterministic_per_seed_and_exact_length() {
        let model = NgramModel::train("tiny", TINY).expect("trains");
        let a = model.generate("the fox", 20, 9);
        let b = model.generate("the fox", 20, 9);
        assert_eq!(a, b);
        assert_eq!(a.tokens, 20);
        let differs = (0..20).any(|seed| model.generate("the fox", 20, seed) != a);
        assert!(differs, "different seeds should give different texts");
    }

    #[test]
    fn follows_seen_context() {
        // "to" is only ever followed by "the", and "ran" only by "to".
        let model = NgramModel::train("tiny", TINY).expect("trains");
        for seed in 0..10 {
            assert!(model
                .generate("fox ran", 2, seed)
                .text
                .starts_with("to the"));
        }
    }

    #[test]
    fn empty_corpus_is_refused() {
        assert_eq!(
            NgramModel::train("x", " \n\n \"\" ").err(),
            Some(TrainError::EmptyCorpus)
        );
    }
}
