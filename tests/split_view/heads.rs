//! The corpus's header and framing variants: identity-header spellings, HTTP/1 header
//! lines, smuggling attempts and malformed h2 fields.

use crate::corpus::{FORGED, GUARDED};

/// Header fields (name, value), raw.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Identity-header spellings a client may send (the gateway sets `X-User-Id` itself).
pub(crate) fn forged_headers() -> Vec<(&'static str, Fields)> {
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
pub(crate) fn h1_header_lines() -> Vec<(&'static str, Vec<u8>)> {
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
pub(crate) fn smuggling() -> Vec<(&'static str, Vec<u8>)> {
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
pub(crate) fn h2_tricks() -> Vec<(&'static str, Fields)> {
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
