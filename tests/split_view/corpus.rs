//! The generated corpus: request variants aimed at the guarded path
//! `/api/v1/admin/users`, in families (the rows of the matrix). Every path variant is
//! sent over HTTP/1.1 and h2c without credentials; header variants are sent with and
//! without a valid API key; a few controls check that the harness itself sees what it
//! should (a valid key reaches the guarded handler, no key is refused, the public
//! handler answers).

use std::collections::HashSet;

pub const GUARDED: &str = "/api/v1/admin/users";
/// The forged identity values a client sends; no guarded handler may ever see one.
pub const FORGED: &str = "forged-admin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cred {
    /// No credential.
    None,
    /// A key the gateway does not know.
    Invalid,
    /// A valid key (consumer `alice`).
    Valid,
}

impl Cred {
    pub fn label(self) -> &'static str {
        match self {
            Cred::None => "none",
            Cred::Invalid => "invalid",
            Cred::Valid => "valid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    H1,
    H2c,
}

impl Proto {
    pub fn label(self) -> &'static str {
        match self {
            Proto::H1 => "h1",
            Proto::H2c => "h2c",
        }
    }
}

/// What a control variant must give (the harness's own sanity check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Guarded,
    Public,
    Refused,
}

/// How the request is put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Wire {
    /// `GET <target>` with these extra header lines (raw bytes, in order).
    Get {
        target: Vec<u8>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// A whole HTTP/1.1 byte stream (smuggling attempts); the harness appends a
    /// final `Connection: close` request to the public path.
    Raw(Vec<u8>),
    /// h2c: every field of the HEADERS frame (pseudo-headers included), in order.
    H2Fields(Vec<(Vec<u8>, Vec<u8>)>),
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub family: &'static str,
    /// What the variant is, readable (the target as sent, with non-printable bytes escaped).
    pub name: String,
    pub proto: Proto,
    pub cred: Cred,
    pub wire: Wire,
    pub expect: Option<Expect>,
}

