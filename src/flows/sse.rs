//! Server-Sent Events as the flows read and write them: [`Splitter`] cuts an
//! upstream's byte stream into whole events (each kept as received, so it is passed on
//! byte for byte), [`event`] writes one, and an [`EventSink`] is where a streamed flow
//! answer goes (the proxy writes it to the client).

use super::FlowAnswer;
use bytes::{Bytes, BytesMut};

/// The client went away (a write failed).
#[derive(Debug)]
pub struct Gone;

/// Where a streamed flow answer is written.
#[async_trait::async_trait]
pub trait EventSink: Send {
    /// Writes the head of a `text/event-stream` answer.
    async fn open(&mut self) -> Result<(), Gone>;
    /// Writes one event.
    async fn event(&mut self, event: Bytes) -> Result<(), Gone>;
    /// Writes `event: error` with the JSON error of `answer`.
    async fn fail(&mut self, answer: FlowAnswer) -> Result<(), Gone>;
    /// The route's `sse_keepalive`: how long the stream may be idle before a
    /// [`KEEP_ALIVE`] comment is written.
    fn keepalive(&self) -> Option<std::time::Duration>;
}

/// A comment line that keeps an idle stream open (proxies and clients see traffic).
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The longest event kept while incomplete; beyond, the stream is refused.
pub const MAX_EVENT: usize = 1 << 20;

/// One whole event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The bytes as received, the blank line that ends it included.
    pub raw: Bytes,
    /// The `event:` field (none: a `message`).
    pub name: Option<String>,
    /// The `data:` lines joined with `\n`; empty for a comment-only event.
    pub data: String,
}

/// An event is longer than [`MAX_EVENT`].
#[derive(Debug, thiserror::Error)]
#[error("an event of the stream is longer than {MAX_EVENT} bytes")]
pub struct TooLong;

/// Cuts a byte stream into events.
#[derive(Default)]
pub struct Splitter {
    buf: BytesMut,
}

/// Where the blank line ending the first event in `b` ends.
fn event_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            match b.get(i + 1) {
                Some(b'\n') => return Some(i + 2),
                Some(b'\r') if b.get(i + 2) == Some(&b'\n') => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

impl Splitter {
    /// Adds `chunk`; returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, TooLong> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = event_end(&self.buf) {
            let raw = self.buf.split_to(end).freeze();
            out.push(parse(raw));
        }
        if self.buf.len() > MAX_EVENT {
            return Err(TooLong);
        }
        Ok(out)
    }
}

fn parse(raw: Bytes) -> Event {
    let text = String::from_utf8_lossy(&raw);
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => name = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    let data = data.join("\n");
    Event { raw, name, data }
}

/// One event: `event: <name>` when given, then `data: <data>` and a blank line.
pub fn event(name: Option<&str>, data: &str) -> Bytes {
    let mut s = String::with_capacity(data.len() + 24);
    if let Some(n) = name {
        s.push_str("event: ");
        s.push_str(n);
        s.push('\n');
    }
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line);
        s.push('\n');
    }
    s.push('\n');
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn events_are_cut_across_chunks_and_kept_as_received() {
        let mut s = Splitter::default();
        assert!(s.feed(b"data: {\"text\":\"a\"}\n").unwrap().is_empty());
        let e = s
            .feed(b"\n: keep-alive\n\nevent: error\r\ndata: x\r\ndata: y\r\n\r\nda")
            .unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].raw, Bytes::from_static(b"data: {\"text\":\"a\"}\n\n"));
        assert_eq!(e[0].data, "{\"text\":\"a\"}");
        assert_eq!(e[1].data, "");
        assert_eq!(e[2].name.as_deref(), Some("error"));
        assert_eq!(e[2].data, "x\ny");
        assert_eq!(s.feed(b"ta: z\n\n").unwrap()[0].data, "z");
    }

    #[test]
    fn an_event_is_written_with_its_name() {
        assert_eq!(
            event(Some("result"), "{}"),
            Bytes::from_static(b"event: result\ndata: {}\n\n")
        );
        assert_eq!(event(None, "a"), Bytes::from_static(b"data: a\n\n"));
    }
}
