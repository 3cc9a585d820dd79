//! Text cleaning.
//!
//! - line endings become `\n`;
//! - control characters (except line breaks and tabs) and invisible format
//!   characters (zero-width spaces and joiners, word joiner, BOM, soft hyphen)
//!   are removed and counted;
//! - every other whitespace character (tab, no-break space, ...) becomes a
//!   space; runs of spaces collapse to one; lines are trimmed;
//! - runs of blank lines collapse to one blank line (paragraphs are kept);
//!   leading and trailing blank lines are removed.

use serde::{Deserialize, Serialize};

/// What cleaning did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CleaningReport {
    /// Characters in the input.
    pub original_length: usize,
    /// Characters in the cleaned text.
    pub cleaned_length: usize,
    /// Control and invisible characters removed.
    pub control_chars_removed: usize,
}

/// Cleans `input` (see the module docs).
pub fn clean(input: &str) -> (String, CleaningReport) {
    let mut removed = 0;
    let mut normalised = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
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
    fn empty_and_blank_inputs() {
        assert_eq!(clean("").0, "");
        assert_eq!(clean(" \n\t\n ").0, "");
        assert_eq!(clean_line(" A\n\ntitle "), "A title");
    }
}
