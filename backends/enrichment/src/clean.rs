//! Text cleaning, in this order:
//!
//! - stray HTML is removed and character references decoded (only when the
//!   text looks like HTML: see [`crate::html`]);
//! - the text is put in Unicode Normalization Form C (NFC: `e` + combining
//!   acute becomes `é`), so equal texts compare, hash and count equal;
//! - line endings become `\n`;
//! - control characters (except line breaks and tabs) and invisible format
//!   characters (zero-width spaces and joiners, word joiner, BOM, soft hyphen)
//!   are removed and counted;
//! - every other whitespace character (tab, no-break space, ...) becomes a
//!   space; runs of spaces collapse to one; lines are trimmed;
//! - runs of blank lines collapse to one blank line (paragraphs are kept);
//!   leading and trailing blank lines are removed.

pub use backend_api::enrichment::CleaningReport;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::html;

/// Cleans `input` (see the module docs).
pub fn clean(input: &str) -> (String, CleaningReport) {
    let stripped = html::strip(input);
    let (html_removed, html_elements_removed) =
        stripped.as_ref().map_or((false, 0), |(_, n)| (true, *n));
    let text = stripped.as_ref().map_or(input, |(t, _)| t.as_str());
    let nfc: Option<String> = match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => None,
        _ => Some(text.nfc().collect()).filter(|n: &String| n != text),
    };
    let unicode_normalized = nfc.is_some();
    let text = nfc.as_deref().unwrap_or(text);

    let mut removed = 0;
    let mut normalised = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                normalised.push('\n');
            }
            '\n' => normalised.push('\n'),
            c if is_invisible(c) => removed += 1,
            c if c.is_whitespace() => normalised.push(' '),
            c if c.is_control() => removed += 1,
            c => normalised.push(c),
        }
    }

    let mut out = String::with_capacity(normalised.len());
    let mut blank_run = 0;
    for line in normalised.split('\n') {
        let line = line
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(&line);
    }

    let report = CleaningReport {
        original_length: input.chars().count(),
        cleaned_length: out.chars().count(),
        control_chars_removed: removed,
        html_elements_removed,
        html_removed,
        unicode_normalized,
    };
    (out, report)
}

/// Cleans a one-line field (a title): as [`clean`], with line breaks as spaces.
pub fn clean_line(input: &str) -> String {
    clean(input)
        .0
        .split('\n')
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_whitespace_and_strips_controls() {
        let input =
            "  Hello,\t\u{00A0}world!\u{0007}\r\n\r\n\r\n  Second\u{200B} line  \x00\n third ";
        let (text, report) = clean(input);
        assert_eq!(text, "Hello, world!\n\nSecond line\nthird");
        assert_eq!(report.control_chars_removed, 3);
        assert_eq!(report.cleaned_length, text.chars().count());
    }

    #[test]
    fn unicode_is_put_in_nfc() {
        let (text, report) = clean("Cafe\u{301} cre\u{300}me");
        assert_eq!(text, "Caf\u{e9} cr\u{e8}me");
        assert!(report.unicode_normalized);
        assert!(!clean("Café").1.unicode_normalized, "already NFC");
    }

    #[test]
    fn html_is_stripped_before_whitespace_cleaning() {
        let (text, report) = clean("<div><h1>Title</h1><p>One&nbsp;&amp; two</p></div>");
        assert_eq!(text, "Title\n\nOne & two");
        assert!(report.html_removed);
        assert_eq!(report.html_elements_removed, 3);
        // entities may decode to combining marks: NFC runs after
        assert_eq!(clean("e&#x301;t&eacute;").0, "\u{e9}t\u{e9}");
    }

    #[test]
    fn empty_and_blank_inputs() {
        assert_eq!(clean("").0, "");
        assert_eq!(clean(" \n\t\n ").0, "");
        assert_eq!(clean_line(" A\n\ntitle "), "A title");
    }
}