/// Printable form of raw bytes.
pub fn show(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'|' => s.push_str("\\x7c"),
            0x21..=0x7e => s.push(c as char),
            b' ' => s.push_str("\\x20"),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

fn enc(c: u8, lower: bool) -> String {
    if lower {
        format!("%{c:02x}")
    } else {
        format!("%{c:02X}")
    }
}

fn push(v: &mut Vec<(&'static str, Vec<u8>)>, fam: &'static str, s: impl AsRef<[u8]>) {
    v.push((fam, s.as_ref().to_vec()));
}

/// The path variants: (family, raw target bytes).
fn path_variants() -> Vec<(&'static str, Vec<u8>)> {
    let g = GUARDED.as_bytes();
    let mut v: Vec<(&'static str, Vec<u8>)> = Vec::new();

    // one character percent-encoded, upper and lower hex
    for i in 0..g.len() {
        for lower in [false, true] {
            let e = enc(g[i], lower);
            if lower && e == enc(g[i], false) {
                continue;
            }
            let s = format!("{}{}{}", &GUARDED[..i], e, &GUARDED[i + 1..]);
            push(&mut v, "encode-one", &s);
        }
    }
    // several characters: every one, segments, subsets of the inner slashes
    for lower in [false, true] {
        let all: String = g.iter().map(|&c| enc(c, lower)).collect();
        push(&mut v, "encode-many", &all);
        let keep_slashes: String = g
            .iter()
            .map(|&c| {
                if c == b'/' {
                    "/".to_string()
                } else {
                    enc(c, lower)
                }
            })
            .collect();
        push(&mut v, "encode-many", &keep_slashes);
    }
    for seg in ["api", "v1", "admin", "users"] {
        let e: String = seg.bytes().map(|c| enc(c, false)).collect();
        push(&mut v, "encode-many", GUARDED.replacen(seg, &e, 1));
    }
    let slash_at = [4usize, 7, 13];
    for mask in 1..8u8 {
        for lower in [false, true] {
            let mut s = String::new();
            for (i, &c) in g.iter().enumerate() {
                let k = slash_at.iter().position(|&p| p == i);
                match k {
                    Some(k) if mask & (1 << k) != 0 => s.push_str(&enc(c, lower)),
                    _ => s.push(c as char),
                }
            }
            push(&mut v, "encode-slash", &s);
        }
    }
    push(&mut v, "encode-slash", "%2Fapi/v1/admin/users");
    push(&mut v, "encode-slash", "/%2Fapi/v1/admin/users");
    push(&mut v, "encode-slash", "/api/v1/admin/users%2F");
    push(&mut v, "encode-slash", "/api/v1/admin%2F%2Fusers");
    // double (and triple) encoding
    for i in 0..g.len() {
        let s = format!("{}%25{:02X}{}", &GUARDED[..i], g[i], &GUARDED[i + 1..]);
        push(&mut v, "double-encode", &s);
    }
    for s in [
        "/api/v1/admin%252fusers",
        "/api/v1/admin%25252Fusers",
        "/api/v1/admin%2525252Fusers",
        "/api/v1%252Fadmin%252Fusers",
        "/api/v1/admin%%32%46users",
        "/api/v1/admin%25%32%46users",
        "/api/v1/admin%%32Fusers",
        "/api/v1/admin%2%46users",
        "/api/v1/admin%u002fusers",
        "/api/v1/x/%252e%252e/admin/users",
        "/api/v1/x%252F..%252Fadmin/users",
    ] {
        push(&mut v, "double-encode", s);
    }
    // dot segments, raw and encoded
    for s in [
        "/api/v1/x/../admin/users",
        "/api/v1/./admin/users",
        "/api/v1/admin/./users",
        "/api/v1/admin/users/.",
        "/api/v1/admin/users/./",
        "/api/v1/public/../admin/users",
        "/api/v1/x/y/../../admin/users",
        "/api/x/../v1/admin/users",
        "/x/../api/v1/admin/users",
        "/../api/v1/admin/users",
        "/../../../api/v1/admin/users",
        "/api/v1/admin/x/../users",
        "/api/v1/admin/users/x/..",
        "/api/v1/admin/users/x/../",
        "/api/v1/x/%2e%2e/admin/users",
        "/api/v1/x/%2E%2E/admin/users",
        "/api/v1/x/.%2e/admin/users",
        "/api/v1/x/%2e./admin/users",
        "/api/v1/%2e/admin/users",
        "/api/v1/x/..%2Fadmin/users",
        "/api/v1/x/..%2fadmin/users",
        "/api/v1/x%2F..%2Fadmin/users",
        "/api/v1/x%2f..%2fadmin/users",
        "/api/v1/x/..%5Cadmin/users",
        "/api/v1/x/..\\admin/users",
        "/api/v1/x/..;/admin/users",
        "/api/v1/x/...//admin/users",
        "/api/v1/x/..../admin/users",
        "/api/v1/x/%c0%ae%c0%ae/admin/users",
        "/api/v1/x/%uff0e%uff0e/admin/users",
        "/api/v1/x/..%00/admin/users",
        "/api/v1/pub/..%2F..%2Fv1/admin/users",
        "/api/v2/../v1/admin/users",
        "/api/v1/admin/users/..%2F",
        "/api/v1/admin./users",
        "/api/v1/admin%2e/users",
        "/api/v1/admin.%2e/users",
        "/api/v1/x/..;x=1/admin/users",
        "/api/v1/x/..%3B/admin/users",
        "/api/v1/x/%2e%2e;/admin/users",
    ] {
        push(&mut v, "dot-segment", s);
    }
    // doubled and trailing slashes, query and fragment on the plain path
    for s in [
        "//api/v1/admin/users",
        "///api/v1/admin/users",
        "/api//v1/admin/users",
        "/api/v1//admin/users",
        "/api/v1///admin/users",
        "/api/v1/admin//users",
        "/api/v1/admin////users",
        "/api/v1/admin/users/",
        "/api/v1/admin/users//",
        "/api/v1/admin/users///",
        "//api//v1//admin//users//",
        "/api/v1/admin/users?",
        "/api/v1/admin/users?x=1",
        "/api/v1/admin/users/?x=/../",
        "/api/v1/admin/users#frag",
        "/api/v1/admin/users/x",
    ] {
        push(&mut v, "slashes", s);
    }
    // case
    for s in [
        "/API/v1/admin/users",
        "/Api/v1/admin/users",
        "/api/V1/admin/users",
        "/api/v1/Admin/users",
        "/api/v1/ADMIN/users",
        "/api/v1/aDmIn/users",
        "/api/v1/admin/Users",
        "/api/v1/admin/USERS",
        "/API/V1/ADMIN/USERS",
        "/api/v1/%41dmin/users",
        "/api/v1/%41DMIN/users",
        "/api/v1/ADMIN%2Fusers",
    ] {
        push(&mut v, "case", s);
    }
    // `;` parameters, raw and encoded
    for s in [
        "/api/v1/admin;x/users",
        "/api/v1;/admin/users",
        "/api;/v1/admin/users",
        "/api/v1/admin;/users",
        "/api/v1/admin/users;x",
        "/api/v1/admin/users;",
        "/api/v1/;/admin/users",
        "/;/api/v1/admin/users",
        "/api/v1/admin;jsessionid=1/users",
        "/api/v1;x=1/admin;y=2/users;z=3",
        "/api/v1/x;/../admin/users",
        "/api/v1/public;/../admin/users",
        "/api/v1/admin%3Busers",
        "/api/v1/admin%3bx/users",
        "/api/v1/admin%3B/users",
        "/api/v1/admin/users%3B",
        "/api/v1%3B/admin/users",
        "/api/v1/admin;%2Fusers",
    ] {
        push(&mut v, "semicolon", s);
    }
    // backslashes, raw and encoded
    for s in [
        "/api/v1\\admin/users",
        "/api/v1/admin\\users",
        "/api\\v1\\admin\\users",
        "\\api/v1/admin/users",
        "/\\api/v1/admin/users",
        "/api/v1\\\\admin/users",
        "/api/v1/x\\..\\admin/users",
        "/api/v1/x/..\\admin\\users",
        "/api/v1/admin/users\\",
        "/api/v1\\/admin/users",
        "/api/v1/admin%5Cusers",
        "/api/v1/admin%5cusers",
        "/api/v1%5Cadmin%5Cusers",
        "/api/v1/x%5C..%5Cadmin/users",
        "/api/v1/x/..%5cadmin/users",
        "/api/v1/admin%5C/users",
    ] {
        push(&mut v, "backslash", s);
    }
    // Unicode look-alikes and overlong UTF-8, as escapes and as raw bytes
    let slash_alikes = [
        "%C0%AF",
        "%c0%af",
        "%E0%80%AF",
        "%F0%80%80%AF",
        "%C1%9C",
        "%E2%81%84",
        "%E2%88%95",
        "%EF%BC%8F",
        "%E2%A7%B8",
        "%EF%BC%BC",
        "%E2%95%B1",
        "%u2215",
        "%uEFC8",
    ];
    for a in slash_alikes {
        push(&mut v, "unicode", format!("/api/v1/admin{a}users"));
    }
    for s in [
        "/api/v1/x/%C0%AE%C0%AE/admin/users",
        "/api/v1/x/%EF%BC%8E%EF%BC%8E/admin/users",
        "/api/v1/x/%E2%80%A4%E2%80%A4/admin/users",
        "/api/v1/x%C0%AF..%C0%AFadmin/users",
        "/api/v1/%EF%BD%81%EF%BD%84%EF%BD%8D%EF%BD%89%EF%BD%8E/users",
        "/api/v1/adm%C4%B1n/users",
        "/api/v1/admin/u%C5%BFers",
        "/api/v1/%D0%B0dmin/users",
        "/api/v1/admin%E2%80%8B/users",
        "/api/v1/admin%CC%81/users",
        "/api/v1/admin%EF%BB%BF/users",
        "/api/v1/admin%C0%80/users",
    ] {
        push(&mut v, "unicode", s);
    }
    // raw UTF-8 bytes (not valid in a request target; some servers take them)
    for raw in [
        "/api/v1/admin\u{ff0f}users",
        "/api/v1/admin\u{2215}users",
        "/api/v1/\u{ff41}\u{ff44}\u{ff4d}\u{ff49}\u{ff4e}/users",
        "/api/v1/adm\u{131}n/users",
    ] {
        push(&mut v, "unicode", raw);
    }
    push(&mut v, "unicode", b"/api/v1/admin\xc0\xafusers");
    push(&mut v, "unicode", b"/api/v1/admin\xffusers");
    // NUL, raw and encoded
    for s in [
        "/api/v1/admin%00/users",
        "/api/v1/admin/users%00",
        "/api/v1/admin/users%00.json",
        "/api/v1/%00/../admin/users",
        "/api/v1/admin%00%2Fusers",
        "/api/v1/admin%2500/users",
        "/api/v1/admin/users%00/",
    ] {
        push(&mut v, "nul", s);
    }
    push(&mut v, "nul", b"/api/v1/admin\x00/users");
    push(&mut v, "nul", b"/api/v1/admin/users\x00");
    // `?` and `#`, encoded and raw
    for s in [
        "/api/v1/admin/users%3F",
        "/api/v1/admin/users%3Fx=1",
        "/api/v1/admin%3F/users",
        "/api/v1/admin%3f/users",
        "/api/v1/x%3F/../admin/users",
        "/api/v1/public%3F/../admin/users",
        "/api/v1/admin/users%23",
        "/api/v1/admin%23/users",
        "/api/v1/x%23/../admin/users",
        "/api/v1/public?/../admin/users",
        "/api/v1/public#/../admin/users",
        "/api/v1/public?%2F../admin/users",
        "/api/v1/admin%3F%2Fusers",
        "/api/v1/admin%23%2Fusers",
    ] {
        push(&mut v, "query-fragment", s);
    }
    // whitespace and control characters
    for s in [
        "/api/v1/admin%20/users",
        "/api/v1/admin/users%20",
        "/api/v1/admin%09/users",
        "/api/v1/admin/users%09",
        "/api/v1/admin/users%0A",
        "/api/v1/admin/users%0D%0A",
        "/api/v1/admin%0A/users",
        "/api/v1/admin/users%7F",
        "/api/v1/admin%FF/users",
        "/api/v1/admin/users%",
        "/api/v1/admin/users%2",
        "/api/v1/admin%zz/users",
    ] {
        push(&mut v, "whitespace-control", s);
    }
    push(&mut v, "whitespace-control", b"/api/v1/admin\t/users");
    push(&mut v, "whitespace-control", b"/api/v1/admin/users\x0b");
    push(&mut v, "whitespace-control", b"/api/v1/admin/users\x7f");
    // other request-target forms
    for s in [
        "http://127.0.0.1/api/v1/admin/users",
        "http://evil.example/api/v1/admin/users",
        "HTTP://127.0.0.1/api/v1/admin/users",
        "http://127.0.0.1/api/v1/admin%2Fusers",
        "http://u@127.0.0.1/api/v1/admin/users",
        "http://127.0.0.1//api/v1/admin/users",
        "api/v1/admin/users",
        "*",
        "/api/v1/admin/users?.css",
        "/api/v1/admin/users.json",
    ] {
        push(&mut v, "target-form", s);
    }
    // combinations
    for s in [
        "/api/v1/public/..%2Fadmin/users",
        "/api%2Fv1%2Fadmin%2Fusers",
        "/api/v1%2Fadmin/users",
        "/API/v1/admin%2Fusers",
        "/api/v1//admin%2Fusers",
        "/api/v1/ADMIN%2fUSERS",
        "/api/v1;/admin%2Fusers",
        "/api/v1/x/../admin%2Fusers",
        "/api/v1/admin%2F./users",
        "/api/v1/admin%2F%2E%2E%2Fadmin%2Fusers",
        "/api/v1/Admin%5Cusers",
        "/api/v1/admin%2Fusers;x",
        "/api/v1/admin%2Fusers/",
        "/api/v1/%61dmin%2fusers",
        "/api/v1/admin%EF%BC%8Fusers%3B",
        "/api/v1\\admin%2Fusers",
    ] {
        push(&mut v, "mixed", s);
    }
    v
}

/// Header fields (name, value), raw.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Identity-header spellings a client may send (the gateway sets `X-User-Id` itself).
fn forged_headers() -> Vec<(&'static str, Fields)> {
    let h = |pairs: &[(&str, &str)]| -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    };
    let f = FORGED;
    vec![
        ("X-User-Id", h(&[("X-User-Id", f)])),
        ("x-user-id", h(&[("x-user-id", f)])),
        ("X-USER-ID", h(&[("X-USER-ID", f)])),
        ("X_User_Id", h(&[("X_User_Id", f)])),
        ("x_user_id", h(&[("x_user_id", f)])),
        ("X_USER_ID", h(&[("X_USER_ID", f)])),
        ("X-User_Id", h(&[("X-User_Id", f)])),
        ("X_User-Id", h(&[("X_User-Id", f)])),
        (
            "X-User-Id twice",
            h(&[("X-User-Id", f), ("X-User-Id", "forged-second")]),
        ),
        (
            "X-User-Id and X_User_Id",
            h(&[("X-User-Id", f), ("X_User_Id", "forged-second")]),
        ),
        ("X-Scopes", h(&[("X-Scopes", "forged-admin:write")])),
        ("X_Scopes", h(&[("X_Scopes", "forged-admin:write")])),
        (
            "X-User-Id, X_User_Id, x-user_id, X-Scopes, X_Scopes",
            h(&[
                ("X-User-Id", f),
                ("X_User_Id", f),
                ("x-user_id", f),
                ("X-Scopes", "forged-admin:write"),
                ("X_Scopes", "forged-admin:write"),
            ]),
        ),
    ]
}

/// h1-only header tricks (not expressible as h2 fields): raw header lines.
fn h1_header_lines() -> Vec<(&'static str, Vec<u8>)> {
    let f = FORGED;
    vec![
        (
            "space before colon",
            format!("X-User-Id : {f}\r\n").into_bytes(),
        ),
        (
            "tab before colon",
            format!("X-User-Id\t: {f}\r\n").into_bytes(),
        ),
        (
            "obs-fold continuation",
            format!("X-Note: a\r\n X-User-Id: {f}\r\n").into_bytes(),
        ),
        (
            "bare LF line end",
            format!("X-Note: a\nX-User-Id: {f}\r\n").into_bytes(),
        ),
        (
            "NUL in the value",
            format!("X-User-Id: {f}\x00alice\r\n").into_bytes(),
        ),
        (
            "CR in the value",
            format!("X-User-Id: {f}\rX-Other: 1\r\n").into_bytes(),
        ),
    ]
}

/// Raw HTTP/1.1 smuggling attempts whose hidden request is for the guarded path.
fn smuggling() -> Vec<(&'static str, Vec<u8>)> {
    let hidden = "GET /api/v1/admin/users HTTP/1.1\r\nHost: t\r\n\r\n";
    let chunk = format!("{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len());
    vec![
        (
            "CL.TE: Content-Length and Transfer-Encoding",
            format!(
                "POST /api/v1/public HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}",
                5 + hidden.len()
            )
            .into_bytes(),
        ),
        (
            "TE.CL: chunked body, short Content-Length",
            format!(
                "POST /api/v1/public HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}"
            )
            .into_bytes(),
        ),
        (
            "TE: chunked, identity",
            format!(
                "POST /api/v1/public HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{hidden}"
            )
            .into_bytes(),
        ),
        (
            "TE with a space before the colon",
            format!(
                "POST /api/v1/public HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{hidden}"
            )
            .into_bytes(),
        ),
        (
            "TE: xchunked",
            format!(
                "POST /api/v1/public HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n{hidden}"
            )
            .into_bytes(),
        ),
        (
            "two Content-Length",
            format!(
                "POST /api/v1/public HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{hidden}",
                hidden.len()
            )
            .into_bytes(),
        ),
        (
            "pipelined plain request",
            format!("GET /api/v1/public HTTP/1.1\r\nHost: t\r\n\r\n{hidden}").into_bytes(),
        ),
        (
            "GET with a body",
            format!(
                "GET /api/v1/public HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{hidden}",
                hidden.len()
            )
            .into_bytes(),
        ),
    ]
}

/// h2c-only tricks: the pseudo-headers and field names an h2 server must refuse.
fn h2_tricks() -> Vec<(&'static str, Fields)> {
    let b = |s: &str| s.as_bytes().to_vec();
    let base = |path: &str| {
        vec![
            (b(":method"), b("GET")),
            (b(":scheme"), b("http")),
            (b(":authority"), b("127.0.0.1")),
            (b(":path"), b(path)),
        ]
    };
    let with = |path: &str, extra: &[(&str, &str)]| {
        let mut f = base(path);
        f.extend(extra.iter().map(|(k, v)| (b(k), b(v))));
        f
    };
    vec![
        (
            ":path twice (public, then guarded)",
            with("/api/v1/public", &[(":path", GUARDED)]),
        ),
        (
            ":path twice (guarded, then public)",
            with(GUARDED, &[(":path", "/api/v1/public")]),
        ),
        ("pseudo-header after a field", {
            let mut f = base("/api/v1/public");
            f.insert(3, (b("x-note"), b("a")));
            f
        }),
        ("no :path", {
            let mut f = base(GUARDED);
            f.pop();
            f
        }),
        (
            "connection: keep-alive",
            with(GUARDED, &[("connection", "keep-alive")]),
        ),
        ("keep-alive: 5", with(GUARDED, &[("keep-alive", "5")])),
        (
            "proxy-connection",
            with(GUARDED, &[("proxy-connection", "keep-alive")]),
        ),
        (
            "transfer-encoding: chunked",
            with(GUARDED, &[("transfer-encoding", "chunked")]),
        ),
        ("upgrade: h2c", with(GUARDED, &[("upgrade", "h2c")])),
        ("te: gzip", with(GUARDED, &[("te", "gzip")])),
        (
            "upper-case field name X-User-Id",
            with(GUARDED, &[("X-User-Id", FORGED)]),
        ),
        (
            "field value with CR LF",
            with(GUARDED, &[("x-note", "a\r\nx-user-id: forged-admin")]),
        ),
        (
            "host differs from :authority",
            with(GUARDED, &[("host", "evil.example")]),
        ),
        (
            ":path absolute-form",
            base("http://127.0.0.1/api/v1/admin/users"),
        ),
        (
            ":method CONNECT with :path",
            vec![
                (b(":method"), b("CONNECT")),
                (b(":authority"), b("127.0.0.1")),
                (b(":path"), b(GUARDED)),
            ],
        ),
    ]
}

/// The whole corpus, deduplicated, in a stable order.
pub fn corpus() -> Vec<Variant> {
    let mut out: Vec<Variant> = Vec::new();
    let b = |s: &str| s.as_bytes().to_vec();
    let h2_base = |path: &[u8]| {
        vec![
            (b(":method"), b("GET")),
            (b(":scheme"), b("http")),
            (b(":authority"), b("127.0.0.1")),
            (b(":path"), path.to_vec()),
        ]
    };
    // controls
    let key = |c: Cred| -> Vec<(Vec<u8>, Vec<u8>)> {
        match c {
            Cred::None => vec![],
            Cred::Invalid => vec![(b("X-API-Key"), b("ak_nobody_0000000000"))],
            Cred::Valid => vec![(b("X-API-Key"), b(super::ALICE_KEY))],
        }
    };
    for proto in [Proto::H1, Proto::H2c] {
        for (cred, target, expect) in [
            (Cred::Valid, GUARDED, Expect::Guarded),
            (Cred::None, GUARDED, Expect::Refused),
            (Cred::Invalid, GUARDED, Expect::Refused),
            (Cred::None, "/api/v1/public", Expect::Public),
        ] {
            let wire = match proto {
                Proto::H1 => Wire::Get {
                    target: b(target),
                    headers: key(cred),
                },
                Proto::H2c => {
                    let mut f = h2_base(target.as_bytes());
                    f.extend(
                        key(cred)
                            .into_iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v)),
                    );
                    Wire::H2Fields(f)
                }
            };
            out.push(Variant {
                family: "control",
                name: target.to_string(),
                proto,
                cred,
                wire,
                expect: Some(expect),
            });
        }
    }
    // path variants, no credential, both protocols
    for (family, target) in path_variants() {
        for proto in [Proto::H1, Proto::H2c] {
            let wire = match proto {
                Proto::H1 => Wire::Get {
                    target: target.clone(),
                    headers: vec![],
                },
                Proto::H2c => Wire::H2Fields(h2_base(&target)),
            };
            out.push(Variant {
                family,
                name: show(&target),
                proto,
                cred: Cred::None,
                wire,
                expect: None,
            });
        }
    }
    // identity headers: guarded path with and without a valid key, public path without
    for (name, fields) in forged_headers() {
        for (cred, target) in [
            (Cred::None, GUARDED),
            (Cred::Valid, GUARDED),
            (Cred::None, "/api/v1/public"),
        ] {
            for proto in [Proto::H1, Proto::H2c] {
                let mut headers = key(cred);
                headers.extend(fields.iter().cloned());
                let wire = match proto {
                    Proto::H1 => Wire::Get {
                        target: b(target),
                        headers,
                    },
                    Proto::H2c => {
                        let mut f = h2_base(target.as_bytes());
                        f.extend(
                            headers
                                .into_iter()
                                .map(|(k, v)| (k.to_ascii_lowercase(), v)),
                        );
                        Wire::H2Fields(f)
                    }
                };
                out.push(Variant {
                    family: "identity-header",
                    name: format!("{name} on {target}"),
                    proto,
                    cred,
                    wire,
                    expect: None,
                });
            }
        }
    }
    for (name, line) in h1_header_lines() {
        for cred in [Cred::None, Cred::Valid] {
            let mut raw = format!("GET {GUARDED} HTTP/1.1\r\nHost: t\r\n").into_bytes();
            if cred == Cred::Valid {
                raw.extend_from_slice(format!("X-API-Key: {}\r\n", super::ALICE_KEY).as_bytes());
            }
            raw.extend_from_slice(&line);
            raw.extend_from_slice(b"\r\n");
            out.push(Variant {
                family: "identity-header",
                name: format!("{name} on {GUARDED}"),
                proto: Proto::H1,
                cred,
                wire: Wire::Raw(raw),
                expect: None,
            });
        }
    }
    for (name, raw) in smuggling() {
        out.push(Variant {
            family: "smuggling",
            name: name.to_string(),
            proto: Proto::H1,
            cred: Cred::None,
            wire: Wire::Raw(raw),
            expect: None,
        });
    }
    for (name, fields) in h2_tricks() {
        out.push(Variant {
            family: "h2-fields",
            name: name.to_string(),
            proto: Proto::H2c,
            cred: Cred::None,
            wire: Wire::H2Fields(fields),
            expect: None,
        });
    }
    let mut seen = HashSet::new();
    out.retain(|v| seen.insert((v.proto, v.cred, v.wire.clone())));
    out
}
