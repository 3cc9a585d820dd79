//! The `mirror` plugin through a real gateway: the copy a shadow receives (method, path,
//! headers, body, the mark), and a slow, a failing and a dead shadow while the client's
//! answers stay the same and never wait for the shadow; the counter's outcomes and the
//! in-flight cap; a table naming an unknown pool is refused at its line.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a shadow received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

/// A shadow pool's target: records each request, then answers `status` after `delay`.
struct Shadow {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Shadow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn shadow(status: u16, delay: Duration) -> Shadow {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let rec = rec.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            rec.lock().unwrap().push(Seen {
                method: parts.method.to_string(),
                path: parts.uri.to_string(),
                headers: parts.headers,
                body: body.to_vec(),
            });
            tokio::time::sleep(delay).await;
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                "shadow answer",
            )
        }
    });
    let (addr, task) = serve_app(app).await;
    Shadow { addr, seen, task }
}

fn table(main: SocketAddr, shadow: SocketAddr, mirror: &str) -> String {
    format!(
        "version: 1\nupstreams:\n  main: {{ targets: [{{ addr: \"{main}\" }}] }}\n  shadow: {{ targets: [{{ addr: \"{shadow}\" }}], timeouts: {{ read: 30s }} }}\nroutes:\n  - name: m\n    match: {{ path_prefix: /m }}\n    upstream: main\n    plugins: [{mirror}]\n"
    )
}

/// The main upstream, a shadow answering `status` after `delay`, and a gateway whose
/// route `/m` goes to main with `mirror` to the shadow pool in front (`extra`: more of
/// its settings, each after a comma).
async fn mirrored(status: u16, delay: Duration, extra: &str) -> (Echo, Shadow, Gateway) {
    let main = Echo::start("main").await;
    let sh = shadow(status, delay).await;
    let mirror = format!("{{ name: mirror, upstream: shadow{extra} }}");
    let gw = Gateway::start(&table(main.addr, sh.addr, &mirror));
    (main, sh, gw)
}

async fn outcome(gw: &Gateway, outcome: &str) -> f64 {
    gw.metric(&format!(
        "gateway_mirror_requests_total{{outcome=\"{outcome}\",route=\"m\"}}"
    ))
    .await
    .unwrap_or(0.0)
}

/// Sends `n` requests (POST with a body, then GET); every answer must be main's 200 and
/// come well before `delay` (the shadow's). Returns the slowest.
async fn client_answers(gw: &Gateway, n: usize, shadow_delay: Duration) -> Duration {
    let c = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let started = Instant::now();
        let r = if i % 2 == 0 {
            c.post(gw.url("/m/post?q=1"))
                .body("hello shadow")
                .send()
                .await
        } else {
            c.get(gw.url("/m/get")).send().await
        }
        .unwrap();
        let took = started.elapsed();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["upstream"], "main");
        slowest = slowest.max(took);
    }
    // a correctness bound, not a benchmark: the client never waits for the shadow
    assert!(
        slowest < shadow_delay / 4,
        "a client waited {slowest:?} (shadow takes {shadow_delay:?})"
    );
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_is_the_request_and_a_slow_shadow_never_delays_the_client() {
    let delay = Duration::from_secs(3);
    let (_main, sh, gw) = mirrored(200, delay, ", percent: 100").await;
    let slowest = client_answers(&gw, 10, delay).await;
    println!("slow shadow ({delay:?}): slowest client answer {slowest:?}");
    // the copies all arrive (while the client is long done) and are counted as 2xx
    wait_until(Duration::from_secs(10), || async {
        outcome(&gw, "2xx").await == 10.0
    })
    .await
    .expect("the 10 copies were not all counted 2xx");
    let seen = sh.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 10);
    let post = seen.iter().find(|s| s.method == "POST").unwrap();
    assert_eq!(post.path, "/m/post?q=1");
    assert_eq!(post.body, b"hello shadow");
    assert_eq!(post.headers["x-mirror"], "1");
    assert!(post.headers["x-forwarded-host"]
        .to_str()
        .unwrap()
        .ends_with("-shadow"));
    let get = seen.iter().find(|s| s.method == "GET").unwrap();
    assert_eq!(get.path, "/m/get");
    assert!(get.body.is_empty());
}

