//! `compress`: compresses proxied answers with zstd, brotli or gzip when the client
//! accepts it (`Accept-Encoding`, q-values honoured), the content type is compressible and the
//! answer is large enough. Streaming: each chunk is compressed and flushed as it comes,
//! so server-sent events and token streams keep flowing; nothing is buffered. Answers
//! that already carry a `Content-Encoding`, `206`, `204`, `304`, `HEAD` and `no-transform`
//! answers are left alone. `Vary: Accept-Encoding` is added to every compressible answer.
//!
//! ```yaml
//! - { name: compress, algorithms: [zstd, br, gzip], min_size: 1KiB }
//! ```

use super::units::Size;
use crate::{BuildCtx, Decision, Factory, Flow, Plugin, PluginCtx, RequestCall, SettingsError};
use async_trait::async_trait;
use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    TRANSFER_ENCODING, VARY,
};
use http::HeaderValue;
use pingora_http::ResponseHeader;
use schemars::JsonSchema;
use serde::Deserialize;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// A content coding the plugin produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Zstandard (RFC 8878), `Content-Encoding: zstd`.
    Zstd,
    /// Brotli (RFC 7932), `Content-Encoding: br`.
    Br,
    /// gzip (RFC 1952).
    Gzip,
}

impl Algorithm {
    fn token(self) -> &'static str {
        match self {
            Algorithm::Zstd => "zstd",
            Algorithm::Br => "br",
            Algorithm::Gzip => "gzip",
        }
    }
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::Zstd, Algorithm::Br, Algorithm::Gzip]
}

fn default_types() -> Vec<String> {
    [
        "application/json",
        "application/problem+json",
        "application/javascript",
        "application/xml",
        "application/x-ndjson",
        "image/svg+xml",
        "text/*",
    ]
    .map(String::from)
    .to_vec()
}

fn default_min_size() -> Size {
    Size(1024)
}

fn default_level() -> u32 {
    5
}

/// Compression settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompressSettings {
    /// Codings offered, in the server's order of preference (default `[zstd, br,
    /// gzip]`); a client's higher q-value wins over this order.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Compressible content types (`type/subtype`, or `type/*`); default JSON, NDJSON,
    /// JavaScript, XML, SVG and `text/*`. An answer without `Content-Type` is not
    /// compressed.
    #[serde(default = "default_types")]
    pub types: Vec<String>,
    /// Answers whose `Content-Length` is smaller are sent as they are (default `1KiB`);
    /// answers of unknown length (streams) are compressed.
    #[serde(default = "default_min_size")]
    pub min_size: Size,
    /// 1 (fastest) to 9 (smallest): gzip's and zstd's level, brotli's quality + 1
    /// (default 5).
    #[serde(default = "default_level")]
    pub level: u32,
}

pub struct Compress {
    algorithms: Vec<Algorithm>,
    types: Vec<String>,
    min_size: u64,
    level: u32,
}

/// The coding chosen from `Accept-Encoding` in the request phase (the plugin's own
/// value of the request until its response phase).
#[derive(Clone, Copy)]
struct Chosen(Algorithm);

/// The streaming encoder of one answer (the plugin's own value of the request from its
/// response phase on; the mutex only makes it `Sync`: it is reached through `&mut`,
/// never locked).
struct Encoding(Mutex<Encoder>);

