//! User-level checks: the real server on 127.0.0.1:0, called over HTTP.

use std::time::Duration;

use api_generation::{serve, Config, StartupError};
use backend_common::testing::{self, InProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};

type Server = InProcess<StartupError>;

async fn start(config: Config) -> Server {
    InProcess::start(|listener, shutdown| serve(listener, config, shutdown)).await
}

async fn generate(server: &Server, body: Value) -> (StatusCode, Value) {
    server.post_json("/generate", &body).await
}

fn no_cache() -> Config {
    Config {
        cache_ttl: Duration::ZERO,
        ..Config::default()
    }
}

fn metric(text: &str, name: &str) -> f64 {
    testing::metric(text, name).unwrap_or_else(|| panic!("metric {name} not found in\n{text}"))
}

#[tokio::test]
async fn same_seed_same_text_and_other_seeds_differ() {
    let server = start(no_cache()).await;
    let request = json!({"prompt": "The Fox and the", "max_tokens": 30, "seed": 7});
    let (status, first) = generate(&server, request.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = generate(&server, request).await;
    assert_eq!(first["text"], second["text"]);
    assert_eq!(first["cached"], false);
    assert_eq!(second["cached"], false, "cache disabled");
    assert_eq!(first["tokens"], 30);
    assert_eq!(first["seed"], 7);
    assert_eq!(first["model"], "trigram-aesop");
    let text = first["text"].as_str().expect("text");
    assert!(text.split_whitespace().count() >= 15, "{text}");

    let mut others = Vec::new();
    for seed in 8..12 {
        let (_, other) = generate(
            &server,
            json!({"prompt": "The Fox and the", "max_tokens": 30, "seed": seed}),
        )
        .await;
        others.push(other["text"].clone());
    }
    assert!(others.iter().any(|t| *t != first["text"]), "{others:?}");
    server.stop().await;
}

#[tokio::test]
async fn defaults_and_unseeded_requests() {
    let server = start(Config::default()).await;
    let (status, body) = generate(&server, json!({"prompt": "wolf", "priority": "high"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tokens"], 64, "default max_tokens");
    assert!(body["seed"].is_u64());
    let (_, again) = generate(&server, json!({"prompt": "wolf"})).await;
    assert_eq!(again["cached"], false, "unseeded requests are never cached");
    let (status, big) = generate(
        &server,
        json!({"prompt": "wolf", "max_tokens": 1024, "seed": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(big["tokens"], 1024);
    server.stop().await;
}

#[tokio::test]
async fn repeat_with_seed_is_a_cache_hit() {
    let server = start(Config::default()).await;
    let request = json!({"prompt": "A Lion", "max_tokens": 12, "seed": 99});
    let (_, first) = generate(&server, request.clone()).await;
    let (_, second) = generate(&server, request).await;
    assert_eq!(first["cached"], false);
    assert_eq!(second["cached"], true);
    assert_eq!(first["text"], second["text"]);
    // Another max_tokens is another key.
    let (_, third) = generate(
        &server,
        json!({"prompt": "A Lion", "max_tokens": 13, "seed": 99}),
    )
    .await;
    assert_eq!(third["cached"], false);

    let (_, metrics) = server.get_text("/metrics").await;
    assert_eq!(metric(&metrics, "generation_cache_hits_total"), 1.0);
    assert_eq!(metric(&metrics, "generation_cache_misses_total"), 2.0);
    assert_eq!(
        metric(
            &metrics,
            "generation_requests_total{model=\"trigram-aesop\",type=\"sync\"}"
        ),
        3.0
    );
    assert_eq!(metric(&metrics, "generation_duration_seconds_count"), 3.0);
    assert_eq!(
        metric(&metrics, "generation_queue_size{priority=\"high\"}"),
        0.0
    );
    assert!(metrics.contains("generation_queue_wait_time_seconds_bucket"));
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_400_with_serde_message() {
    let server = start(Config::default()).await;
    let cases = [
        (
            "{\"prompt\": \"x\",",
            "EOF while parsing a value at line 1 column 15",
        ),
        (
            "{\"max_tokens\": 5}",
            "missing field `prompt` at line 1 column 17",
        ),
        (
            "{\"prompt\": 42}",
            "invalid type: integer `42`, expected a string at line 1 column 13",
        ),
        (
            "{\"prompt\": \"x\", \"max_tokens\": -1}",
            "invalid value: integer `-1`",
        ),
        (
            "{\"prompt\": \"x\", \"priority\": \"urgent\"}",
            "unknown variant `urgent`",
        ),
        ("", "EOF while parsing a value at line 1 column 0"),
    ];
    server
        .assert_json_refusals("/generate", &cases, "{\"prompt\": \"x\"}")
        .await;
    server.stop().await;
}

#[tokio::test]
async fn invalid_values_get_422() {
    let server = start(Config::default()).await;
    for (body, expected) in [
        (json!({"prompt": "   "}), "`prompt` must not be empty"),
        (
            json!({"prompt": "x", "max_tokens": 0}),
            "between 1 and 1024, got 0",
        ),
        (
            json!({"prompt": "x", "max_tokens": 1025}),
            "between 1 and 1024, got 1025",
        ),
    ] {
        let (status, error) = generate(&server, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error["error"], "validation_error");
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains(expected),
            "{error}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_gets_413_json() {
    let server = start(Config {
        body_limit: 1024,
        ..Config::default()
    })
    .await;
    let body = json!({"prompt": "x".repeat(4096)}).to_string();
    let (status, error) = server.post_raw("/generate", "application/json", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["error"], "payload_too_large");
    assert_eq!(
        error["message"],
        "request body exceeds the limit of 1024 bytes"
    );
    server.stop().await;
}

#[tokio::test]
async fn default_limit_is_one_mebibyte() {
    let server = start(Config::default()).await;
    let body = json!({"prompt": "x".repeat(1024 * 1024), "max_tokens": 1}).to_string();
    let (status, error) = server.post_raw("/generate", "application/json", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    let fits = json!({"prompt": "x".repeat(1000 * 1000), "max_tokens": 1}).to_string();
    let (status, _) = server.post_raw("/generate", "application/json", fits).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn probes_metrics_and_request_id() {
    let server = start(Config::default()).await;
    let (status, health) = server.get_text("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let (status, ready) = server.get_text("/ready").await;
    assert_eq!(status, StatusCode::OK);
    let ready: Value = serde_json::from_str(&ready).expect("JSON");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["model"], "trigram-aesop");

    let response = server
        .client
        .post(format!("{}/generate", server.base))
        .header("x-request-id", "req-abc.123")
        .json(&json!({"prompt": "x", "max_tokens": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "req-abc.123");

    let (status, missing) = server.get_text("/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains("\"error\":\"not_found\""));
    let (_, metrics) = server.get_text("/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "api_errors_total{error_type=\"not_found\",service=\"api-generation\"}"
        ),
        1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn loads_the_model_file_named_by_generation_model_path() {
    let dir = std::env::temp_dir().join(format!("api-generation-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let corpus = dir.join("tiny.txt");
    std::fs::write(
        &corpus,
        "The cat sat on the mat.\n\nThe dog sat on the log.",
    )
    .expect("write");
    let model = dir.join("tiny.model");
    api_generation::cli::train(&corpus, &model, None).expect("trains");
    let server = start(Config {
        model_path: Some(model),
        ..Config::default()
    })
    .await;
    let (status, body) = generate(
        &server,
        json!({"prompt": "the cat", "max_tokens": 40, "seed": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model"], "trigram-tiny");
    let vocabulary = ["the", "cat", "sat", "on", "mat", "dog", "log"];
    for word in body["text"]
        .as_str()
        .expect("text")
        .split(|c: char| !c.is_alphabetic())
    {
        assert!(
            word.is_empty() || vocabulary.contains(&word.to_lowercase().as_str()),
            "unexpected word {word:?} in {body}"
        );
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn missing_model_file_fails_to_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = Config {
        model_path: Some("/nonexistent/model.bin".into()),
        ..Config::default()
    };
    let error = serve(listener, config, async {})
        .await
        .expect_err("no model file");
    assert!(
        error.to_string().contains("/nonexistent/model.bin"),
        "{error}"
    );
}
