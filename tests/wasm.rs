//! The `wasm` plugin's host functions through a real gateway, with a hand-written
//! filter (WAT): request headers edited for the upstream (add, replace, remove, pseudo
//! headers), response headers for the client, a local response the upstream never
//! sees, the request body read and the response body rewritten, properties as Envoy
//! names them (times and durations as int64 nanoseconds), shared data (with a refused stale CAS), a metric on /metrics, and the
//! filter's log line with the route and request id.
#![allow(clippy::unwrap_used)]

mod common;
mod wasm_common;
use common::*;
use wasm_common::*;

const HOST_FILTER: &str = r#"
  (global $mid (mut i32) (i32.const 0))
  (global $bodyp (mut i32) (i32.const 0))
  (global $bodyl (mut i32) (i32.const 0))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (drop (call $defm (i32.const 0) @"wat_filter_requests" (i32.const 8)))
    (global.set $mid (i32.load (i32.const 8)))
    (i32.const 1))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32) (local $p i32)
    (drop (call $log (i32.const 2) @"wat filter saw a request"))
    ;; request.size: the content-length, before the body is read
    (if (i32.eqz (call $prop @"request\00size" (i32.const 0) (i32.const 4)))
      (then
        (local.set $p (call $itoa (i64.load (i32.load (i32.const 0)))))
        (drop (call $add (i32.const 0) @"x-wasm-size" (local.get $p) (i32.sub (i32.const 65600) (local.get $p))))))
    (if (i32.eqz (call $get (i32.const 0) @"x-wasm-deny" (i32.const 0) (i32.const 4)))
      (then
        (drop (call $local (i32.const 418) @"teapot" @"short and stout"
          @"\01\00\00\00\07\00\00\00\01\00\00\00x-local\001\00" (i32.const 0)))
        (return (i32.const 1))))
    (drop (call $add (i32.const 0) @"x-wasm-added" @"yes"))
    ;; end_of_stream of the request headers: the request has no body
    (if (local.get 2)
      (then (drop (call $add (i32.const 0) @"x-wasm-eos" @"1")))
      (else (drop (call $add (i32.const 0) @"x-wasm-eos" @"0"))))
    (drop (call $replace (i32.const 0) @"x-wasm-replaced" @"new"))
    (drop (call $remove (i32.const 0) @"x-wasm-removed"))
    COPY_METHOD
    COPY_PSEUDO_PATH
    COPY_PATH
    (if (i32.eqz (call $get (i32.const 0) @"x-wasm-share" (i32.const 0) (i32.const 4)))
      (then
        (drop (call $sset @"wat_shared" (i32.load (i32.const 0)) (i32.load (i32.const 4)) (i32.const 0)))
        (if (i32.eq (call $sset @"wat_shared" @"stale" (i32.const 999999)) (i32.const 8))
          (then (drop (call $add (i32.const 0) @"x-wasm-cas" @"mismatch"))))))
    (drop (call $incm (global.get $mid) (i64.const 1)))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $len i32) (param i32) (result i32)
    ;; an empty body writes nothing back (as in Envoy): read only a non-empty one
    (if (local.get $len)
      (then
        (if (i32.eqz (call $buf (i32.const 0) (i32.const 0) (local.get $len) (i32.const 0) (i32.const 4)))
          (then
            (global.set $bodyp (i32.load (i32.const 0)))
            (global.set $bodyl (i32.load (i32.const 4)))))))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) @"x-wasm-response" @"yes"))
    (drop (call $remove (i32.const 2) @"content-length"))
    COPY_ROUTE
    COPY_ID
    COPY_SOURCE
    COPY_ROOT
    COPY_PROP_METHOD
    COPY_STATUS
    COPY_UPSTREAM
    COPY_DESTINATION
    ;; request.time: int64 ns since the epoch, past 2023; request.duration: under a minute
    (if (i32.eqz (call $prop @"request\00time" (i32.const 0) (i32.const 4)))
      (then (if (i32.and (i32.eq (i32.load (i32.const 4)) (i32.const 8))
          (i64.gt_s (i64.load (i32.load (i32.const 0))) (i64.const 1700000000000000000)))
        (then (drop (call $add (i32.const 2) @"x-wasm-time" @"ok"))))))
    (if (i32.eqz (call $prop @"request\00duration" (i32.const 0) (i32.const 4)))
      (then (if (i32.and (i32.eq (i32.load (i32.const 4)) (i32.const 8))
          (i64.lt_u (i64.load (i32.load (i32.const 0))) (i64.const 60000000000)))
        (then (drop (call $add (i32.const 2) @"x-wasm-duration" @"ok"))))))
    (if (global.get $bodyl)
      (then
        (drop (call $add (i32.const 2) @"x-wasm-body" (global.get $bodyp) (global.get $bodyl)))
        (global.set $bodyl (i32.const 0))))
    (if (i32.eqz (call $sget @"wat_shared" (i32.const 0) (i32.const 4) (i32.const 8)))
      (then (drop (call $add (i32.const 2) @"x-wasm-shared" (i32.load (i32.const 0)) (i32.load (i32.const 4))))))
    (if (i32.eqz (call $sget @"wat_response_size" (i32.const 0) (i32.const 4) (i32.const 8)))
      (then (drop (call $add (i32.const 2) @"x-wasm-logged-size" (i32.load (i32.const 0)) (i32.load (i32.const 4))))))
    (i32.const 0))
  (func (export "proxy_on_response_body") (param $ctx i32) (param $len i32) (param $eos i32) (result i32)
    (if (local.get $eos)
      (then (drop (call $setbuf (i32.const 1) (local.get $len) (i32.const 0) @"<wasm/>"))))
    (i32.const 0))
  ;; response.size in the log phase: the body bytes sent, kept for the next request
  (func (export "proxy_on_log") (param i32) (local $p i32)
    (if (i32.eqz (call $prop @"response\00size" (i32.const 0) (i32.const 4)))
      (then
        (local.set $p (call $itoa (i64.load (i32.load (i32.const 0)))))
        (drop (call $sset @"wat_response_size" (local.get $p) (i32.sub (i32.const 65600) (local.get $p)) (i32.const 0))))))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
