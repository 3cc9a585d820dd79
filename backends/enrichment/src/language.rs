//! Stopword-based language detection for English, French, Spanish and German.
//!
//! Each word (split at apostrophes, so `l'homme` counts `l` and `homme`) that
//! is a stopword of a language scores one point for it. The language with
//! most points wins (ties go to the order en, fr, es, de); `und`
//! (undetermined) when no word is a stopword. Confidence is the winner's share
//! of all points, 2 decimals.

use serde::{Deserialize, Serialize};

use crate::stats::round2;
use crate::stopwords::LANGUAGES;

/// Code answered when no language can be told.
pub const UNDETERMINED: &str = "und";

/// Result of [`detect`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// ISO 639-1 code (`en`, `fr`, `es`, `de`) or `und`.
    pub code: String,
    /// The winner's share of all stopword points, in `[0, 1]`.
    pub confidence: f64,
}

/// Detects the language of lowercased `words`.
pub fn detect(words: &[String]) -> Detection {
    let mut scores = [0usize; 4];
    for piece in words.iter().flat_map(|w| w.split('\'')) {
        for (score, (_, stopwords)) in scores.iter_mut().zip(LANGUAGES.iter()) {
            if stopwords.contains(piece) {
                *score += 1;
            }
        }
    }
    let total: usize = scores.iter().sum();
    let best = scores
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, usize)>, (i, &s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((i, s)),
        });
    match best {
        Some((index, score)) if score > 0 => Detection {
            code: LANGUAGES
                .get(index)
                .map_or(UNDETERMINED, |(code, _)| code)
                .to_owned(),
            confidence: round2(score as f64 / total as f64),
        },
        _ => Detection {
            code: UNDETERMINED.to_owned(),
            confidence: 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::words;

    fn code(text: &str) -> String {
        detect(&words(text)).code
    }

    #[test]
    fn detects_the_four_languages() {
        assert_eq!(code("The fox and the crow were sitting in the tree."), "en");
        assert_eq!(
            code("Le renard et le corbeau sont dans l'arbre avec les oiseaux."),
            "fr"
        );
        assert_eq!(
            code("El zorro y el cuervo están en el árbol con los pájaros."),
            "es"
        );
        assert_eq!(
            code("Der Fuchs und der Rabe sitzen auf dem Baum mit den Vögeln."),
            "de"
        );
    }

    #[test]
    fn undetermined_without_stopwords() {
        let d = detect(&words("Xylophone zebra quantum 42"));
        assert_eq!(d.code, "und");
        assert_eq!(d.confidence, 0.0);
        assert_eq!(detect(&[]).code, "und");
    }

    #[test]
    fn confidence_is_the_winner_share() {
        // "the" (en) and "der" (de) once each, "and" (en): en 2 of 3 points.
        let d = detect(&words("the der and"));
        assert_eq!(d.code, "en");
        assert_eq!(d.confidence, 0.67);
    }
}
