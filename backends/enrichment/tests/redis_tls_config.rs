//! api-enrichment with a `rediss://` `REDIS_URL` whose `REDIS_CA_FILE` is missing: the
//! service does not start, and says which variable and file (crate `redis-connect`).
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_missing_redis_ca_file_stops_the_start() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_api-enrichment"))
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("REDIS_URL", "rediss://localhost:6380/")
        .env("REDIS_CA_FILE", "/nonexistent/redis-ca.pem")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // a service that starts anyway would never exit: give up after 20 s
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("api-enrichment started with a missing REDIS_CA_FILE");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        text.contains("REDIS_CA_FILE") && text.contains("/nonexistent/redis-ca.pem"),
        "{text}"
    );
}