"#;

fn host_filter() -> String {
    // each marker: the code that copies a header or a property into a header (map 0:
    // request headers, 2: response headers)
    let copies = [
        ("COPY_METHOD", copy_header(0, ":method", 0, "x-wasm-method")),
        (
            "COPY_PSEUDO_PATH",
            copy_header(0, ":path", 0, "x-wasm-pseudo-path"),
        ),
        (
            "COPY_PATH",
            copy_property("request\\00path", 0, "x-wasm-path"),
        ),
        ("COPY_ROUTE", copy_property("route_name", 2, "x-wasm-route")),
        ("COPY_ID", copy_property("request\\00id", 2, "x-wasm-id")),
        (
            "COPY_SOURCE",
            copy_property("source\\00address", 2, "x-wasm-source"),
        ),
        (
            "COPY_ROOT",
            copy_property("plugin_root_id", 2, "x-wasm-root"),
        ),
        (
            "COPY_PROP_METHOD",
            // read in the response phase: the request's properties are kept for it
            [
                copy_property("request.method", 2, "x-wasm-prop-method"),
                copy_property("request.url_path", 2, "x-wasm-url-path"),
                copy_property("request.query", 2, "x-wasm-query"),
                copy_property("request.path", 2, "x-wasm-late-path"),
            ]
            .concat(),
        ),
        ("COPY_STATUS", copy_header(2, ":status", 2, "x-wasm-status")),
        (
            "COPY_UPSTREAM",
            copy_property("upstream\\00address", 2, "x-wasm-upstream"),
        ),
        (
            "COPY_DESTINATION",
            copy_property("destination\\00address", 2, "x-wasm-destination"),
        ),
    ];
    copies
        .iter()
        .fold(HOST_FILTER.to_string(), |text, (marker, code)| {
            text.replace(marker, code)
        })
}

/// The host functions test's gateway: route `wasm-route` through the host filter.
fn gateway(upstream: std::net::SocketAddr) -> Gateway {
    filter_gateway(
        &host_filter(),
        "wasm-route",
        ", root_id: host",
        upstream,
        None,
    )
}

