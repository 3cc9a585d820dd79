//! User-level checks: the real server on 127.0.0.1:0, called over HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_enrichment::{serve, Config, StartupError};
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use axum::{Json, Router};
use backend_common::testing::InProcess;
use reqwest::StatusCode;
use serde_json::{json, Value};

type Server = InProcess<StartupError>;

async fn start(config: Config) -> Server {
    InProcess::start(|listener, shutdown| serve(listener, config, shutdown)).await
}

async fn enrich(server: &Server, body: Value) -> (StatusCode, Value) {
    server.post_json("/enrich", &body).await
}

fn strict() -> Config {
    Config {
        strict: true,
        ..Config::default()
    }
}

fn source<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no source {name} in {doc}"))
}

/// A fake external source answering `status` and `body` after `delay`, and
/// recording the bodies it receives.
async fn fake_external(
    status: u16,
    body: Value,
    delay: Duration,
) -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&received);
    let app = Router::new().route(
        "/analyse",
        post(move |Json(payload): Json<Value>| {
            let (seen, body) = (Arc::clone(&seen), body.clone());
            async move {
                seen.lock().expect("lock").push(payload);
                tokio::time::sleep(delay).await;
                (AxumStatus::from_u16(status).expect("status"), Json(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/analyse", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn computes_fields_of_a_known_text() {
    let server = start(Config::default()).await;
    let (status, doc) = enrich(
        &server,
        json!({
            "id": "doc-1",
            "title": "  Cats \n and dogs ",
            "text": "The cat sat on the mat.   The dog ran.",
            "metadata": {"source": "test"}
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["id"], "doc-1");
    assert_eq!(doc["title"], "Cats and dogs");
    assert_eq!(doc["text"], "The cat sat on the mat. The dog ran.");
    assert_eq!(doc["metadata"], json!({"source": "test"}));
    assert_eq!(doc["language"], "en");
    // "the" x3 (en) and "on" (en and fr): 4 of 5 points.
    assert_eq!(doc["language_confidence"], 0.8);
    assert_eq!(doc["word_count"], 9);
    assert_eq!(doc["sentence_count"], 2);
    assert_eq!(doc["character_count"], 36);
    assert_eq!(doc["readability"]["flesch_reading_ease"], 117.67);
    assert_eq!(doc["readability"]["level"], "very easy");
    let keywords: Vec<&str> = doc["keywords"]
        .as_array()
        .expect("keywords")
        .iter()
        .map(|k| k["word"].as_str().expect("word"))
        .collect();
    assert_eq!(keywords, ["cat", "dog", "mat", "ran", "sat"]);
    let names: Vec<&str> = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "cleaning",
            "language",
            "statistics",
            "readability",
            "keywords",
            "sentiment",
            "entities",
            "external"
        ]
    );
    assert_eq!(source(&doc, "readability")["status"], "ok");
    assert_eq!(source(&doc, "external")["status"], "skipped");
    assert_eq!(doc["degraded"], false);
    assert_eq!(doc["warnings"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn cleans_control_characters_and_whitespace() {
    let server = start(Config::default()).await;
    let (status, doc) = enrich(
        &server,
        json!({"text": "\u{feff}  Hello\u{0000},\t world!\r\n\r\n\r\n\u{0007}Bye.  "}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["text"], "Hello, world!\n\nBye.");
    assert_eq!(doc["cleaning"]["control_chars_removed"], 3);
    assert_eq!(doc["sentence_count"], 2);
    assert_eq!(doc["metadata"], json!({}));
    server.stop().await;
}

#[tokio::test]
async fn detects_languages_and_skips_readability_outside_english() {
    let server = start(Config::default()).await;
    for (text, code) in [
        (
            "Le loup et l'agneau sont dans la forêt avec les bergers.",
            "fr",
        ),
        (
            "El lobo y el cordero están en el bosque con los pastores.",
            "es",
        ),
        ("Der Wolf und das Lamm sind mit dem Hirten im Wald.", "de"),
    ] {
        let (_, doc) = enrich(&server, json!({"text": text})).await;
        assert_eq!(doc["language"], code, "{text}");
        assert_eq!(doc["readability"], Value::Null);
        assert_eq!(source(&doc, "readability")["status"], "skipped");
    }
    server.stop().await;
}

#[tokio::test]
async fn strict_mode_refuses_unknown_fields_and_empty_text() {
    let server = start(strict()).await;
    let (status, error) = enrich(
        &server,
        json!({"text": "Fine text.", "colour": "red", "size": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"], "validation_error");
    assert_eq!(
        error["message"],
        "unknown fields `colour`, `size` (expected one of text, id, title, metadata)"
    );
    let (status, error) = enrich(&server, json!({"text": " \u{0000}\n\t "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["message"], "`text` is empty after cleaning");
    let (status, _) = enrich(&server, json!({"text": "Fine text.", "id": "a"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, ready) = server.get_text("/ready").await;
    assert!(ready.contains("\"strict\":true"), "{ready}");
    server.stop().await;
}

#[tokio::test]
async fn lenient_mode_warns_instead() {
    let server = start(Config::default()).await;
    let (status, doc) = enrich(&server, json!({"text": "", "colour": "red"})).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["word_count"], 0);
    assert_eq!(doc["sentence_count"], 0);
    assert_eq!(doc["language"], "und");
    assert_eq!(doc["keywords"], json!([]));
    assert_eq!(
        doc["warnings"],
        json!([
            "unknown field `colour` (expected one of text, id, title, metadata)",
            "`text` is empty after cleaning"
        ])
    );
    assert!(doc.get("colour").is_none());
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_clear_errors() {
    let server = start(strict()).await;
    let malformed = [
        (
            "{\"text\": 1}",
            "invalid type: integer `1`, expected a string at line 1 column 10",
        ),
        (
            "{\"id\": \"x\"}",
            "missing field `text` at line 1 column 11",
        ),
        (
            "{\"text\": \"x\", \"metadata\": [1]}",
            "invalid type: sequence, expected a map",
        ),
        (
            "{\"text\": \"x\"",
            "EOF while parsing an object at line 1 column 12",
        ),
        ("not json", "expected ident at line 1 column 2"),
    ];
    server
        .assert_json_refusals("/enrich", &malformed, "{\"text\": \"x\"}")
        .await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_gets_413_json() {
    let server = start(Config::default()).await;
    let body = json!({"text": "word ".repeat(220_000)});
    let (status, error) = enrich(&server, body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["error"], "payload_too_large");
    assert_eq!(
        error["message"],
        "request body exceeds the limit of 1048576 bytes"
    );
    server.stop().await;
}

#[tokio::test]
async fn external_source_result_is_aggregated() {
    let (url, received) =
        fake_external(200, json!({"sentiment": "positive"}), Duration::ZERO).await;
    let server = start(Config {
        external_url: Some(url),
        ..Config::default()
    })
    .await;
    let (status, doc) = enrich(&server, json!({"id": "e1", "text": " Happy  text. "})).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["external"], json!({"sentiment": "positive"}));
    assert_eq!(source(&doc, "external")["status"], "ok");
    assert_eq!(doc["degraded"], false);
    let sent = received.lock().expect("lock").clone();
    assert_eq!(
        sent,
        [json!({"id": "e1", "title": null, "text": "Happy text.", "metadata": {}})]
    );
    server.stop().await;
}

#[tokio::test]
async fn external_failures_degrade_but_never_fail() {
    let (error_url, _) = fake_external(500, json!({"oops": true}), Duration::ZERO).await;
    let (slow_url, _) = fake_external(200, json!({}), Duration::from_secs(3)).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/analyse", listener.local_addr().expect("addr"))
    };
    for (url, reason) in [
        (error_url, "external source answered HTTP 500"),
        (slow_url, "timed out after 300ms"),
        (closed, "connection failed"),
    ] {
        let server = start(Config {
            external_url: Some(url),
            external_timeout: Duration::from_millis(300),
            ..Config::default()
        })
        .await;
        let (status, doc) = enrich(&server, json!({"text": "Still enriched."})).await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        assert_eq!(doc["degraded"], true);
        assert_eq!(doc["external"], Value::Null);
        assert_eq!(doc["word_count"], 2);
        let external = source(&doc, "external");
        assert_eq!(external["status"], "failed");
        assert_eq!(external["detail"], reason);
        let (_, metrics) = server.get_text("/metrics").await;
        assert!(
            metrics.contains("enrichment_requests_total{outcome=\"degraded\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("enrichment_sources_total{source=\"external\",status=\"failed\"} 1")
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn probes_and_metrics() {
    let server = start(Config::default()).await;
    let (status, health) = server.get_text("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        health.contains("\"service\":\"api-enrichment\""),
        "{health}"
    );
    let (status, ready) = server.get_text("/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ready.contains("\"status\":\"ready\""), "{ready}");
    let _ = enrich(&server, json!({"text": "One document."})).await;
    let (status, metrics) = server.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("enrichment_requests_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("enrichment_duration_seconds_count 1"));
    assert!(
        metrics.contains("http_requests_total{method=\"POST\",route=\"/enrich\",status=\"200\"} 1")
    );
    server.stop().await;
}
