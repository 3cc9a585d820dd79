//! Counting: words, sentences, syllables, and the Flesch reading ease.
//!
//! - A word is a maximal run of letters and digits, apostrophes and hyphens
//!   allowed inside (`don't`, `well-known`), compared lowercased.
//! - A sentence ends at a run of `.`, `!`, `?` or `…` followed by whitespace,
//!   a closing quote or bracket, or the end of the text; a final fragment
//!   without a terminator counts as a sentence. Segments without a word do not
//!   count. Abbreviations (`Mr.`) are not recognised and end a sentence.
//! - Syllables use an English heuristic: groups of vowels (`aeiouy`), minus a
//!   silent final `e` and a silent `-ed`/`-es`, at least one per word.

pub use backend_api::enrichment::Readability;

/// The words of `text`, lowercased, in order.
pub fn words(text: &str) -> Vec<String> {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c == '\u{2019}' { '\'' } else { c })
        .collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let inner = (c == '\'' || c == '-')
            && !word.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Number of sentences in `text` (see the module docs).
pub fn sentence_count(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let is_terminator = |c: char| matches!(c, '.' | '!' | '?' | '…');
    let mut count = 0;
    let mut has_word = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            has_word = true;
        } else if is_terminator(c) {
            let next = chars.get(i + 1).copied();
            let boundary = match next {
                None => true,
                Some(n) => {
                    n.is_whitespace() || matches!(n, '"' | '\'' | '”' | '’' | ')' | ']' | '»')
                }
            };
            if boundary && has_word {
                count += 1;
                has_word = false;
            }
        }
    }
    if has_word {
        count += 1;
    }
    count
}

/// Estimated syllables of an English word (at least 1).
pub fn syllables(word: &str) -> usize {
    let w: Vec<char> = word
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if w.len() <= 3 {
        return 1;
    }
    let is_vowel = |c: char| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
    let mut groups = 0;
    let mut previous_vowel = false;
    for &c in &w {
        let vowel = is_vowel(c);
        if vowel && !previous_vowel {
            groups += 1;
        }
        previous_vowel = vowel;
    }
    let n = w.len();
    let (last, before, third) = (w[n - 1], w[n - 2], w[n - 3]);
    let silent = match (third, before, last) {
        // "-le" after a consonant is a syllable (table), "-ee" is not silent.
        (t, 'l', 'e') if !is_vowel(t) => false,
        (_, b, 'e') => b != 'e' && !is_vowel(b),
        // "-ed" is silent except after t or d (wanted, needed).
        (t, 'e', 'd') => !matches!(t, 't' | 'd'),
        // "-es" is silent except after sibilants (boxes, roses, wishes).
        (t, 'e', 's') => !matches!(t, 's' | 'x' | 'z' | 'c' | 'g' | 'h'),
        _ => false,
    };
    if silent && groups > 1 {
        groups -= 1;
    }
    groups.max(1)
}

/// The Flesch reading ease of `words` in `sentences` sentences; `None` when
/// there is no word.
pub fn flesch(words: &[String], sentences: usize) -> Option<Readability> {
    if words.is_empty() {
        return None;
    }
    let word_count = words.len() as f64;
    let syllable_count: usize = words.iter().map(|w| syllables(w)).sum();
    let wps = word_count / sentences.max(1) as f64;
    let spw = syllable_count as f64 / word_count;
    let score = 206.835 - 1.015 * wps - 84.6 * spw;
    let level = match score {
        s if s >= 90.0 => "very easy",
        s if s >= 80.0 => "easy",
        s if s >= 70.0 => "fairly easy",
        s if s >= 60.0 => "standard",
        s if s >= 50.0 => "fairly difficult",
        s if s >= 30.0 => "difficult",
        _ => "very difficult",
    };
    Some(Readability {
        flesch_reading_ease: round2(score),
        level: level.to_owned(),
        words_per_sentence: round2(wps),
        syllables_per_word: round2(spw),
    })
}

/// Rounds to 2 decimals.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words() {
        assert_eq!(
            words("Don’t stop—the well-known 3 cats!"),
            ["don't", "stop", "the", "well-known", "3", "cats"]
        );
        assert!(words(" ... ").is_empty());
    }

    #[test]
    fn counts_sentences() {
        assert_eq!(sentence_count("One. Two! Three?"), 3);
        assert_eq!(sentence_count("Pi is 3.14 exactly. Right"), 2);
        assert_eq!(sentence_count("\"Stop!\" he said. ..."), 2);
        assert_eq!(sentence_count("Wait... what?!"), 2);
        assert_eq!(sentence_count(""), 0);
    }

    #[test]
    fn estimates_syllables() {
        for (word, expected) in [
            ("cat", 1),
            ("the", 1),
            ("make", 1),
            ("table", 2),
            ("reading", 2),
            ("jumped", 1),
            ("wanted", 2),
            ("boxes", 2),
            ("beautiful", 3),
            ("tortoise", 2),
            ("queue", 1),
        ] {
            assert_eq!(syllables(word), expected, "{word}");
        }
    }

    #[test]
    fn flesch_of_a_known_text() {
        let w = words("The cat sat on the mat. The dog ran.");
        let r = flesch(&w, 2).expect("words");
        // 9 one-syllable words in 2 sentences: 206.835 - 1.015*4.5 - 84.6*1.
        assert_eq!(r.flesch_reading_ease, 117.67);
        assert_eq!(r.level, "very easy");
        assert_eq!(r.words_per_sentence, 4.5);
        assert_eq!(r.syllables_per_word, 1.0);
        assert_eq!(flesch(&[], 0), None);
    }
}
