//! Positions of the nodes of a YAML document, keyed by their path (`routes[3].upstream`),
//! so that errors found after deserialisation can still point at a line and column.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Path → position of the node (for a mapping entry, the position of its key).
#[derive(Debug, Default)]
pub struct Locations {
    map: HashMap<String, Pos>,
}

impl Locations {
    /// Index `text`; a document that does not parse yields an empty index (the syntax
    /// error itself is reported by the deserialiser, with its own position).
    pub fn index(text: &str) -> Self {
        let mut rx = Receiver::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut rx, false).is_err() {
            return Self::default();
        }
        Self { map: rx.map }
    }

    /// Position of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.map.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { next: usize },
}

#[derive(Default)]
struct Receiver {
    stack: Vec<(String, Frame)>,
    map: HashMap<String, Pos>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Receiver {
    /// Called for a node in value position; returns its path.
    fn enter_value(&mut self, mark: Marker) -> Option<String> {
        let pos = Pos {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some((parent, Frame::Seq { next })) => {
                let path = format!("{parent}[{next}]");
                *next += 1;
                self.map.entry(path.clone()).or_insert(pos);
                Some(path)
            }
            Some((parent, Frame::Map { key })) => key.take().map(|k| join(parent, &k)),
        }
    }

    /// Whether the next node of the innermost mapping is a key.
    fn at_key(&self) -> bool {
        matches!(self.stack.last(), Some((_, Frame::Map { key: None })))
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if self.at_key() {
                    let pos = Pos {
                        line: mark.line(),
                        column: mark.col() + 1,
                    };
                    if let Some((parent, Frame::Map { key })) = self.stack.last_mut() {
                        self.map.entry(join(parent, &value)).or_insert(pos);
                        *key = Some(value);
                    }
                } else {
                    self.enter_value(mark);
                }
            }
            Event::Alias(_) => {
                self.enter_value(mark);
            }
            Event::MappingStart(..) => {
                let path = self.enter_value(mark).unwrap_or_default();
                self.stack.push((path, Frame::Map { key: None }));
            }
            Event::SequenceStart(..) => {
                let path = self.enter_value(mark).unwrap_or_default();
                self.stack.push((path, Frame::Seq { next: 0 }));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_paths() {
        let text = "version: 1\nroutes:\n  - name: a\n    upstream: x\n  - name: b\n    match: { path: /b }\n";
        let l = Locations::index(text);
        assert_eq!(l.find("version"), Some(Pos { line: 1, column: 1 }));
        assert_eq!(l.find("routes[1].name"), Some(Pos { line: 5, column: 5 }));
        assert_eq!(
            l.find("routes[0].upstream"),
            Some(Pos { line: 4, column: 5 })
        );
        assert_eq!(
            l.find("routes[1].match.path"),
            Some(Pos {
                line: 6,
                column: 14
            })
        );
        // unknown child falls back to the parent
        assert_eq!(
            l.find("routes[1].match.nope"),
            Some(Pos { line: 6, column: 5 })
        );
    }
}