enum Encoder {
    Zstd(Box<zstd::stream::write::Encoder<'static, Vec<u8>>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Done,
}

impl Encoder {
    /// Compresses `chunk` and returns what is ready (flushed, so a stream keeps flowing);
    /// at the end, the trailer too.
    fn push(&mut self, chunk: &[u8], end: bool) -> std::io::Result<Vec<u8>> {
        let out = match self {
            Encoder::Zstd(e) => {
                e.write_all(chunk)?;
                if end {
                    let e = std::mem::replace(self, Encoder::Done);
                    return match e {
                        Encoder::Zstd(e) => e.finish(),
                        _ => Ok(Vec::new()),
                    };
                }
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            Encoder::Gzip(e) => {
                e.write_all(chunk)?;
                if end {
                    let e = std::mem::replace(self, Encoder::Done);
                    return match e {
                        Encoder::Gzip(e) => e.finish(),
                        _ => Ok(Vec::new()),
                    };
                }
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            Encoder::Br(e) => {
                e.write_all(chunk)?;
                if end {
                    let e = std::mem::replace(self, Encoder::Done);
                    return match e {
                        Encoder::Br(e) => Ok(e.into_inner()),
                        _ => Ok(Vec::new()),
                    };
                }
                e.flush()?;
                std::mem::take(e.get_mut())
            }
            Encoder::Done => Vec::new(),
        };
        Ok(out)
    }
}

/// The bytes differ once compressed: a strong validator becomes a weak one (as nginx
/// does).
fn weaken_etag(resp: &mut ResponseHeader) {
    if let Some(tag) = resp.headers.get(ETAG).cloned() {
        if !tag.as_bytes().starts_with(b"W/") {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(tag.as_bytes());
            if let Ok(v) = HeaderValue::from_bytes(&weak) {
                let _ = resp.insert_header(ETAG, v);
            }
        }
    }
}

/// The client's preferred coding among `offered`, by q-value, then by the order of
/// `offered`; `None` when it accepts none of them (`identity` only, `q=0`, no header).
fn negotiate(accept: &str, offered: &[Algorithm]) -> Option<Algorithm> {
    // (coding, q in thousandths)
    let items: Vec<(&str, u16)> = accept
        .split(',')
        .map(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (name, (q.clamp(0.0, 1.0) * 1000.0) as u16)
        })
        .collect();
    let star = items.iter().find(|(n, _)| *n == "*").map(|(_, q)| *q);
    let mut best: Option<(u16, usize, Algorithm)> = None;
    for (i, a) in offered.iter().enumerate() {
        let q = items
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(a.token()))
            .map(|(_, q)| *q)
            .or(star)
            .unwrap_or(0);
        // a higher q wins; on a tie, the earlier in `offered`
        if q > 0 && best.is_none_or(|(bq, _, _)| q > bq) {
            best = Some((q, i, *a));
        }
    }
    best.map(|(_, _, a)| a)
}

impl Compress {
    fn compressible(&self, content_type: &str) -> bool {
        let ct = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.types.iter().any(|t| match t.strip_suffix("/*") {
            Some(major) => ct.split('/').next() == Some(major),
            None => *t == ct,
        })
    }

    fn encoder(&self, a: Algorithm) -> std::io::Result<Encoder> {
        Ok(match a {
            Algorithm::Zstd => Encoder::Zstd(Box::new(zstd::stream::write::Encoder::new(
                Vec::new(),
                self.level as i32,
            )?)),
            Algorithm::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(self.level),
            )),
            // 1-9 onto brotli's 0-11 quality; a 22-bit window (4 MiB), the default
            Algorithm::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                (self.level + 1).min(11),
                22,
            ))),
        })
    }
}

impl Compress {
    /// The request phase: it never waits.
    fn admit(&self, call: &mut RequestCall<'_>) -> Decision {
        if call.method() == http::Method::HEAD {
            return Ok(Flow::Continue);
        }
        let accept = call
            .req
            .headers
            .get_all(ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        if let Some(a) = negotiate(&accept, &self.algorithms) {
            call.ctx.set_own(Chosen(a));
        }
        Ok(Flow::Continue)
    }
}

#[async_trait]
impl Plugin for Compress {
    /// Decides without waiting: no future per request.
    fn request_now(&self, call: &mut RequestCall<'_>) -> Option<Decision> {
        Some(self.admit(call))
    }

    fn on_response(&self, resp: &mut ResponseHeader, ctx: &mut PluginCtx) {
        let compressible = resp
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| self.compressible(ct));
        if !compressible {
            return;
        }
        let _ = resp.append_header(VARY, HeaderValue::from_static("Accept-Encoding"));
        let Some(Chosen(a)) = ctx.take_own::<Chosen>() else {
            return;
        };
        let status = resp.status.as_u16();
        let small = resp
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n < self.min_size);
        let no_transform = resp.headers.get_all(CACHE_CONTROL).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("no-transform"))
        });
        if small
            || no_transform
            || !(200..300).contains(&status)
            || matches!(status, 204 | 206)
            || resp.headers.contains_key(CONTENT_ENCODING)
        {
            return;
        }
        match self.encoder(a) {
            Ok(e) => {
                let _ = resp.insert_header(CONTENT_ENCODING, HeaderValue::from_static(a.token()));
                resp.remove_header(&CONTENT_LENGTH);
                // HTTP/1.1 framing for a body of unknown length: without it the answer
                // is close-delimited and every compressed answer closes the client's
                // connection (HTTP/2 drops the field)
                let _ = resp.insert_header(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
                weaken_etag(resp);
                ctx.set_own(Encoding(Mutex::new(e)));
            }
            // an encoder that cannot be made (zstd out of memory): sent as it is
            Err(e) => tracing::warn!(plugin = "compress", error = %e, "no encoder"),
        }
    }

    fn wants_response_body(&self) -> bool {
        true
    }

    fn on_response_body(&self, body: &mut Option<Bytes>, end_of_stream: bool, ctx: &mut PluginCtx) {
        let Some(Encoding(enc)) = ctx.own::<Encoding>() else {
            return;
        };
        let Ok(enc) = enc.get_mut() else {
            return;
        };
        let chunk = body.take().unwrap_or_default();
        match enc.push(&chunk, end_of_stream) {
            Ok(out) if out.is_empty() && !end_of_stream => *body = None,
            Ok(out) => *body = Some(Bytes::from(out)),
            Err(e) => {
                // an in-memory writer does not fail; if it ever does, the stream ends
                tracing::warn!(plugin = "compress", error = %e, "cannot compress");
                *body = None;
            }
        }
    }
}

