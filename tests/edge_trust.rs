//! The edge's refusals through a real gateway, with an upstream that counts what reaches
//! it: ambiguous encoded characters in paths (400 `ambiguous_path`, nothing forwarded,
//! `allow_encoded` per route and server-wide, forwarded as received), header names with
//! `_` (drop, reject, keep; identity headers stripped in every spelling), HTTP/2
//! connection-specific headers (never proxied), global plugins on the gateway's 404 and
//! 405, CORS preflights before auth, and JWTs with `crit`.
#![allow(clippy::unwrap_used)]

mod common;
use axum::extract::Request;
use base64::Engine;
use common::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "edge-trust-secret-0123456789abcdef";

/// An upstream that counts requests and echoes the path as received and the headers.
struct Counting {
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Counting {
    async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let headers: Vec<(String, String)> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                axum::Json(serde_json::json!({
                    "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
                    "headers": headers,
                }))
            }
        });
        let (addr, task) = serve_app(app).await;
        Self {
            addr,
            hits,
            _task: task,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Values of header `name` the upstream saw (as the echo lists them).
fn seen(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0] == name)
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect()
}

fn hs256(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn exp() -> u64 {
    jsonwebtoken::get_current_timestamp() + 300
}

fn table(up: std::net::SocketAddr, server: &str) -> String {
    format!(
        r#"version: 1
server: {{ {server} }}
upstreams:
  u: {{ targets: [{{ addr: "{up}" }}] }}
routes:
  - name: admin
    match: {{ path_prefix: /api/v1/admin }}
    upstream: u
    plugins: [{{ name: jwt, secret_env: JWT_SECRET, algorithms: [HS256] }}]
  - name: files
    match: {{ path_prefix: /api/v1/files }}
    upstream: u
    allow_encoded: [slash, question_mark]
  - name: public
    match: {{ path_prefix: /api/v1 }}
    upstream: u
"#
    )
}

fn start(up: &Counting, server: &str) -> Gateway {
    Gateway::start_with(&table(up.addr, server), &[("JWT_SECRET", SECRET)])
}

fn get(gw: &Gateway, target: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    raw_request(gw.port, &req).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_paths_are_refused_unless_allowed() {
    let up = Counting::start().await;
    let gw = start(&up, "allow_encoded: [percent]");
    for (path, names) in [
        ("/api/v1/admin%2fusers", "%2F"),
        ("/api/v1/admin%2Fusers", "%2F"),
        ("/api/v1/admin%5Cusers", "%5C"),
        ("/api/v1/admin\\users", "backslash"),
        ("/api/v1/admin%3busers", "%3B"),
        ("/api/v1/admin;x/users", "semicolon"),
        ("/api/v1/admin%3Fx", "%3F"),
        ("/api/v1/admin%23x", "%23"),
        ("/api/v1/admin%00", "%00"),
        ("/api/v1/files/a%00b", "%00"),
        ("/nowhere%2fat-all", "%2F"),
    ] {
        let r = get(&gw, path, &[]);
        assert!(r.starts_with("HTTP/1.1 400"), "{path}: {r}");
        let b = raw_json(&r);
        assert_eq!(b["error"], "ambiguous_path", "{path}: {r}");
        assert!(
            b["message"].as_str().unwrap().contains(names),
            "{path}: {b}"
        );
        assert!(
            r.to_ascii_lowercase().contains("x-request-id:"),
            "{path}: {r}"
        );
    }
    assert_eq!(up.hits(), 0, "nothing reaches the upstream");
    assert_eq!(
        gw.metric("gateway_requests_blocked_total{reason=\"ambiguous_path\"}")
            .await,
        Some(11.0)
    );
    // allowed characters are forwarded exactly as received; matching is unchanged
    let r = get(&gw, "/api/v1/files/a%2fb%3Fc?q=1", &[]);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(raw_json(&r)["path"], "/api/v1/files/a%2fb%3Fc?q=1");
    // server-wide: percent on every route, so `%252F` reaches the open route as is
    let r = get(&gw, "/api/v1/x%252Fy", &[]);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(raw_json(&r)["path"], "/api/v1/x%252Fy");
    // what the files route allows is not allowed elsewhere, and the rest stays refused
    assert!(get(&gw, "/api/v1/x%2Fy", &[]).starts_with("HTTP/1.1 400"));
    assert!(get(&gw, "/api/v1/files/a%3Bb", &[]).starts_with("HTTP/1.1 400"));
    assert_eq!(up.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn underscore_headers_drop_reject_keep() {
    let up = Counting::start().await;
    let token = hs256(serde_json::json!({"sub": "alice", "exp": exp(), "scope": "read"}));
    let bearer = format!("Bearer {token}");
    let spoof = [
        ("X_User_Id", "admin"),
        ("x-user_id", "admin"),
        ("X-Scopes", "admin"),
        ("X_Scopes", "admin"),
        ("Accept_Language", "fr"),
    ];
    // drop (default): no name with `_` reaches the upstream
    let gw = start(&up, "");
    let r = get(&gw, "/api/v1/anything", &spoof);
    let b = raw_json(&r);
    for (k, _) in spoof.iter().filter(|(k, _)| k.contains('_')) {
        assert!(seen(&b, &k.to_ascii_lowercase()).is_empty(), "{k}: {b}");
    }
    let mut with_token = spoof.to_vec();
    with_token.push(("Authorization", &bearer));
    let b = raw_json(&get(&gw, "/api/v1/admin/users", &with_token));
    assert_eq!(seen(&b, "x-user-id"), ["alice"], "{b}");
    assert_eq!(seen(&b, "x-scopes"), ["read"], "{b}");
    drop(gw);
    // reject: 400 naming the header, nothing forwarded
    let gw = start(&up, "underscore_headers: reject");
    let before = up.hits();
    let r = get(&gw, "/api/v1/anything", &[("X_User_Id", "admin")]);
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let b = raw_json(&r);
    assert_eq!(b["error"], "underscore_header");
    assert!(b["message"].as_str().unwrap().contains("x_user_id"), "{b}");
    assert_eq!(up.hits(), before);
    drop(gw);
    // keep: forwarded, but never a spelling of an identity header an auth plugin sets
    let gw = start(&up, "underscore_headers: keep");
    let b = raw_json(&get(&gw, "/api/v1/anything", &spoof));
    assert_eq!(seen(&b, "accept_language"), ["fr"], "{b}");
    assert_eq!(seen(&b, "x_user_id"), ["admin"], "{b}");
    let b = raw_json(&get(&gw, "/api/v1/admin/users", &with_token));
    assert_eq!(seen(&b, "x-user-id"), ["alice"], "{b}");
    assert_eq!(seen(&b, "x-scopes"), ["read"], "{b}");
    for k in ["x_user_id", "x-user_id", "x_scopes"] {
        assert!(seen(&b, k).is_empty(), "{k}: {b}");
    }
    assert_eq!(seen(&b, "accept_language"), ["fr"], "{b}");
}

/// One h2c request written frame by frame (HPACK literals without indexing), so that
/// headers an HTTP/2 library refuses to send can be sent. Returns the `:status` of the
/// answer, or `None` when the stream (or connection) was reset.
fn h2c_request(port: u16, path: &str, extra: &[(&str, &str)]) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let frame = |kind: u8, flags: u8, stream: u32, payload: &[u8]| {
        let mut f = Vec::with_capacity(9 + payload.len());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    };
    let mut block = Vec::new();
    let fields = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "x"),
    ];
    for (k, v) in fields.iter().chain(extra) {
        block.push(0x00);
        block.push(k.len() as u8);
        block.extend_from_slice(k.as_bytes());
        block.push(v.len() as u8);
        block.extend_from_slice(v.as_bytes());
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[])); // SETTINGS
    out.extend(frame(1, 0x05, 1, &block)); // HEADERS, END_STREAM | END_HEADERS
    s.write_all(&out).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // frames: 9-byte head, then the payload
        let mut at = 0;
        while buf.len() >= at + 9 {
            let len = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]) as usize;
            let kind = buf[at + 3];
            let stream =
                u32::from_be_bytes([buf[at + 5] & 0x7f, buf[at + 6], buf[at + 7], buf[at + 8]]);
            if buf.len() < at + 9 + len {
                break;
            }
            let payload = &buf[at + 9..at + 9 + len];
            match (kind, stream) {
                (3, 1) | (7, _) => return None, // RST_STREAM, GOAWAY
                (1, 1) => {
                    // the first field is `:status`: indexed (static table 8-14) or a
                    // literal with the indexed name 8
                    return match payload.first() {
                        Some(0x88) => Some(200),
                        Some(0x89) => Some(204),
                        Some(0x8c) => Some(400),
                        Some(0x8d) => Some(404),
                        Some(b) if b & 0xf0 == 0x00 || b & 0xc0 == 0x40 => {
                            let digits = std::str::from_utf8(payload.get(2..5)?).ok()?;
                            digits.parse().ok()
                        }
                        _ => Some(0),
                    };
                }
                _ => {}
            }
            at += 9 + len;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_connection_specific_headers_are_never_proxied() {
    let up = Counting::start().await;
    let gw = start(&up, "");
    assert_eq!(h2c_request(gw.port, "/api/v1/x", &[]), Some(200));
    assert_eq!(up.hits(), 1);
    for (k, v) in [
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("te", "gzip"),
    ] {
        let status = h2c_request(gw.port, "/api/v1/x", &[(k, v)]);
        assert!(matches!(status, None | Some(400)), "{k}: {status:?}");
    }
    assert_eq!(up.hits(), 1, "no malformed HTTP/2 request was proxied");
    assert_eq!(
        h2c_request(gw.port, "/api/v1/x", &[("te", "trailers")]),
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_plugins_preflights_and_crit() {
    let up = Counting::start().await;
    let routes = format!(
        r#"version: 1
upstreams:
  u: {{ targets: [{{ addr: "{}" }}] }}
plugins:
  - {{ name: cors, allow_origins: ["https://app.example.com"] }}
routes:
  - name: guarded
    match: {{ path_prefix: /guarded, methods: [POST] }}
    upstream: u
    plugins:
      - {{ name: jwt, secret_env: JWT_SECRET, algorithms: [HS256] }}
      - {{ name: cors, allow_origins: ["https://app.example.com"] }}
"#,
        up.addr
    );
    let gw = Gateway::start_with(&routes, &[("JWT_SECRET", SECRET)]);
    let c = reqwest::Client::new();
    let origin = "https://app.example.com";
    // the gateway's own 404 and 405 carry the global cors headers
    for (path, status) in [("/no/such/route", 404), ("/guarded", 405)] {
        let r = c
            .get(gw.url(path))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], origin);
    }
    // a preflight is answered by cors although jwt comes first in the list
    let r = c
        .request(reqwest::Method::OPTIONS, gw.url("/guarded"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], origin);
    // the actual request still needs its token
    let r = c
        .post(gw.url("/guarded"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let ok = hs256(serde_json::json!({"sub": "alice", "exp": exp()}));
    let r = c
        .post(gw.url("/guarded"))
        .bearer_auth(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // a token with `crit` is refused although its signature is right
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let head = b64.encode(br#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#);
    let body = b64.encode(serde_json::json!({"sub": "alice", "exp": exp()}).to_string());
    let msg = format!("{head}.{body}");
    let sig = jsonwebtoken::crypto::sign(
        msg.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    let r = c
        .post(gw.url("/guarded"))
        .bearer_auth(format!("{msg}.{sig}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(up.hits(), 1);
    assert_eq!(
        gw.metric("gateway_auth_failures_total{reason=\"malformed\"}")
            .await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_reaches_another_route_without_case_is_refused() {
    let up = Counting::start().await;
    let gw = start(&up, "");
    // Express routes case-insensitively: /api/v1/Admin/users is its admin handler, while
    // the router would give it to the open /api/v1 route
    for path in ["/api/v1/Admin/users", "/api/v1/ADMIN", "/api/v1/aDmin/x"] {
        let r = get(&gw, path, &[]);
        assert!(r.starts_with("HTTP/1.1 400"), "{path}: {r}");
        let b = raw_json(&r);
        assert_eq!(b["error"], "ambiguous_path", "{path}");
        assert!(b["message"].as_str().unwrap().contains("case"), "{b}");
    }
    assert_eq!(up.hits(), 0);
    // upper case that stays on the same route is forwarded as it is
    let r = get(&gw, "/api/v1/Users/AbC", &[]);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(raw_json(&r)["path"], "/api/v1/Users/AbC");
    // and a path no route has without case stays a 404
    assert!(get(&gw, "/API/V2/x", &[]).starts_with("HTTP/1.1 404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_named_twice_is_refused_with_the_gateways_answer() {
    let up = Counting::start().await;
    let gw = start(&up, "");
    for head in [
        "GET http://other.example/api/v1/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /api/v1/x HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n",
        "GET /api/v1/x HTTP/1.1\r\nHost: admin@x\r\nConnection: close\r\n\r\n",
    ] {
        let r = raw_request(gw.port, head).unwrap();
        assert!(r.starts_with("HTTP/1.1 400"), "{head:?}: {r}");
        assert!(r.to_ascii_lowercase().contains("x-request-id:"), "{r}");
        assert_eq!(raw_json(&r)["error"], "bad_request", "{r}");
    }
    assert_eq!(up.hits(), 0);
    // an absolute-form target naming the Host it carries is served
    let r = raw_request(
        gw.port,
        "GET http://x/api/v1/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(raw_json(&r)["path"], "/api/v1/x");
}
