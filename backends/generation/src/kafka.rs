//! api-generation's Kafka stage (when `KAFKA_BOOTSTRAP_SERVERS` is set), beside the
//! HTTP API: consumes `KAFKA_TOPIC_REQUESTS` (default `generation-requests`) in the
//! group `KAFKA_GROUP_ID` (default `api-generation`), publishes a `started` event on
//! `KAFKA_TOPIC_EVENTS` (default `job-events`), runs the job's request through
//! `POST /generate` of this service's own router (same validation, cache, priority
//! queue and metrics as HTTP), and produces the envelope with `generation` added to
//! `KAFKA_TOPIC_RESPONSES` (default `generation-responses`); offsets are stored once
//! that is acknowledged. A request without `seed` gets one derived from the job id,
//! so a redelivered job generates the same text. Refused requests (4xx) and
//! unparseable messages go to `KAFKA_TOPIC_DEAD_LETTER` (default
//! `jobs-dead-letter`). The other `KAFKA_*` settings are in `jobbus::settings`.

use axum::Router;
use jobbus::stage::{self, Stage, StageError};
use jobbus::{local, Envelope, Settings, SettingsError};
use serde_json::Value;

use crate::SERVICE;

/// Starts the stage on the current runtime when Kafka is configured.
pub fn spawn(router: &Router) -> Result<(), SettingsError> {
    let Some(settings) = Settings::from_env(SERVICE)? else {
        return Ok(());
    };
    let stage = Stage {
        name: "generation",
        service: SERVICE,
        input: settings.topics.requests.clone(),
        output: settings.topics.responses.clone(),
        events: Some(settings.topics.events.clone()),
        dead_letter: settings.topics.dead_letter.clone(),
    };
    let router = router.clone();
    stage::spawn(settings, stage, move |env| generate(router.clone(), env));
    Ok(())
}

async fn generate(router: Router, mut env: Envelope) -> Result<Envelope, StageError> {
    let mut request = match env.request.take() {
        Some(Value::Object(o)) => o,
        _ => return Err(StageError::Rejected("the job has no request object".into())),
    };
    if request.get("seed").is_none_or(Value::is_null) {
        request.insert("seed".into(), jobbus::seed_for(&env.job_id).into());
    }
    let request = Value::Object(request);
    let answer = local::post(&router, "/generate", &env.request_id, &request).await?;
    env.steps.push(local::step("generation", SERVICE, &answer));
    env.request = Some(request);
    env.generation = Some(answer.body);
    Ok(env)
}
