//! Raw clients: HTTP/1.1 as bytes on a TcpStream (most variants are not valid for a
//! URL-parsing client, which would also normalise them), and a minimal prior-knowledge
//! h2c client that writes its own HEADERS frame (literal HPACK fields, no Huffman), so
//! that any `:path` bytes, upper-case or connection-specific header names and duplicate
//! pseudo-headers can be sent as they are.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// What came back on a connection.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// Status of the first response (0: none, or not decodable).
    pub status: u16,
    /// Body of the first response (de-chunked for HTTP/1.1).
    pub body: String,
    /// Everything read (HTTP/1: every response on the connection).
    pub raw: String,
    /// How the exchange ended when it ended without a response: `closed`, `timeout`,
    /// `rst_stream(<code>)`, `goaway(<code>)`.
    pub ended: Option<String>,
    /// Whether the first response carried `X-Request-ID` (every answer the gateway
    /// sends or forwards does; a bare answer of the HTTP engine does not).
    pub request_id: Option<bool>,
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `bytes` on a fresh connection and reads until the peer closes (the request
/// should end with a `Connection: close` request).
pub fn h1(port: u16, bytes: &[u8]) -> Answer {
    let mut a = Answer::default();
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        a.ended = Some("connect failed".into());
        return a;
    };
    let _ = s.set_read_timeout(Some(TIMEOUT));
    if s.write_all(bytes).is_err() {
        a.ended = Some("write failed".into());
        return a;
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                if out.is_empty() {
                    a.ended = Some(
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) {
                            "timeout".into()
                        } else {
                            "closed".into()
                        },
                    );
                }
                break;
            }
        }
    }
    a.raw = String::from_utf8_lossy(&out).into_owned();
    if out.is_empty() {
        a.ended.get_or_insert_with(|| "closed".into());
        return a;
    }
    let Some(head_end) = find(&out, b"\r\n\r\n") else {
        a.ended = Some("closed".into());
        return a;
    };
    let head = String::from_utf8_lossy(&out[..head_end]).into_owned();
    a.status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    a.request_id = Some(header("x-request-id").is_some());
    let rest = &out[head_end + 4..];
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    a.body = String::from_utf8_lossy(&body).into_owned();
    a
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(b, b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size else { break };
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = &b[(end + 2).min(b.len())..];
    }
    out
}

// ---- h2c ----

/// `x-request-id` Huffman-coded (RFC 7541 Appendix B), as the h2 crate's encoder
/// writes every name; the first response on a fresh connection has no dynamic table
/// entries, so the name is spelled out in it.
const X_REQUEST_ID_HUFFMAN: &[u8] = &[0xf2, 0xb5, 0x85, 0xed, 0x69, 0x50, 0x95, 0x8d, 0x27];

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK integer with an `n`-bit prefix; `first` holds the bits above the prefix.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A header block of literal fields without indexing, new names, no Huffman.
pub fn header_block(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in fields {
        out.push(0x00);
        hpack_int(&mut out, 0, 7, k.len());
        out.extend_from_slice(k);
        hpack_int(&mut out, 0, 7, v.len());
        out.extend_from_slice(v);
    }
    out
}

fn read_int(b: &[u8], i: &mut usize, n: u32) -> Option<usize> {
    let max = (1usize << n) - 1;
    let mut v = (*b.get(*i)? as usize) & max;
    *i += 1;
    if v < max {
        return Some(v);
    }
    let mut shift = 0;
    loop {
        let c = *b.get(*i)?;
        *i += 1;
        v += ((c & 0x7f) as usize) << shift;
        shift += 7;
        if c & 0x80 == 0 {
            return Some(v);
        }
    }
}

/// Huffman-coded digits (RFC 7541 Appendix B: `0`-`2` are 5-bit codes, `3`-`9` 6-bit).
fn huffman_digits(b: &[u8]) -> Option<String> {
    let bits: Vec<u8> = b
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |i| (byte >> i) & 1))
        .collect();
    let val = |from: usize, n: usize| -> Option<u32> {
        (from + n <= bits.len()).then(|| {
            bits[from..from + n]
                .iter()
                .fold(0, |a, &x| a * 2 + x as u32)
        })
    };
    let mut out = String::new();
    let mut i = 0;
    while out.len() < 3 {
        let five = val(i, 5)?;
        if five <= 2 {
            out.push(char::from(b'0' + five as u8));
            i += 5;
        } else {
            let six = val(i, 6)?;
            if !(25..=31).contains(&six) {
                return None;
            }
            out.push(char::from(b'3' + (six - 25) as u8));
            i += 6;
        }
    }
    Some(out)
}

/// `:status` from the first response header block (the first field of a fresh
/// connection's first block: static-table index, or a literal with `:status` as name).
fn status_of(block: &[u8]) -> u16 {
    let mut i = 0;
    while let Some(&b) = block.get(i) {
        if b & 0xe0 == 0x20 {
            // dynamic table size update
            if read_int(block, &mut i, 5).is_none() {
                return 0;
            }
            continue;
        }
        if b & 0x80 != 0 {
            let idx = read_int(block, &mut i, 7).unwrap_or(0);
            return match idx {
                8 => 200,
                9 => 204,
                10 => 206,
                11 => 304,
                12 => 400,
                13 => 404,
                14 => 500,
                _ => 0,
            };
        }
        let name = if b & 0xc0 == 0x40 {
            read_int(block, &mut i, 6)
        } else {
            read_int(block, &mut i, 4)
        };
        if !(8..=14).contains(&name.unwrap_or(0)) {
            return 0;
        }
        let Some(&h) = block.get(i) else { return 0 };
        let Some(len) = read_int(block, &mut i, 7) else {
            return 0;
        };
        let Some(v) = block.get(i..i + len) else {
            return 0;
        };
        let text = if h & 0x80 != 0 {
            huffman_digits(v)
        } else {
            std::str::from_utf8(v).ok().map(str::to_owned)
        };
        return text.and_then(|t| t.parse().ok()).unwrap_or(0);
    }
    0
}

