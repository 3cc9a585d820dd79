//! What the backends' integration tests share (feature `test-support`, enabled by
//! their `[dev-dependencies]` only): a backend served in the test's own runtime
//! ([`InProcess`]), the real binary as a child process ([`Service`]), and reading one
//! series of a Prometheus text ([`metric`]).
//!
//! [`Service`] starts the binary with `PORT=0` and reads the address it logs
//! (`"operation":"startup"`, `"address"`), so no port is picked before the process
//! binds it and no other test can take it in between.

use std::fmt::Debug;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The shutdown future handed to a backend's `serve`: completes when the test stops
/// the server (or drops it).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How long a backend may take to start or to stop.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A backend's `serve` running on `127.0.0.1:0` in the test's runtime; told to stop
/// when dropped. `E` is the backend's start-up error.
pub struct InProcess<E> {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), E>>>,
}

impl<E: Debug + Send + 'static> InProcess<E> {
    /// Binds a free loopback port and spawns `serve(listener, shutdown)` on it, e.g.
    /// `InProcess::start(|l, s| api_generation::serve(l, config, s))`.
    pub async fn start<S, F>(serve: S) -> Self
    where
        S: FnOnce(TcpListener, Shutdown) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: Shutdown = Box::pin(async {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve(listener, shutdown));
        Self {
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `POST path` with `body` as JSON; the status and the JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self.client.post(self.url(path)).json(body).send().await;
        json_answer(response.expect("request")).await
    }

    /// `POST path` with any body and `content-type`; the status and the JSON answer.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await;
        json_answer(response.expect("request")).await
    }

    /// `GET path`; the status and the body as text.
    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        (response.status(), response.text().await.expect("body"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The JSON body extractor's answers ([`crate::json::ValidJson`]) on `POST path`:
    /// each `(body, text)` of `malformed` is a 400 `bad_request` whose message
    /// contains `text` (serde's words), and `json_as_text` sent as `text/plain` is a
    /// 415 `unsupported_media_type`.
    pub async fn assert_json_refusals(
        &self,
        path: &str,
        malformed: &[(&str, &str)],
        json_as_text: &str,
    ) {
        for (body, expected) in malformed {
            let (status, error) = self
                .post_raw(path, "application/json", body.to_string())
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
            assert_eq!(error["error"], "bad_request");
            let message = error["message"].as_str().expect("message");
            assert!(message.contains(expected), "{body}: {message}");
        }
        let (status, error) = self
            .post_raw(path, "text/plain", json_as_text.to_string())
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error}");
        assert_eq!(error["error"], "unsupported_media_type");
    }

    /// Sends the shutdown signal and asserts that `serve` returns `Ok` within 20 s.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("stopped once");
        let result = tokio::time::timeout(START_TIMEOUT, task)
            .await
            .expect("server stops after the shutdown signal")
            .expect("server task");
        assert!(result.is_ok(), "serve returned {result:?}");
    }
}

impl<E> Drop for InProcess<E> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn json_answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

/// A backend binary running as a child process on a port it chose itself; killed on
/// drop.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub client: reqwest::Client,
    /// Its log lines so far (JSON, stdout).
    logs: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts `bin` with `HOST=127.0.0.1 PORT=0 LOG_LEVEL=info` and `env`, reads the
    /// address it logs, and waits until `GET /ready` answers 2xx (20 s at most).
    pub async fn start(bin: &str, env: &[(&str, &str)]) -> Service {
        let mut child = Command::new(bin)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .envs(env.iter().copied())
            .env("LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let address = read_address(&mut child, Arc::clone(&logs));
        let mut service = Service {
            child,
            base: String::new(),
            client: reqwest::Client::new(),
            logs,
        };
        let Ok(address) = address.recv_timeout(START_TIMEOUT) else {
            panic!("{bin} logged no address; log:\n{}", service.logs());
        };
        service.base = format!("http://{address}");
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let ready = service.client.get(service.url("/ready")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{bin} did not become ready; log:\n{}", service.logs());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST path` with `body` as JSON; asserts a 200 answer and gives its JSON.
    pub async fn post_ok(&self, path: &str, body: &Value) -> Value {
        let response = self.client.post(self.url(path)).json(body).send().await;
        let (status, answer) = json_answer(response.expect("request")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await;
        json_answer(response.expect("request")).await.1
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response.expect("request").text().await.expect("metrics")
    }

    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout on a thread: every line into `logs`, and the `address`
/// of the start-up line into the answer (once).
fn read_address(child: &mut Child, logs: Arc<Mutex<Vec<String>>>) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, address) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let entry: Option<Value> = serde_json::from_str(&line).ok();
            if let Some(a) = entry.as_ref().and_then(|e| e["address"].as_str()) {
                let _ = found.send(a.to_owned());
            }
            if let Ok(mut logs) = logs.lock() {
                logs.push(line);
            }
        }
    });
    address
}

/// The value of the series `series` (the name with its labels, e.g.
/// `x_total{result="hit"}`) in a Prometheus text, if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// A loopback port nobody listens on (bound, then released).
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}
