//! Requests the tests make again and again: a JSON answer of `GET` or `POST`, and a
//! [`Gateway`]'s admin endpoints (reload, JSON views).

use serde_json::Value;

use super::{Gateway, ADMIN_TOKEN};

/// Sends `req`: the JSON answer (any status).
pub async fn json_of(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// `GET url`: the JSON answer (any status).
pub async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    json_of(c.get(url)).await
}

/// The value of header `name` of an answer; empty when it has none.
pub fn header_value(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// `POST url` with `body` as JSON: the JSON answer (any status).
pub async fn post_json(c: &reqwest::Client, url: &str, body: &Value) -> Value {
    json_of(c.post(url).json(body)).await
}

impl Gateway {
    /// `GET path` on the metrics port with the admin token: the JSON answer.
    pub async fn admin_get(&self, path: &str) -> Value {
        json_of(
            reqwest::Client::new()
                .get(self.metrics_url(path))
                .bearer_auth(ADMIN_TOKEN),
        )
        .await
    }

    /// `POST /admin/reload` (metrics port) with the admin token: the answer.
    pub async fn admin_reload(&self) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.metrics_url("/admin/reload"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }
}