impl Factory for Compress {
    const NAME: &'static str = "compress";
    const SUMMARY: &'static str =
        "Compress proxied answers with zstd, brotli or gzip (Accept-Encoding), streaming";
    type Settings = CompressSettings;

    fn build(s: CompressSettings, _cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        if s.algorithms.is_empty() {
            return Err(SettingsError::at(
                "algorithms",
                "name at least one of br, gzip",
            ));
        }
        if !(1..=9).contains(&s.level) {
            return Err(SettingsError::at(
                "level",
                "a level is 1 (fastest) to 9 (smallest)",
            ));
        }
        for (i, t) in s.types.iter().enumerate() {
            let ok = t
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty());
            if !ok {
                return Err(SettingsError::at(
                    format!("types[{i}]"),
                    format!("`{t}` is not a content type (`type/subtype` or `type/*`)"),
                ));
            }
        }
        Ok(Arc::new(Compress {
            algorithms: s.algorithms,
            types: s
                .types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect(),
            min_size: s.min_size.0,
            level: s.level,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read;

    #[test]
    fn negotiation_honours_q_values_then_server_order() {
        let both = [Algorithm::Br, Algorithm::Gzip];
        let all = default_algorithms();
        assert_eq!(
            negotiate("gzip, deflate, br, zstd", &all),
            Some(Algorithm::Zstd)
        );
        assert_eq!(negotiate("gzip, br", &all), Some(Algorithm::Br));
        assert_eq!(negotiate("gzip, deflate, br", &both), Some(Algorithm::Br));
        assert_eq!(negotiate("gzip", &both), Some(Algorithm::Gzip));
        assert_eq!(
            negotiate("br;q=0.5, gzip;q=0.8", &both),
            Some(Algorithm::Gzip)
        );
        assert_eq!(negotiate("br;q=0, gzip;q=0", &both), None);
        assert_eq!(negotiate("identity", &both), None);
        assert_eq!(negotiate("", &both), None);
        assert_eq!(negotiate("*", &both), Some(Algorithm::Br));
        assert_eq!(negotiate("*;q=0.1, br;q=0", &both), Some(Algorithm::Gzip));
        assert_eq!(negotiate("GZIP", &[Algorithm::Gzip]), Some(Algorithm::Gzip));
    }

    #[test]
    fn streams_round_trip() {
        let c = Compress {
            algorithms: default_algorithms(),
            types: default_types(),
            min_size: 0,
            level: 5,
        };
        let text = "the quick brown fox jumps over the lazy dog ".repeat(200);
        for a in [Algorithm::Gzip, Algorithm::Br, Algorithm::Zstd] {
            let mut enc = c.encoder(a).unwrap();
            let mut out = Vec::new();
            for (i, chunk) in text.as_bytes().chunks(700).enumerate() {
                let got = enc.push(chunk, false).unwrap();
                assert!(
                    i == 0 || !got.is_empty(),
                    "a flushed chunk comes out at once"
                );
                out.extend(got);
            }
            out.extend(enc.push(&[], true).unwrap());
            let mut back = String::new();
            match a {
                Algorithm::Gzip => flate2::read::GzDecoder::new(&out[..])
                    .read_to_string(&mut back)
                    .unwrap(),
                Algorithm::Br => brotli::Decompressor::new(&out[..], 4096)
                    .read_to_string(&mut back)
                    .unwrap(),
                Algorithm::Zstd => zstd::stream::read::Decoder::new(&out[..])
                    .unwrap()
                    .read_to_string(&mut back)
                    .unwrap(),
            };
            assert_eq!(back, text);
            assert!(out.len() < text.len() / 4, "{a:?}: {}", out.len());
        }
        assert!(c.compressible("application/json; charset=utf-8"));
        assert!(c.compressible("text/event-stream"));
        assert!(!c.compressible("image/png"));
    }
}
