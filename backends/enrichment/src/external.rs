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

/// Why a call to the source failed (the reason an [`Outcome::Failed`] carries).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed")]
    Connect(#[source] reqwest::Error),
    #[error("{0}")]
    Other(#[source] reqwest::Error),
    #[error("external source answered HTTP {0}")]
    Status(u16),
    #[error("external source answered invalid JSON: {0}")]
    Json(#[source] Box<CallError>),
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
            Err(reason) => Outcome::Failed(reason.to_string()),
        };
        (outcome, started.elapsed())
    }

    async fn call(&self, payload: &Value) -> Result<Value, CallError> {
        let response = self
            .client
            .post(&self.url)
            .json(payload)
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(CallError::Status(status.as_u16()));
        }
        response
            .json::<Value>()
            .await
            .map_err(|e| CallError::Json(Box::new(self.classify(e))))
    }

    fn classify(&self, error: reqwest::Error) -> CallError {
        if error.is_timeout() {
            CallError::Timeout(self.timeout)
        } else if error.is_connect() {
            CallError::Connect(error)
        } else {
            CallError::Other(error)
        }
    }
}
