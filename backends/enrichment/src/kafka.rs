//! api-enrichment's Kafka stage (when `KAFKA_BOOTSTRAP_SERVERS` is set), beside the
//! HTTP API: consumes `KAFKA_TOPIC_INPUT` (default: `KAFKA_TOPIC_RESPONSES`, i.e.
//! `generation-responses`) in the group `KAFKA_GROUP_ID` (default `api-enrichment`),
//! runs `{"text": <the generated text>}` through `POST /enrich` of this service's own
//! router (same validation, cleaning, analyses and metrics as HTTP), and produces the
//! envelope with `enrichment` added to `KAFKA_TOPIC_OUTPUT` (default
//! `enrichment-output`); offsets are stored once that is acknowledged. Enrichment is
//! a function of the text, so a redelivered job gives the same answer. Refused
//! documents (4xx) and unparseable messages go to `KAFKA_TOPIC_DEAD_LETTER` (default
//! `jobs-dead-letter`). The other `KAFKA_*` settings are in `jobbus::settings`.

use axum::Router;
use jobbus::stage::{self, Stage, StageError};
use jobbus::{local, Envelope, Settings, SettingsError};
use serde_json::json;

use crate::SERVICE;

/// Starts the stage on the current runtime when Kafka is configured.
pub fn spawn(router: &Router) -> Result<(), SettingsError> {
    let Some(settings) = Settings::from_env(SERVICE)? else {
        return Ok(());
    };
    let stage = Stage {
        name: "enrichment",
        service: SERVICE,
        input: settings.topics.input.clone(),
        output: settings.topics.output.clone(),
        events: None,
        dead_letter: settings.topics.dead_letter.clone(),
    };
    let router = router.clone();
    stage::spawn(settings, stage, move |env| enrich(router.clone(), env));
    Ok(())
}

async fn enrich(router: Router, mut env: Envelope) -> Result<Envelope, StageError> {
    let text = env
        .generation
        .as_ref()
        .and_then(|g| g.get("text"))
        .and_then(|t| t.as_str())
        .ok_or_else(|| StageError::Rejected("the job has no generated `text`".into()))?;
    let body = json!({ "text": text, "id": env.job_id });
    let answer = local::post(&router, "/enrich", &env.request_id, &body).await?;
    env.steps.push(local::step("enrichment", SERVICE, &answer));
    env.enrichment = Some(answer.body);
    Ok(env)
}
