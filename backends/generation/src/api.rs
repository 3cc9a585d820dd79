//! `POST /generate`: request and response bodies and the handler.
//!
//! Request: `{"prompt": string, "max_tokens"?: 1..=1024 (default 64),
//! "seed"?: u64, "priority"?: "low"|"normal"|"high" (default "normal")}`;
//! unknown fields are ignored. A body that is not such JSON is a 400
//! `bad_request`; a blank `prompt` or an out-of-range `max_tokens` is a 422
//! `validation_error`; a full admission queue is a 503 `overloaded` with
//! `Retry-After: 1`.
//!
//! Admitted requests are generated on the `WORKER_PROCESSES` generation
//! threads ([`crate::pool`]), with their priority.
//!
//! Response: `{"text", "model", "tokens", "cached", "duration_ms", "seed"}`.
//! With a `seed` the text is deterministic and the result is cached for
//! `CACHE_TTL_SECONDS` under (prompt, max_tokens, seed); a hit answers
//! `"cached": true` without waiting for a slot. Without a `seed`, a random one
//! is drawn, returned in `seed`, and nothing is cached.

use std::time::Instant;

use axum::extract::State;
use axum::Json;
pub use backend_api::generation::{
    GenerateRequest, GenerateResponse, DEFAULT_MAX_TOKENS, MAX_TOKENS_LIMIT,
};

use crate::app::AppState;
use crate::error::ApiError;
use crate::json::ValidJson;
use crate::model::Generation;
use crate::prng;

/// Cache key: (prompt, max_tokens, seed).
pub type CacheKey = (String, u32, u64);

/// Checks the values of `request`; returns the effective `max_tokens`.
pub fn validate(request: &GenerateRequest) -> Result<u32, ApiError> {
    if request.prompt.trim().is_empty() {
        return Err(ApiError::validation("`prompt` must not be empty"));
    }
    let max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if !(1..=MAX_TOKENS_LIMIT).contains(&max_tokens) {
        return Err(ApiError::validation(format!(
            "`max_tokens` must be between 1 and {MAX_TOKENS_LIMIT}, got {max_tokens}"
        )));
    }
    Ok(max_tokens)
}

/// Handler of `POST /generate`: the JSON answer, or with `"stream": true` a token
/// stream ([`crate::stream`]).
pub async fn generate(
    State(state): State<AppState>,
    ValidJson(request): ValidJson<GenerateRequest>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if request.stream {
        let (answer, pieces) = answer(&state, request, "stream").await?;
        return Ok(crate::stream::events(&state, answer, pieces).into_response());
    }
    respond(&state, request, "sync")
        .await
        .map(|a| Json(a).into_response())
}

/// Answers one generation request (validation, cache, admission, generation,
/// metrics); `channel` is the `type` label of `generation_requests_total`.
pub async fn respond(
    state: &AppState,
    request: GenerateRequest,
    channel: &str,
) -> Result<GenerateResponse, ApiError> {
    answer(state, request, channel).await.map(|(a, _)| a)
}

/// [`respond`], with the pieces of the text a token stream sends.
async fn answer(
    state: &AppState,
    request: GenerateRequest,
    channel: &str,
) -> Result<(GenerateResponse, Vec<String>), ApiError> {
    let started = Instant::now();
    let max_tokens = validate(&request)?;
    let metrics = state.metrics();
    let model = state.model();
    let key: Option<CacheKey> = request
        .seed
        .filter(|_| state.cache().is_enabled())
        .map(|seed| (request.prompt.clone(), max_tokens, seed));

    let cached = match &key {
        Some(k) => state.cache().get(k).await,
        None => None,
    };
    if key.is_some() {
        if cached.is_some() {
            metrics.cache_hits.inc();
        } else {
            metrics.cache_misses.inc();
        }
    }

    let seed = request.seed.unwrap_or_else(prng::entropy_seed);
    let (generation, was_cached) = match cached {
        Some(generation) => (generation, true),
        None => {
            let permit = state.gate().acquire(request.priority).await.map_err(|_| {
                ApiError::overloaded("too many generation requests are waiting; retry later", 1)
            })?;
            let shared = state.shared_model();
            let prompt = request.prompt;
            let generation = state
                .pool()
                .run(request.priority, move || {
                    // the slot is held until the generation ends, even if the
                    // caller went away meanwhile
                    let _permit = permit;
                    shared.generate(&prompt, max_tokens as usize, seed)
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if let Some(key) = key {
                state.cache().insert(key, generation.clone()).await;
            }
            (generation, false)
        }
    };

    let elapsed = started.elapsed();
    metrics
        .requests
        .with_label_values(&[model.name(), channel])
        .inc();
    metrics.duration.observe(elapsed.as_secs_f64());
    let Generation {
        text,
        tokens,
        pieces,
    } = generation;
    let answer = GenerateResponse {
        text,
        model: model.name().to_owned(),
        tokens,
        cached: was_cached,
        duration_ms: (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
        seed,
    };
    Ok((answer, pieces))
}
