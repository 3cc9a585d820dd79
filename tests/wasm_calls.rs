//! The `wasm` plugin's HTTP calls through a real gateway, with hand-written filters
//! (WAT): the calls one callback makes go out together; calls from the response and log
//! phases go out in the background; a paused response head waits for its calls, whose
//! callbacks may edit it or answer instead.
#![allow(clippy::unwrap_used)]

mod common;
mod wasm_common;
use common::*;
use wasm_common::*;

/// Makes two HTTP calls to pool `calls` (`/a`, `/b`) from the request headers phase and
/// pauses; each answer's body becomes an `x-answer` request header.
const TWO_CALLS: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $http_call @"calls" @"\01\00\00\00\05\00\00\00\02\00\00\00:path\00/a\00"
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 8)))
    (drop (call $http_call @"calls" @"\01\00\00\00\05\00\00\00\02\00\00\00:path\00/b\00"
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 8)))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32) (param $size i32) (param i32)
    (drop (call $buf (i32.const 4) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (drop (call $add (i32.const 0) @"x-answer" (i32.load (i32.const 0)) (i32.load (i32.const 4)))))
"#;

/// The calls a callback makes go out together, as Envoy sends them: the called
/// service answers `together` only when both calls are in at once (`alone` after
/// waiting 3 s for the other), so calls sent one after another get `alone` twice.
/// Both answers reach the filter, and the request then goes upstream.
#[tokio::test]
async fn calls_from_one_callback_go_out_together() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    let arrived = Arc::new(AtomicUsize::new(0));
    let seen = arrived.clone();
    let service = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let arrived = seen.clone();
        async move {
            arrived.fetch_add(1, Ordering::SeqCst);
            let both = wait_until(Duration::from_secs(3), || {
                let arrived = arrived.clone();
                async move { arrived.load(Ordering::SeqCst) >= 2 }
            })
            .await;
            let word = if both.is_some() { "together" } else { "alone" };
            format!("{}={word}", req.uri().path().trim_start_matches('/'))
        }
    });
    let (service, _s) = serve_app(service).await;
    let upstream = axum::Router::new().fallback(|req: axum::extract::Request| async move {
        let mut answers: Vec<String> = req
            .headers()
            .get_all("x-answer")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        answers.sort();
        answers.join(",")
    });
    let (upstream, _u) = serve_app(upstream).await;
    let gw = filter_gateway(TWO_CALLS, "r", "", upstream, Some(("calls", service)));
    let r = reqwest::get(gw.url("/")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "a=together,b=together");
    assert_eq!(arrived.load(Ordering::SeqCst), 2);
}

/// Calls pool `collector` from `proxy_on_response_headers` (`/response`) and from
/// `proxy_on_log` (`/log`); logs each answer's body.
const BACKGROUND_CALLS: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $http_call @"collector" @"\01\00\00\00\05\00\00\00\09\00\00\00:path\00/response\00"
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 8)))
    (i32.const 0))
  (func (export "proxy_on_log") (param i32)
    (drop (call $http_call @"collector" @"\01\00\00\00\05\00\00\00\04\00\00\00:path\00/log\00"
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 8))))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32) (param $size i32) (param i32)
    (drop (call $buf (i32.const 4) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 0)) (i32.load (i32.const 4)))))
"#;

/// Calls made where nothing can wait for them (the response headers phase, and
/// `proxy_on_log` after the answer went) go out in the background: the collector gets
/// both, the client's answer does not wait for them, and each answer reaches the
/// filter's callback (its log line).
#[tokio::test]
async fn calls_from_the_response_and_log_phases_go_out_in_the_background() {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = got.clone();
    let collector = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            let path = req.uri().path().to_string();
            seen.lock().unwrap().push(path.clone());
            format!("collector got {path}")
        }
    });
    let (collector, _c) = serve_app(collector).await;
    let echo = Echo::start("up").await;
    let gw = filter_gateway(
        BACKGROUND_CALLS,
        "r",
        "",
        echo.addr,
        Some(("collector", collector)),
    );
    let r = reqwest::get(gw.url("/things")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("/things"));
    let both = wait_until(Duration::from_secs(5), || async {
        let mut g = got.lock().unwrap().clone();
        g.sort();
        g == ["/log", "/response"]
    });
    assert!(
        both.await.is_some(),
        "collector got {:?}",
        got.lock().unwrap()
    );
    let answered = wait_until(Duration::from_secs(5), || async {
        let logs = gw.logs();
        logs.contains("collector got /log") && logs.contains("collector got /response")
    });
    assert!(answered.await.is_some(), "{}", gw.logs());
}

/// Pauses the response headers for a call to pool `collector` (`/stamp`); its callback
/// adds the answer's body as `x-stamp` to the response head, or, when the upstream
/// answered 5xx, answers 502 itself.
const PAUSED_RESPONSE: &str = r#"
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $http_call @"collector" @"\01\00\00\00\05\00\00\00\06\00\00\00:path\00/stamp\00"
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 5000) (i32.const 8)))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32) (param $size i32) (param i32)
    ;; an upstream 5xx is answered by the filter instead
    (drop (call $get (i32.const 2) @":status" (i32.const 0) (i32.const 4)))
    (if (i32.eq (i32.load8_u (i32.load (i32.const 0))) (i32.const 53))
      (then
        (drop (call $local (i32.const 502) @"no" @"replaced after the call" (i32.const 0) (i32.const 0) (i32.const 0)))
        (return)))
    (drop (call $buf (i32.const 4) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (drop (call $add (i32.const 2) @"x-stamp" (i32.load (i32.const 0)) (i32.load (i32.const 4)))))
"#;

/// A `Pause` from `proxy_on_response_headers` with a call made holds the response head
/// until the call's callback ran, as Envoy holds it: what the callback adds to the head
/// reaches the client, and the body follows whole; the callback's local response
/// replaces the upstream's answer.
#[tokio::test]
async fn a_paused_response_waits_for_its_calls() {
    let collector = axum::Router::new().fallback(|req: axum::extract::Request| async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        format!("stamped {}", req.uri().path())
    });
    let (collector, _c) = serve_app(collector).await;
    let echo = Echo::start("up").await;
    let gw = filter_gateway(
        PAUSED_RESPONSE,
        "r",
        "",
        echo.addr,
        Some(("collector", collector)),
    );
    for path in ["/one", "/two"] {
        let r = reqwest::get(gw.url(path)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-stamp"], "stamped /stamp");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["path"], path);
    }
    let r = reqwest::Client::new()
        .get(gw.url("/failing"))
        .header("x-echo-status", "500")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.headers().get("x-stamp").is_none());
    assert_eq!(r.text().await.unwrap(), "replaced after the call");
}
