//! Protocol features through a real gateway: h2c, TLS with HTTP/2, WebSocket upgrades,
//! and a 100 MB upload streamed without buffering.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use futures::{SinkExt, StreamExt};

fn one_route(addr: std::net::SocketAddr, extra_server: &str) -> String {
    format!("version: 1\n{extra_server}upstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - {{ name: all, match: {{ path_prefix: / }}, upstream: u }}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&one_route(up.addr, ""));
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = c.get(gw.url("/h2?x=1")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["path"], "/h2?x=1");
    // HTTP/1.1 on the same listener still works
    let r = reqwest::get(gw.url("/h1")).await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_speaks_h2_and_h1() {
    let up = Echo::start("u").await;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let tls_port = free_port();
    let server = format!(
        "server:\n  tls: {{ listen: \"127.0.0.1:{tls_port}\", cert: \"{}\", key: \"{}\" }}\n",
        cert_path.display(),
        key_path.display()
    );
    let gw = Gateway::start(&one_route(up.addr, &server));
    let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("localhost", ([127, 0, 0, 1], tls_port).into())
        .build()
        .unwrap();
    let r = c
        .get(format!("https://localhost:{tls_port}/secure"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["headers"]["x-forwarded-proto"], "https");
    drop(gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passes_through() {
    // a WebSocket echo upstream
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() {
                        let _ = ws
                            .send(tokio_tungstenite::tungstenite::Message::text(format!(
                                "echo: {}",
                                m.to_text().unwrap()
                            )))
                            .await;
                    }
                }
            });
        }
    });
    let gw = Gateway::start(&one_route(addr, ""));
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", gw.port))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for i in 0..3 {
        ws.send(tokio_tungstenite::tungstenite::Message::text(format!(
            "hello {i}"
        )))
        .await
        .unwrap();
        let m = ws.next().await.unwrap().unwrap();
        assert_eq!(m.to_text().unwrap(), format!("echo: hello {i}"));
    }
    ws.close(None).await.unwrap();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabyte_upload_is_streamed() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&one_route(up.addr, ""));
    let before = vm_hwm_kib(gw.pid());
    const CHUNK: usize = 256 * 1024;
    const TOTAL: usize = 100 * 1024 * 1024;
    let chunks = futures::stream::iter(
        (0..TOTAL / CHUNK).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; CHUNK]))),
    );
    let r = reqwest::Client::new()
        .post(gw.url("/upload"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["body_len"], TOTAL);
    let after = vm_hwm_kib(gw.pid());
    println!("gateway peak RSS: {before} KiB before, {after} KiB after a 100 MiB upload");
    assert!(
        after < before + 40 * 1024,
        "the gateway's peak memory grew by {} KiB: the body was buffered",
        after - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let up = Echo::start("u").await;
    let routes = format!("version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: small, match: {{ path_prefix: / }}, upstream: u, max_body_size: 1KiB }}\n", up.addr);
    let gw = Gateway::start(&routes);
    let c = reqwest::Client::new();
    // declared length
    let r = c
        .post(gw.url("/x"))
        .body(vec![b'a'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "payload_too_large"
    );
    // chunked, no length: counted while streaming
    let chunks = futures::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 512]))),
    );
    let r = c
        .post(gw.url("/x"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
    let r = c
        .post(gw.url("/x"))
        .body(vec![b'a'; 512])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431() {
    let up = Echo::start("u").await;
    let gw = Gateway::start(&format!("version: 1\nserver: {{ max_header_size: 8KiB }}\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: all, match: {{ path_prefix: / }}, upstream: u }}\n", up.addr));
    let big = "a".repeat(10 * 1024);
    let r = raw_request(
        gw.port,
        &format!("GET /x HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"),
    )
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 431"), "{}", &r[..r.len().min(200)]);
    assert_eq!(raw_json(&r)["error"], "request_header_fields_too_large");
    let r = raw_request(
        gw.port,
        "GET /x HTTP/1.1\r\nHost: t\r\nX-Small: 1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_the_timeout() {
    use std::io::{Read, Write};
    let up = Echo::start("u").await;
    let gw = Gateway::start(&format!("version: 1\nserver: {{ keepalive_timeout: 1s }}\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: all, match: {{ path_prefix: / }}, upstream: u }}\n", up.addr));
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // the connection stays open while idle for less than the timeout...
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.write_all(b"GET /y HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // ...and is closed by the gateway after it
    let started = std::time::Instant::now();
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the gateway to close the idle connection");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(800)
            && waited < std::time::Duration::from_secs(3),
        "closed after {waited:?}"
    );
}
