//! The optional external HTTP enrichment source.
//!
//! When `EXTERNAL_API_URL` is set, every document is sent to it as
//! `POST <url>` with the JSON body `{"id", "title", "text", "metadata"}`
//! (cleaned values). A 2xx answer with a JSON body succeeds and that body is
//! returned as the document's `external` field. Anything else (connection
//! error, no answer within `EXTERNAL_API_TIMEOUT`, non-2xx status, body that is
//! not JSON) is a failure: the document is still enriched locally, its
//! `external` field is null, `degraded` is true and the `external` source
//! reports the reason. Only `http://` URLs are supported (no TLS in this build).

use std::time::{Duration, Instant};

use serde_json::Value;

/// The external source's client.
#[derive(Debug, Clone)]
pub struct ExternalSource {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
}

/// Result of one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// No source configured.
    Skipped,
    /// The source answered this JSON.
    Ok(Value),
    /// The source failed, for this reason.
    Failed(String),
}

impl ExternalSource {
    /// A client for `url` whose whole call (connect, send, read) is bounded by
    /// `timeout`.
    pub fn new(url: String, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            client,
            url,
            timeout,
        })
    }

    /// The configured URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls the source with `payload`; never fails the caller.
    pub async fn fetch(&self, payload: &Value) -> (Outcome, Duration) {
        let started = Instant::now();
        let outcome = match self.call(payload).await {
            Ok(value) => Outcome::Ok(value),
            Err(reason) => Outcome::Failed(reason),
        };
        (outcome, started.elapsed())
    }

    async fn call(&self, payload: &Value) -> Result<Value, String> {
        let response = self
            .client
            .post(&self.url)
            .json(payload)
            .send()
            .await
            .map_err(|e| self.describe(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("external source answered HTTP {}", status.as_u16()));
        }
        response.json::<Value>().await.map_err(|e| {
            format!(
                "external source answered invalid JSON: {}",
                self.describe(&e)
            )
        })
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            format!("timed out after {:?}", self.timeout)
        } else if error.is_connect() {
            "connection failed".to_owned()
        } else {
            error.to_string()
        }
    }
}