#[tokio::test]
async fn host_functions_through_the_gateway() {
    let echo = Echo::start("up").await;
    let gw = gateway(echo.addr);
    let c = reqwest::Client::new();

    // request headers for the upstream, response headers and properties for the client
    let r = c
        .post(gw.url("/things/1?q=2"))
        .header("x-wasm-replaced", "old")
        .header("x-wasm-removed", "gone")
        .header("x-wasm-share", "hello")
        .body("the request body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    let (json, tail) = text.split_at(text.rfind("<wasm/>").expect("the body was rewritten"));
    assert_eq!(tail, "<wasm/>");
    let seen: serde_json::Value = serde_json::from_str(json).unwrap();
    let up = &seen["headers"];
    assert_eq!(up["x-wasm-added"], "yes");
    assert_eq!(up["x-wasm-replaced"], "new");
    assert!(up.get("x-wasm-removed").is_none(), "{up}");
    assert_eq!(up["x-wasm-method"], "POST");
    assert_eq!(up["x-wasm-pseudo-path"], "/things/1?q=2");
    assert_eq!(up["x-wasm-path"], "/things/1?q=2");
    assert_eq!(up["x-wasm-cas"], "mismatch");
    assert_eq!(up["x-wasm-eos"], "0", "a request with a body");
    assert_eq!(up["x-wasm-size"], "16", "request.size: the content-length");
    let hv = |n: &str| {
        h.get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(hv("x-wasm-response"), "yes");
    assert_eq!(hv("x-wasm-route"), "wasm-route");
    assert_eq!(hv("x-wasm-id"), hv("x-request-id"));
    assert!(!hv("x-wasm-id").is_empty());
    // the client's ip:port, as Envoy gives it
    let source = hv("x-wasm-source");
    let port = source.strip_prefix("127.0.0.1:").unwrap_or_default();
    assert!(port.parse::<u16>().is_ok(), "source.address `{source}`");
    assert_eq!(hv("x-wasm-root"), "host");
    assert_eq!(hv("x-wasm-prop-method"), "POST");
    assert_eq!(hv("x-wasm-url-path"), "/things/1");
    assert_eq!(hv("x-wasm-query"), "q=2");
    assert_eq!(hv("x-wasm-late-path"), "/things/1?q=2");
    assert_eq!(hv("x-wasm-status"), "200");
    assert_eq!(hv("x-wasm-upstream"), echo.addr.to_string());
    // the listener's address the client connected to
    assert_eq!(hv("x-wasm-destination"), format!("127.0.0.1:{}", gw.port));
    assert_eq!(hv("x-wasm-logged-size"), "", "no request was logged before");
    assert_eq!(hv("x-wasm-time"), "ok", "request.time");
    assert_eq!(hv("x-wasm-duration"), "ok", "request.duration");
    assert_eq!(hv("x-wasm-body"), "the request body");
    assert_eq!(hv("x-wasm-shared"), "hello");

    // shared data outlives the request; a GET has no body for the filter
    let r = c.get(gw.url("/other")).send().await.unwrap();
    assert_eq!(r.headers()["x-wasm-shared"], "hello");
    assert!(r.headers().get("x-wasm-body").is_none());
    // response.size of the first request, read in its proxy_on_log
    assert_eq!(
        r.headers()["x-wasm-logged-size"],
        text.len().to_string().as_str()
    );
    assert!(
        r.text().await.unwrap().contains(r#""x-wasm-eos":"1""#),
        "a GET has no body"
    );

    // HTTP/2 (h2c): a body without content-length still has end_of_stream 0
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let chunks = futures::stream::iter(["streamed ", "body"].map(Ok::<_, std::io::Error>));
    let r = h2
        .post(gw.url("/h2"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let text = r.text().await.unwrap();
    assert!(text.contains(r#""x-wasm-eos":"0""#), "{text}");

    // a local response: the filter's status, body and headers; the upstream sees nothing
    let r = c
        .get(gw.url("/deny"))
        .header("x-wasm-deny", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["x-local"], "1");
    assert_eq!(r.text().await.unwrap(), "short and stout");

    // the filter's counter on /metrics (three requests reached it past the deny check)
    assert_eq!(gw.metric("wat_filter_requests").await, Some(3.0));

    // the filter's log line carries the route and the request id
    let logs = gw.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("wat filter saw a request"))
        .unwrap_or_else(|| panic!("no filter log line in:\n{logs}"));
    assert!(line.contains("wasm-route"), "{line}");
    assert!(line.contains("request_id"), "{line}");
}

/// The benchmark's filters (bench/wasm-*.wasm) are their WAT sources compiled (with
/// WASM_BENCH_WRITE set, this test writes them), and the headers one edits both ways.
#[tokio::test]
async fn bench_filters_match_their_sources() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/bench");
    for n in ["noop", "headers"] {
        let wasm = wat::parse_file(format!("{dir}/wasm-{n}.wat")).unwrap();
        let path = format!("{dir}/wasm-{n}.wasm");
        if std::env::var_os("WASM_BENCH_WRITE").is_some() {
            std::fs::write(&path, &wasm).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            wasm,
            "{path} is stale: run with WASM_BENCH_WRITE=1"
        );
    }
    let echo = Echo::start("up").await;
    let gw = Gateway::start(&format!(
        "version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - name: b\n    match: {{ path_prefix: / }}\n    upstream: u\n    plugins: [{{ name: wasm, module: \"{dir}/wasm-headers.wasm\" }}]\n",
        echo.addr
    ));
    let r = reqwest::get(gw.url("/h")).await.unwrap();
    assert_eq!(r.headers()["x-wasm-response"], "1");
    let seen: serde_json::Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-wasm-request"], "1");
}