/// One request on a fresh prior-knowledge h2c connection: the fields (pseudo-headers
/// included, in the order given) in one HEADERS frame with END_STREAM.
pub fn h2(port: u16, fields: &[(Vec<u8>, Vec<u8>)]) -> Answer {
    let mut a = Answer::default();
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        a.ended = Some("connect failed".into());
        return a;
    };
    let _ = s.set_read_timeout(Some(TIMEOUT));
    let mut out = PREFACE.to_vec();
    out.extend(frame(4, 0, 0, &[]));
    out.extend(frame(1, 0x5, 1, &header_block(fields)));
    if s.write_all(&out).is_err() {
        a.ended = Some("write failed".into());
        return a;
    }
    let mut body = Vec::new();
    let mut got_headers = false;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        // one frame
        while buf.len() < 9 || buf.len() < 9 + frame_len(&buf) {
            match s.read(&mut chunk) {
                Ok(0) => {
                    a.ended.get_or_insert_with(|| "closed".into());
                    return finish(a, body, got_headers);
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => {
                    a.ended.get_or_insert_with(|| "timeout".into());
                    return finish(a, body, got_headers);
                }
            }
        }
        let len = frame_len(&buf);
        let (kind, flags) = (buf[3], buf[4]);
        let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
        let payload: Vec<u8> = buf[9..9 + len].to_vec();
        buf.drain(..9 + len);
        match (kind, stream) {
            (4, 0) if flags & 1 == 0 => {
                let _ = s.write_all(&frame(4, 1, 0, &[]));
            }
            (6, 0) if flags & 1 == 0 => {
                let _ = s.write_all(&frame(6, 1, 0, &payload));
            }
            (7, 0) => {
                let code = payload
                    .get(4..8)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(0);
                a.ended = Some(format!("goaway({code})"));
                return finish(a, body, got_headers);
            }
            (1, 1) => {
                let mut p = &payload[..];
                if flags & 0x8 != 0 {
                    let pad = *p.first().unwrap_or(&0) as usize;
                    p = &p[1..p.len().saturating_sub(pad)];
                }
                if flags & 0x20 != 0 {
                    p = p.get(5..).unwrap_or(&[]);
                }
                if !got_headers {
                    a.status = status_of(p);
                    a.request_id = Some(
                        find(p, X_REQUEST_ID_HUFFMAN).is_some()
                            || find(p, b"x-request-id").is_some(),
                    );
                    got_headers = true;
                }
                if flags & 1 != 0 {
                    return finish(a, body, got_headers);
                }
            }
            (0, 1) => {
                let mut p = &payload[..];
                if flags & 0x8 != 0 {
                    let pad = *p.first().unwrap_or(&0) as usize;
                    p = &p[1..p.len().saturating_sub(pad)];
                }
                body.extend_from_slice(p);
                if !p.is_empty() {
                    // give the window back so that a large body is never stuck
                    let inc = (p.len() as u32).to_be_bytes();
                    let _ = s.write_all(&frame(8, 0, 0, &inc));
                    let _ = s.write_all(&frame(8, 0, 1, &inc));
                }
                if flags & 1 != 0 {
                    return finish(a, body, got_headers);
                }
            }
            (3, 1) => {
                let code = payload
                    .get(..4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(0);
                a.ended = Some(format!("rst_stream({code})"));
                return finish(a, body, got_headers);
            }
            _ => {}
        }
    }
}

fn frame_len(buf: &[u8]) -> usize {
    if buf.len() < 3 {
        return 0;
    }
    ((buf[0] as usize) << 16) | ((buf[1] as usize) << 8) | buf[2] as usize
}

fn finish(mut a: Answer, body: Vec<u8>, got_headers: bool) -> Answer {
    a.body = String::from_utf8_lossy(&body).into_owned();
    a.raw = a.body.clone();
    if got_headers && a.ended.as_deref() == Some("closed") && !a.body.is_empty() {
        a.ended = None;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_pieces() {
        // RFC 7541 C.1: 1337 with a 5-bit prefix
        let mut v = Vec::new();
        hpack_int(&mut v, 0, 5, 1337);
        assert_eq!(v, [31, 154, 10]);
        let mut i = 0;
        assert_eq!(read_int(&v, &mut i, 5), Some(1337));
        // RFC 7541 C.6.1: ":status: 302" Huffman-coded is 0x64 0x02
        assert_eq!(huffman_digits(&[0x64, 0x02]).as_deref(), Some("302"));
        assert_eq!(status_of(&[0x88]), 200);
        assert_eq!(status_of(&[0x48, 0x82, 0x64, 0x02]), 302);
        assert_eq!(status_of(&[0x08, 0x03, b'4', b'0', b'1']), 401);
    }
}