/// Two `mirror` entries on one route, each to its own shadow pool: each shadow gets
/// every copy, bodies included (each entry keeps its own pending copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mirrors_on_one_route_each_send_their_own_copy() {
    let main = Echo::start("main").await;
    let (a, b) = (
        shadow(200, Duration::ZERO).await,
        shadow(200, Duration::ZERO).await,
    );
    let main_addr = main.addr;
    let gw = Gateway::start(&format!(
        "version: 1\nupstreams:\n  main: {{ targets: [{{ addr: \"{main_addr}\" }}] }}\n  a: {{ targets: [{{ addr: \"{}\" }}] }}\n  b: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - name: m\n    match: {{ path_prefix: /m }}\n    upstream: main\n    plugins: [{{ name: mirror, upstream: a }}, {{ name: mirror, upstream: b }}]\n",
        a.addr, b.addr
    ));
    let c = reqwest::Client::new();
    for i in 0..3 {
        let r = c
            .post(gw.url("/m/post"))
            .body(format!("body {i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for sh in [&a, &b] {
        wait_until(Duration::from_secs(10), || async {
            sh.seen.lock().unwrap().len() == 3
        })
        .await
        .expect("each shadow gets the 3 copies");
        let mut bodies: Vec<Vec<u8>> = sh
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.body.clone())
            .collect();
        bodies.sort();
        assert_eq!(
            bodies,
            [b"body 0".to_vec(), b"body 1".to_vec(), b"body 2".to_vec()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_dead_shadows_change_nothing_for_the_client() {
    let (main, _failing, gw) = mirrored(500, Duration::ZERO, "").await;
    client_answers(&gw, 10, Duration::from_secs(4)).await;
    wait_until(Duration::from_secs(5), || async {
        outcome(&gw, "5xx").await == 10.0
    })
    .await
    .expect("the failing shadow's answers were not counted 5xx");
    drop(gw);

    // a closed port: connects fail; the client does not notice
    let (dead, _closed) = closed_port();
    let gw = Gateway::start(&table(
        main.addr,
        dead,
        "{ name: mirror, upstream: shadow }",
    ));
    client_answers(&gw, 10, Duration::from_secs(4)).await;
    wait_until(Duration::from_secs(5), || async {
        outcome(&gw, "error").await + outcome(&gw, "no_target").await == 10.0
    })
    .await
    .expect("the dead shadow's copies were not counted error/no_target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_beyond_the_cap_are_dropped_and_counted() {
    let delay = Duration::from_secs(4);
    let (_main, sh, gw) = mirrored(200, delay, ", max_in_flight: 3, max_body: 8").await;
    let c = reqwest::Client::new();
    let started = Instant::now();
    for _ in 0..12 {
        let r = c.get(gw.url("/m/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // a body over max_body is not copied
    let r = c
        .post(gw.url("/m/x"))
        .body("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < delay,
        "the requests took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome(&gw, "dropped").await, 9.0);
    assert_eq!(outcome(&gw, "too_large").await, 1.0);
    wait_until(Duration::from_secs(10), || async {
        outcome(&gw, "2xx").await == 3.0
    })
    .await
    .expect("the 3 copies in flight were not counted");
    assert_eq!(sh.seen.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_zero_copies_nothing_and_an_unknown_pool_is_refused_at_its_line() {
    let (main, sh, gw) = mirrored(200, Duration::ZERO, ", percent: 0").await;
    client_answers(&gw, 4, Duration::from_secs(4)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sh.seen.lock().unwrap().is_empty());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(
        &path,
        table(main.addr, sh.addr, "{ name: mirror, upstream: nowhere }"),
    )
    .unwrap();
    let out = std::process::Command::new(gateway_bin())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let err =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("line 9, column")
            && err.contains("routes[0].plugins[0].upstream: unknown upstream `nowhere`"),
        "{err}"
    );
}
