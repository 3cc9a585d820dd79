//! Kafka-mode test parts: a real Kafka-protocol broker (`tansu`, in-memory storage) on
//! a free loopback port, and the api-generation / api-enrichment services as real
//! processes (this test binary started again to run one of them: the same library
//! code as their binaries, `router` + `kafka::spawn` + serve), killable with SIGKILL.
#![allow(dead_code, clippy::unwrap_used)]

use crate::common::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `tansu` on PATH or in `~/.cargo/bin` (scripts/test.sh installs it).
pub fn tansu_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("tansu"))
            .find(|f| f.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(PathBuf::from(home).join(".cargo/bin/tansu")).filter(|p| p.is_file())
    })
}

/// A tansu broker; stopped on drop.
pub struct Broker {
    pub port: u16,
    bin: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// A broker on a free port. Without tansu the test fails (scripts/test.sh installs
    /// it), unless `SKIP_KAFKA_TESTS=1` says to skip it (`None`, with a notice): a
    /// missing broker must not pass as a green Kafka test.
    pub fn start() -> Option<Broker> {
        let Some(bin) = tansu_bin() else {
            let hint = "tansu is not installed (scripts/test.sh installs it: cargo install tansu --version 0.6.0 --features dynostore)";
            if std::env::var("SKIP_KAFKA_TESTS").is_ok_and(|v| v == "1") {
                eprintln!("NOTICE: {hint}; Kafka test skipped (SKIP_KAFKA_TESTS=1)");
                return None;
            }
            panic!("{hint}; set SKIP_KAFKA_TESTS=1 to skip the Kafka tests");
        };
        let mut b = Broker {
            port: free_port(),
            bin,
            child: None,
        };
        b.spawn();
        Some(b)
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("tansu did not listen on {}", self.port);
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The env var that makes this test binary run a backend (see `backend_process`).
pub const ROLE: &str = "KAFKA_TEST_BACKEND";

/// A backend service as a process of its own; killed on drop.
pub struct Service {
    pub which: &'static str,
    pub port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Service {
    /// Starts `generation` or `enrichment` with `env` and waits for `/health`.
    pub fn start(which: &'static str, env: &[(&str, &str)], dir: &std::path::Path) -> Service {
        let mut s = Service {
            which,
            port: free_port(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            log: dir.join(format!("{which}.log")),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["backend_process", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(ROLE, self.which)
            .env("HOST", "127.0.0.1")
            .env("PORT", self.port.to_string())
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = crate::common::raw_request(
                self.port,
                "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200"));
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not start: {}", self.which, self.logs());
    }

    /// SIGKILL: no clean shutdown, no offset commit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the backend named by [`ROLE`] until killed (the body of `backend_process`).
pub fn run_backend(which: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let router = match which {
            "generation" => {
                let _ = api_generation::telemetry::init_logging();
                let cfg = api_generation::Config::from_env().unwrap();
                let r = api_generation::router(&cfg).unwrap();
                api_generation::kafka::spawn(&r).unwrap();
                r
            }
            "enrichment" => {
                let _ = api_enrichment::telemetry::init_logging();
                let cfg = api_enrichment::Config::from_env().unwrap();
                let r = api_enrichment::router(&cfg).unwrap();
                api_enrichment::kafka::spawn(&r).unwrap();
                r
            }
            other => panic!("unknown backend {other}"),
        };
        let port: u16 = std::env::var("PORT").unwrap().parse().unwrap();
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(l, router).await.unwrap();
    });
}

/// Every message of `topic` (from the start), read by a fresh group until `want`
/// messages were seen or `limit` passed: (key, value as JSON).
pub async fn read_topic(
    bootstrap: &str,
    topic: &str,
    want: usize,
    limit: Duration,
) -> Vec<(String, serde_json::Value)> {
    use jobbus::rdkafka::consumer::{Consumer, StreamConsumer};
    use jobbus::rdkafka::{ClientConfig, Message};
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("test-reader-{}", free_port()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while out.len() < want {
        match tokio::time::timeout_at(deadline, c.recv()).await {
            Ok(Ok(m)) => {
                let key = m
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                let v = serde_json::from_slice(m.payload().unwrap_or_default())
                    .unwrap_or(serde_json::Value::Null);
                out.push((key, v));
            }
            Ok(Err(e)) => eprintln!("read_topic: {e}"),
            Err(_) => break,
        }
    }
    out
}

/// Produces raw bytes to `topic` (acknowledged).
pub async fn produce_raw(bootstrap: &str, topic: &str, key: &str, value: &[u8]) {
    use jobbus::rdkafka::producer::{FutureProducer, FutureRecord};
    use jobbus::rdkafka::ClientConfig;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    p.send(
        FutureRecord::to(topic).key(key).payload(value),
        Duration::from_secs(5),
    )
    .await
    .map_err(|(e, _)| e)
    .unwrap();
}
