//! Reading the tokens an answer used, as it streams past: the `tokens` member of a JSON
//! answer (or `usage.total_tokens`, or a pipeline's `generation.tokens`), or of the last
//! Server-Sent Event whose `data:` JSON carries one (the final `done` event of a token
//! stream). The body is only observed, never changed or held back.

use serde_json::Value;

/// The most of a JSON answer kept to read its `tokens` (bigger ones charge nothing and
/// are logged).
const MAX_JSON: usize = 1 << 20;
/// The longest SSE line kept while it is incomplete.
const MAX_LINE: usize = 64 * 1024;

/// How the answer carries its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Json,
    Sse,
}

#[derive(Debug)]
pub(super) struct Meter {
    mode: Mode,
    buf: Vec<u8>,
    found: Option<u64>,
    overflow: bool,
}

/// The count in one JSON document.
fn tokens_in(v: &Value) -> Option<u64> {
    v.get("tokens")
        .and_then(Value::as_u64)
        .or_else(|| v.pointer("/usage/total_tokens").and_then(Value::as_u64))
        .or_else(|| v.pointer("/generation/tokens").and_then(Value::as_u64))
}

impl Meter {
    pub(super) fn new(mode: Mode) -> Self {
        Self {
            mode,
            buf: Vec::new(),
            found: None,
            overflow: false,
        }
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) {
        match self.mode {
            Mode::Json => {
                if self.overflow {
                    return;
                }
                if self.buf.len() + chunk.len() > MAX_JSON {
                    self.overflow = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            Mode::Sse => {
                self.buf.extend_from_slice(chunk);
                while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=end).collect();
                    self.line(&line);
                }
                if self.buf.len() > MAX_LINE {
                    self.buf.clear();
                }
            }
        }
    }

    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        if let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii()) {
            if let Some(t) = tokens_in(&v) {
                self.found = Some(t);
            }
        }
    }

    /// The count, once the answer is whole; `None` when it carries none.
    pub(super) fn finish(&mut self) -> Option<u64> {
        match self.mode {
            Mode::Json if self.overflow => {
                tracing::warn!(
                    plugin = "token_limit",
                    "a JSON answer over 1 MiB: its tokens are not read"
                );
                None
            }
            Mode::Json => serde_json::from_slice::<Value>(&self.buf)
                .ok()
                .and_then(|v| tokens_in(&v)),
            Mode::Sse => {
                let rest = std::mem::take(&mut self.buf);
                self.line(&rest);
                self.found
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_answers_in_pieces() {
        let mut m = Meter::new(Mode::Json);
        let body = br#"{"text":"a b c","model":"m","tokens":3,"seed":1}"#;
        for c in body.chunks(5) {
            m.feed(c);
        }
        assert_eq!(m.finish(), Some(3));
        let mut m = Meter::new(Mode::Json);
        m.feed(br#"{"usage":{"total_tokens":42}}"#);
        assert_eq!(m.finish(), Some(42));
        let mut m = Meter::new(Mode::Json);
        m.feed(br#"{"result":{},"generation":{"tokens":7}}"#);
        assert_eq!(m.finish(), Some(7));
        let mut m = Meter::new(Mode::Json);
        m.feed(b"not json");
        assert_eq!(m.finish(), None);
    }

    #[test]
    fn the_last_sse_event_with_a_count() {
        let mut m = Meter::new(Mode::Sse);
        let stream = "data: {\"text\":\"a\"}\n\ndata: {\"text\":\"b\"}\n\n: keep-alive\n\nevent: done\ndata: {\"done\":true,\"tokens\":2}\n\n";
        for c in stream.as_bytes().chunks(7) {
            m.feed(c);
        }
        assert_eq!(m.finish(), Some(2));
        // a last line without its newline counts too
        let mut m = Meter::new(Mode::Sse);
        m.feed(b"data: {\"done\":true,\"tokens\":9}");
        assert_eq!(m.finish(), Some(9));
    }
}
