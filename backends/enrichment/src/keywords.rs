//! Keyword extraction: the most frequent words that are not stopwords.
//!
//! Candidates are words of at least 3 characters, not only digits, and not a
//! stopword of any supported language. Sorted by count (descending), ties in
//! alphabetical order; the first `limit` are returned.

use std::collections::HashMap;

pub use backend_api::enrichment::Keyword;

use crate::stopwords::is_stopword;

/// The `limit` top keywords of lowercased `words`.
pub fn top(words: &[String], limit: usize) -> Vec<Keyword> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for word in words {
        let candidate = word.chars().count() >= 3
            && !word.chars().all(|c| c.is_ascii_digit())
            && !is_stopword(word);
        if candidate {
            *counts.entry(word.as_str()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(limit)
        .map(|(word, count)| Keyword {
            word: word.to_owned(),
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::words;

    #[test]
    fn ranks_by_count_then_alphabet() {
        let w =
            words("The fox saw the crow. The crow saw the fox and the cheese. Cheese! 2024 fox");
        let got = top(&w, 3);
        let pairs: Vec<(&str, usize)> = got.iter().map(|k| (k.word.as_str(), k.count)).collect();
        assert_eq!(pairs, [("fox", 3), ("cheese", 2), ("crow", 2)]);
        assert_eq!(top(&w, 0), []);
    }
}
