//! Sentiment from a lexicon: VADER's word valences (`data/vader_lexicon.tsv`,
//! MIT, see `data/README.md`), embedded in the binary.
//!
//! Each word of the text found in the lexicon adds its valence (-4 to +4);
//! a valence is reversed and damped (× -0.74, VADER's factor) when one of the
//! three words before it is a negation (`not`, `no`, `never`, `without`, any
//! `...n't`, ...). The sum is squashed into `[-1, 1]` as VADER's compound
//! score, `sum / sqrt(sum² + 15)`, and labelled `positive` from 0.05,
//! `negative` from -0.05, `neutral` between. This is VADER's lexicon and
//! scoring without its capitalisation, punctuation and "but" rules: a
//! transparent baseline, English only.

use std::collections::HashMap;
use std::sync::LazyLock;

pub use backend_api::enrichment::{Label, Sentiment};

use crate::stats::round2;

/// The lexicon file (token, mean valence).
const LEXICON: &str = include_str!("../data/vader_lexicon.tsv");

/// VADER's negation damping factor.
const NEGATION_SCALAR: f64 = -0.74;
/// VADER's normalisation constant.
const ALPHA: f64 = 15.0;
/// Words that reverse the valence of the (up to) three words after them.
const NEGATIONS: [&str; 16] = [
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "nowhere", "cannot",
    "without", "hardly", "rarely", "seldom", "aint", "isnt",
];

static VALENCES: LazyLock<HashMap<&'static str, f64>> = LazyLock::new(|| {
    LEXICON
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (token, valence) = l.split_once('\t')?;
            Some((token, valence.trim().parse().ok()?))
        })
        .collect()
});

/// Number of entries in the embedded lexicon.
pub fn lexicon_size() -> usize {
    VALENCES.len()
}

/// Scores lowercased `words` (see the module docs).
pub fn score(words: &[String]) -> Sentiment {
    let mut sum = 0.0;
    let (mut positive_words, mut negative_words) = (0, 0);
    for (i, word) in words.iter().enumerate() {
        let Some(&valence) = VALENCES.get(word.as_str()) else {
            continue;
        };
        let negated = words[i.saturating_sub(3)..i].iter().any(|w| is_negation(w));
        let valence = if negated {
            valence * NEGATION_SCALAR
        } else {
            valence
        };
        if valence > 0.0 {
            positive_words += 1;
        } else if valence < 0.0 {
            negative_words += 1;
        }
        sum += valence;
    }
    let compound = sum / (sum * sum + ALPHA).sqrt();
    let label = if compound >= 0.05 {
        Label::Positive
    } else if compound <= -0.05 {
        Label::Negative
    } else {
        Label::Neutral
    };
    Sentiment {
        label,
        score: round2(compound * 100.0) / 100.0,
        positive_words,
        negative_words,
    }
}

fn is_negation(word: &str) -> bool {
    NEGATIONS.contains(&word) || word.ends_with("n't")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::words;

    #[test]
    fn lexicon_is_loaded() {
        assert!(lexicon_size() > 7000);
    }

    #[test]
    fn positive_negative_and_neutral_sentences() {
        let good = score(&words("What a wonderful day: I love this great city."));
        assert_eq!(good.label, Label::Positive);
        assert!(good.score > 0.5 && good.positive_words == 3, "{good:?}");
        let bad = score(&words("This is a terrible, awful mess and I hate it."));
        assert_eq!(bad.label, Label::Negative);
        assert!(bad.score < -0.5, "{bad:?}");
        let flat = score(&words("The train leaves at nine from platform two."));
        assert_eq!(flat.label, Label::Neutral);
        assert_eq!(flat.score, 0.0);
    }

    #[test]
    fn negation_reverses() {
        assert_eq!(score(&words("It is good.")).label, Label::Positive);
        assert_eq!(score(&words("It is not good.")).label, Label::Negative);
        assert_eq!(score(&words("It isn't very good.")).label, Label::Negative);
    }
}
