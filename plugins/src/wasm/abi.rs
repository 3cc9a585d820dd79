//! The proxy-wasm ABI's numbers (statuses, map and buffer types, actions) and its
//! header-pairs encoding, as Envoy implements ABI 0.2.0 and 0.2.1.

/// `WasmResult`: what a host function returns to the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    Unimplemented = 12,
}

impl From<Status> for i32 {
    fn from(s: Status) -> i32 {
        s as i32
    }
}

/// A host function's result: `Ok` or the failing status.
pub type HostResult = Result<(), Status>;

/// The status a host function hands back for `r`.
pub fn code(r: HostResult) -> i32 {
    match r {
        Ok(()) => Status::Ok as i32,
        Err(s) => s as i32,
    }
}

/// Header maps (`proxy_*_header_map_*`'s first argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
    GrpcReceiveInitialMetadata,
    GrpcReceiveTrailingMetadata,
    HttpCallResponseHeaders,
    HttpCallResponseTrailers,
    Other,
}

impl MapType {
    pub fn of(v: i32) -> Self {
        match v {
            0 => Self::RequestHeaders,
            1 => Self::RequestTrailers,
            2 => Self::ResponseHeaders,
            3 => Self::ResponseTrailers,
            4 => Self::GrpcReceiveInitialMetadata,
            5 => Self::GrpcReceiveTrailingMetadata,
            6 => Self::HttpCallResponseHeaders,
            7 => Self::HttpCallResponseTrailers,
            _ => Self::Other,
        }
    }
}

/// Buffers (`proxy_get_buffer_bytes`'s first argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    RequestBody,
    ResponseBody,
    HttpCallResponseBody,
    GrpcReceiveBuffer,
    VmConfiguration,
    PluginConfiguration,
    Other,
}

impl BufferType {
    pub fn of(v: i32) -> Self {
        match v {
            0 => Self::RequestBody,
            1 => Self::ResponseBody,
            4 => Self::HttpCallResponseBody,
            5 => Self::GrpcReceiveBuffer,
            6 => Self::VmConfiguration,
            7 => Self::PluginConfiguration,
            _ => Self::Other,
        }
    }
}

/// What a filter callback asks for: `Continue` (0), or anything else, `Pause`
/// (StopIteration and its variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

impl Action {
    pub fn of(v: i32) -> Self {
        if v == 0 {
            Self::Continue
        } else {
            Self::Pause
        }
    }
}

/// Log levels of `proxy_log` (trace 0 .. critical 5).
pub fn level_name(level: i32) -> &'static str {
    match level {
        0 => "trace",
        1 => "debug",
        2 => "info",
        3 => "warn",
        _ => "error",
    }
}

/// Encodes pairs as the ABI does: the count, each key and value length (u32 little
/// endian), then each key and value followed by a NUL byte.
pub fn encode_pairs<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let pairs: Vec<(&[u8], &[u8])> = pairs.collect();
    let size = pairs
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>()
        + 4;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in &pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Decodes pairs encoded by [`encode_pairs`]; `None` when malformed.
pub fn decode_pairs(data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let u32_at = |i: usize| -> Option<usize> {
        let b = data.get(i..i + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if data.is_empty() {
        return Some(Vec::new());
    }
    let n = u32_at(0)?;
    let mut sizes = Vec::with_capacity(n.min(1024));
    for i in 0..n {
        sizes.push((u32_at(4 + i * 8)?, u32_at(8 + i * 8)?));
    }
    let mut at = 4 + n.checked_mul(8)?;
    let mut out = Vec::with_capacity(sizes.len());
    for (kl, vl) in sizes {
        let k = data.get(at..at + kl)?;
        at += kl + 1;
        let v = data.get(at..at + vl)?;
        at += vl + 1;
        out.push((k, v));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/a?b"), (b"x-id", b""), (b"k", b"v")];
        let enc = encode_pairs(pairs.iter().copied());
        assert_eq!(&enc[..4], &3u32.to_le_bytes());
        assert_eq!(decode_pairs(&enc).unwrap(), pairs);
        assert!(decode_pairs(&enc[..enc.len() - 3]).is_none());
        assert_eq!(decode_pairs(&[]).unwrap(), vec![]);
    }
}
