//! The file watcher loses no edit, through a real gateway process: routes.yaml and a
//! key file it references (in a subdirectory) are rewritten in place with a plain
//! `std::fs::write` (truncate, then write), with a pause between the truncation and the
//! write, slowly in several chunks with sleeps between them, in a burst of quick
//! rewrites, and by an atomic rename. Each time the final content must be served; half
//! written files may be refused on the way, but never kept. Timeouts are generous
//! (the check is that the edit lands, not how fast).
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(8);

fn table(addr: std::net::SocketAddr, tag: &str) -> String {
    // padded so that a half-written file is cut inside the routes
    let pad = "#".repeat(200);
    format!(
        "version: 1\n# {pad}\nupstreams:\n  u: {{ targets: [{{ addr: \"{addr}\" }}] }}\nroutes:\n  - name: r\n    match: {{ path_prefix: /r }}\n    upstream: u\n    plugins: [{{ name: response_headers, set: {{ x-table: \"{tag}\" }} }}]\n  - name: keyed\n    match: {{ path_prefix: /keyed }}\n    upstream: u\n    plugins: [{{ name: api_key, keys_file: secrets/keys.yaml }}]\n"
    )
}

fn key_of(n: usize) -> String {
    format!("ak_watcher_key_{n:04}_0123456789")
}

/// A key file whose only consumer holds key `n`.
fn keys(n: usize) -> String {
    let sha = hex::encode(Sha256::digest(key_of(n).as_bytes()));
    format!("consumers:\n  - {{ name: consumer-{n}, key_sha256: \"{sha}\" }}\n")
}

/// How a file is written.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// `std::fs::write`: truncate, then write.
    InPlace,
    /// Truncate, pause, then write (what the watcher first sees is an empty file).
    TruncatePauseWrite,
    /// In place in three chunks, 300 ms apart.
    Chunks,
    /// Ten quick in-place rewrites, 20 ms apart; the last is the content.
    Burst,
    /// A temporary file renamed over the path.
    Rename,
}

const WAYS: [Way; 5] = [
    Way::InPlace,
    Way::TruncatePauseWrite,
    Way::Chunks,
    Way::Burst,
    Way::Rename,
];

/// Writes `text` to `path` the given way; `older` is what a burst writes before it.
fn write(path: &Path, text: &str, older: &str, way: Way) {
    match way {
        Way::InPlace => std::fs::write(path, text).unwrap(),
        Way::TruncatePauseWrite => {
            let mut f = std::fs::File::create(path).unwrap();
            std::thread::sleep(Duration::from_millis(400));
            f.write_all(text.as_bytes()).unwrap();
        }
        Way::Chunks => {
            let mut f = std::fs::File::create(path).unwrap();
            let b = text.as_bytes();
            let (a, rest) = b.split_at(b.len() / 3);
            let (m, z) = rest.split_at(rest.len() / 2);
            for (i, part) in [a, m, z].into_iter().enumerate() {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(300));
                }
                f.write_all(part).unwrap();
                f.flush().unwrap();
            }
        }
        Way::Burst => {
            for i in 0..10 {
                std::fs::write(path, if i % 2 == 0 { older } else { "" }).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            std::fs::write(path, text).unwrap();
        }
        Way::Rename => {
            let tmp = path.with_extension("tmp-new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
    }
}

async fn tag(c: &reqwest::Client, gw: &Gateway) -> String {
    header_of(c, &gw.url("/r"), "x-table").await
}

async fn key_status(c: &reqwest::Client, gw: &Gateway, key: &str) -> u16 {
    c.get(gw.url("/keyed"))
        .header("x-api-key", key)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

fn start(up: std::net::SocketAddr) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/keys.yaml"), keys(0)).unwrap();
    let config = dir.path().join("routes.yaml");
    std::fs::write(&config, table(up, "t0")).unwrap();
    Gateway::spawn(dir, config, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edit_of_routes_yaml_is_served() {
    let up = Echo::start("u").await;
    let gw = start(up.addr);
    let c = reqwest::Client::new();
    assert_eq!(tag(&c, &gw).await, "t0");
    let mut older = table(up.addr, "t0");
    for (i, way) in WAYS.iter().chain(WAYS.iter()).enumerate() {
        let want = format!("t{}", i + 1);
        let text = table(up.addr, &want);
        let started = Instant::now();
        write(&gw.config, &text, &older, *way);
        let got = wait_until(LIMIT, || async { tag(&c, &gw).await == want }).await;
        assert!(
            got.is_some(),
            "{way:?}: `{want}` not served {:?} after the write; log:\n{}",
            LIMIT,
            gw.logs()
        );
        println!(
            "routes.yaml {way:?}: served {:?} after the write began",
            started.elapsed()
        );
        older = text;
    }
    // and it stays: no late read of an old or partial state
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tag(&c, &gw).await, format!("t{}", 2 * WAYS.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edit_of_a_referenced_key_file_is_served() {
    let up = Echo::start("u").await;
    let gw = start(up.addr);
    let c = reqwest::Client::new();
    let path = gw.dir.path().join("secrets/keys.yaml");
    assert_eq!(key_status(&c, &gw, &key_of(0)).await, 200);
    let mut older = keys(0);
    for (i, way) in WAYS.iter().chain(WAYS.iter()).enumerate() {
        let n = i + 1;
        let text = keys(n);
        let started = Instant::now();
        write(&path, &text, &older, *way);
        let got = wait_until(LIMIT, || async {
            key_status(&c, &gw, &key_of(n)).await == 200
        })
        .await;
        assert!(
            got.is_some(),
            "{way:?}: key {n} not accepted {:?} after the write; log:\n{}",
            LIMIT,
            gw.logs()
        );
        assert_eq!(key_status(&c, &gw, &key_of(n - 1)).await, 401, "{way:?}");
        println!(
            "key file {way:?}: applied {:?} after the write began",
            started.elapsed()
        );
        older = text;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(key_status(&c, &gw, &key_of(2 * WAYS.len())).await, 200);
}
