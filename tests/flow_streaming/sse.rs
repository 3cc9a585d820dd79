//! Reading an event stream in the flow streaming tests: each event with its name, its
//! data as JSON and when it arrived, and the check that events paced at the source
//! arrived spread out.

use crate::common::jobs::{parse_event, Event};
use futures::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

/// One event as received: its name, its data as JSON (`Null` if not JSON), and when
/// the chunk that completed it arrived.
#[derive(Debug)]
pub struct Got {
    pub name: Option<String>,
    pub data: Value,
    pub at: Duration,
}

/// Reads a whole event stream, noting when each event arrived.
pub async fn events(r: reqwest::Response) -> Vec<Got> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut chunks = r.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let raw: String = buf.drain(..end + 2).collect();
            if let Some(Event { name, data }) = parse_event(&raw) {
                let at = start.elapsed();
                out.push(Got { name, data, at });
            }
        }
    }
    out
}

pub fn is_event_stream(r: &reqwest::Response) -> bool {
    r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream")
}

/// Events paced `delay` apart at the source reached the client spread out, not in a
/// burst at the end: they came in at least half as many reads as there are events,
/// over at least half the time they took to make.
pub fn assert_paced(got: &[Got], delay: Duration) {
    let n = got.len();
    let mut distinct: Vec<Duration> = got.iter().map(|g| g.at).collect();
    distinct.dedup();
    assert!(
        distinct.len() * 2 >= n,
        "{n} events in {} reads: {got:?}",
        distinct.len()
    );
    let spread = got[n - 1].at - got[0].at;
    assert!(
        spread >= delay * (n as u32 - 1) / 2,
        "{n} events over {spread:?}: {got:?}"
    );
}
