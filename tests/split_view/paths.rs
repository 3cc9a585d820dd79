//! The corpus's path variants: every character of the guarded path encoded alone and in
//! groups, double and triple encoding, dot segments, slashes, case, `;` parameters,
//! backslashes, look-alikes, overlong UTF-8, NUL, `?`/`#`, whitespace and control bytes,
//! request-target forms.

use crate::corpus::GUARDED;

pub(crate) fn enc(c: u8, lower: bool) -> String {
    if lower {
        format!("%{c:02x}")
    } else {
        format!("%{c:02X}")
    }
}

pub(crate) fn push(v: &mut Vec<(&'static str, Vec<u8>)>, fam: &'static str, s: impl AsRef<[u8]>) {
    v.push((fam, s.as_ref().to_vec()));
}

/// The path variants: (family, raw target bytes).
pub(crate) fn path_variants() -> Vec<(&'static str, Vec<u8>)> {
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
