//! Word-level tokenisation for the n-gram model.
//!
//! A token is either a word (letters and digits, with inner apostrophes and
//! hyphens: `wolf's`, `apple-tree`) or one of the punctuation marks
//! `. , ; : ! ?`. Other characters (quotes, brackets, dashes) separate tokens
//! and are dropped. Tokens are compared lowercased; the model keeps a display
//! form for each (see [`crate::model`]).

/// Punctuation marks kept as tokens.
pub const PUNCTUATION: [char; 6] = ['.', ',', ';', ':', '!', '?'];

/// True for tokens that end a sentence.
pub fn ends_sentence(token: &str) -> bool {
    matches!(token, "." | "!" | "?")
}

/// True for punctuation tokens (written without a space before them).
pub fn is_punctuation(token: &str) -> bool {
    let mut chars = token.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if PUNCTUATION.contains(&c))
}

/// Splits `text` into tokens in their original case.
pub fn tokenize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c == '\u{2019}' { '\'' } else { c })
        .collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let joins_word = |c: char| c.is_alphanumeric();
        let inner_joiner = (c == '\'' || c == '-')
            && !word.is_empty()
            && chars.get(i + 1).copied().is_some_and(joins_word);
        if joins_word(c) || inner_joiner {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if PUNCTUATION.contains(&c) {
            tokens.push(c.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// Joins tokens into text: one space between words, none before punctuation,
/// a capital letter at the start of each sentence (and at the very start when
/// `sentence_start` is true).
pub fn detokenize<'a>(tokens: impl IntoIterator<Item = &'a str>, sentence_start: bool) -> String {
    detokenize_pieces(tokens, sentence_start).concat()
}

/// What each token adds to [`detokenize`]'s text (its space, if any, and itself), in
/// order: joined, they are that text. A token stream sends these.
pub fn detokenize_pieces<'a>(
    tokens: impl IntoIterator<Item = &'a str>,
    sentence_start: bool,
) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut capitalize = sentence_start;
    for token in tokens {
        let mut out = String::with_capacity(token.len() + 1);
        if !pieces.is_empty() && !is_punctuation(token) {
            out.push(' ');
        }
        if capitalize && !is_punctuation(token) {
            let mut chars = token.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
            capitalize = false;
        } else {
            out.push_str(token);
        }
        if ends_sentence(token) {
            capitalize = true;
        }
        pieces.push(out);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_punctuation() {
        let tokens = tokenize("\"Well! I won't,\" said the Wolf's apple-tree -- twice.");
        assert_eq!(
            tokens,
            [
                "Well",
                "!",
                "I",
                "won't",
                ",",
                "said",
                "the",
                "Wolf's",
                "apple-tree",
                "twice",
                "."
            ]
        );
    }

    #[test]
    fn joins_with_sentence_case() {
        let text = detokenize(["the", "fox", ".", "he", "ran", ",", "fast", "!"], true);
        assert_eq!(text, "The fox. He ran, fast!");
        assert_eq!(detokenize([",", "and", "so"], false), ", and so");
    }
}
