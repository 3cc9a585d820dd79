//! Stray-HTML removal: markup left in a document (scraped pages, rich-text
//! fields) is parsed by a real HTML5 parser ([`scraper`], on html5ever, the
//! parser of Servo) and only its text is kept.
//!
//! Why `scraper` rather than a sanitizer such as `ammonia`: we want text, not
//! safe HTML. Walking the parsed tree keeps the text nodes with their entities
//! decoded (`&amp;` → `&`, `&eacute;` → `é`, `&#8217;` → `’`), drops what is not
//! text (`script`, `style`, `template`, `noscript` contents, comments), and puts
//! a line break around block elements (`p`, `div`, `li`, `br`, headings, ...)
//! and a space between table cells, so `<p>a</p><p>b</p>` reads `a` / `b`
//! instead of `ab`. A sanitizer would serialise escaped HTML back and glue
//! blocks together.
//!
//! Plain text is left alone: the parser only runs when the text contains
//! something that looks like a tag (`<b>`, `</p>`, `<br/>`), a comment
//! (`<!--`) or a character reference (`&amp;`, `&#233;`). So `3 < 5`,
//! `a<b` or `AT&T` are never touched. A lone `<word ...>`-shaped run in plain
//! text (`x <y and z> w`) is taken for a tag and removed.

use std::sync::LazyLock;

use regex::Regex;
use scraper::node::Node;
use scraper::Html;

/// Elements whose content is not text.
const NOT_TEXT: [&str; 5] = ["script", "style", "template", "noscript", "head"];

/// Elements that start and end a line.
const BLOCKS: [&str; 33] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "tr",
    "ul",
];

/// Table cells: separated by a space.
const CELLS: [&str; 2] = ["td", "th"];

static LOOKS_LIKE_HTML: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)</?[a-z][a-z0-9-]*(\s[^<>]*)?/?>|<!--|&(#[0-9]{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});",
    )
    .ok()
});

/// True when `text` contains a tag, a comment or a character reference.
pub fn looks_like_html(text: &str) -> bool {
    LOOKS_LIKE_HTML.as_ref().is_some_and(|re| re.is_match(text))
}

/// The text of `input` without its markup, and the number of elements and
/// comments removed; `None` when `input` does not look like HTML (see the
/// module docs).
pub fn strip(input: &str) -> Option<(String, usize)> {
    if !looks_like_html(input) {
        return None;
    }
    let fragment = Html::parse_fragment(input);
    let mut out = String::with_capacity(input.len());
    let mut removed = 0;
    // Depth-first walk with an explicit stack (no recursion on deep input);
    // `true` marks the closing visit of an element.
    let mut stack = vec![(fragment.tree.root(), false)];
    while let Some((node, closing)) = stack.pop() {
        match node.value() {
            Node::Text(text) => out.push_str(text),
            Node::Element(element) => {
                let name = element.name();
                if closing {
                    if name != "br" && name != "hr" {
                        separate(&mut out, name);
                    }
                    continue;
                }
                // the parser wraps a fragment in a synthetic <html> element
                if name != "html" || node.parent().is_some_and(|p| p.parent().is_some()) {
                    removed += 1;
                }
                if NOT_TEXT.contains(&name) {
                    continue;
                }
                separate(&mut out, name);
                stack.push((node, true));
                stack.extend(node.children().rev().map(|c| (c, false)));
            }
            Node::Comment(_) => removed += 1,
            _ => stack.extend(node.children().rev().map(|c| (c, false))),
        }
    }
    Some((out, removed))
}

fn separate(out: &mut String, element: &str) {
    if BLOCKS.contains(&element) {
        out.push('\n');
    } else if CELLS.contains(&element) {
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_not_parsed() {
        for text in ["3 < 5 and 7 > 2", "a<b", "AT&T", "Tom & Jerry", "x <= y"] {
            assert_eq!(strip(text), None, "{text}");
        }
    }

    #[test]
    fn tags_go_entities_are_decoded_blocks_break_lines() {
        let (text, removed) =
            strip("<p>Caf&eacute; &amp; <b>bar</b></p><p>Second&nbsp;line<br/>third</p>")
                .expect("html");
        assert_eq!(text, "\nCafé & bar\n\nSecond\u{a0}line\nthird\n");
        assert_eq!(removed, 4);
    }

    #[test]
    fn scripts_styles_and_comments_are_dropped() {
        let (text, removed) =
            strip("Hello <script>alert('x')</script><style>p{}</style><!-- note -->world &#8217;s")
                .expect("html");
        assert_eq!(text, "Hello world \u{2019}s");
        assert_eq!(removed, 3);
    }

    #[test]
    fn entities_alone_are_decoded() {
        let (text, removed) = strip("Fish &amp; chips &lt;3").expect("entities");
        assert_eq!(text, "Fish & chips <3");
        assert_eq!(removed, 0);
    }
}
