//! `GET /admin/jobs/{id}`: a job's whole record for the operator, whoever submitted
//! it: status, stage timestamps, result, error, webhook record, owner consumer, the
//! route and what the job runs (its spec, secrets redacted), and the store it lives in.
//! Unknown, expired and malformed ids are 404; a store that cannot be reached is 503.

use super::{err, json, redact};
use crate::gateway::Gateway;
use http::{Response, StatusCode};
use serde_json::{json, Value};

/// The admin view of job `id`.
pub async fn job(gw: &Gateway, id: &str) -> Response<Vec<u8>> {
    if uuid::Uuid::parse_str(id).is_err() {
        return err(StatusCode::NOT_FOUND, "not_found", "no such job");
    }
    let stored = match gw.jobs.store.get(id).await {
        Ok(Some(j)) => j,
        Ok(None) => return err(StatusCode::NOT_FOUND, "not_found", "no such job"),
        Err(e) => {
            tracing::warn!(error = %e, "job store unavailable");
            return err(
                StatusCode::SERVICE_UNAVAILABLE,
                "job_store_unavailable",
                "the job store cannot be reached",
            );
        }
    };
    let view = &stored.view;
    // RFC 3339 stamps of one format sort as text
    let submitted = view.stages.get("queued").cloned();
    let updated = view.stages.values().max().cloned();
    let mut spec = match &stored.spec {
        Some(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        None => Value::Null,
    };
    redact::redact(&mut spec);
    json(
        StatusCode::OK,
        json!({
            "job_id": view.job_id,
            "status": view.status,
            "stages": view.stages,
            "submitted_at": submitted,
            "updated_at": updated,
            "result": view.result,
            "error": view.error,
            "callback": view.callback,
            "owner": stored.owner,
            "route": stored.spec.as_ref().map(|s| s.route.as_str()),
            "request_id": stored.spec.as_ref().map(|s| s.request_id.as_str()),
            "spec": spec,
            "store": gw.jobs.store.kind(),
        }),
    )
}
