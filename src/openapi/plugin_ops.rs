//! Operations a plugin answers itself under its route's path (the `token` plugin's
//! `POST <route>/token`, `/refresh`, `/revoke`): described by the plugin
//! ([`gateway_plugins::ApiEndpoint`]), written here with the chain's answers.

use super::answers::{self, Chain};
use super::responses::{Body, Responses};
use super::Builder;
use crate::config::RouteConfig;
use gateway_plugins::ApiDoc;
use serde_json::{json, Value};

/// Adds the operations `doc` describes for route `r` under `base`.
pub fn operations(
    b: &mut Builder,
    r: &RouteConfig,
    base: &str,
    security: Option<&Value>,
    chain: &Chain,
    doc: &ApiDoc,
) {
    if let Some((name, description)) = doc.tag {
        b.tag(name, description);
    }
    b.extra_schemas.extend(doc.schemas.clone());
    let tag = doc.tag.map_or("plugins", |(n, _)| n);
    for e in &doc.endpoints {
        let path = format!("{}/{}", base.trim_end_matches('/'), e.suffix);
        let mut a = Responses::default();
        a.everywhere.insert("X-Request-ID");
        a.add(
            "200",
            "Done (`Cache-Control: no-store`).",
            Body::Json(e.ok.clone()),
            &[],
        );
        for x in &e.answers {
            a.error(x.status, x.description, x.headers);
        }
        answers::plugin_answers(chain, &mut a);
        a.error(
            413,
            "The request body is larger than the route allows.",
            &[],
        );
        let id = b.operation_id(&format!("{}-{}", r.name, e.suffix));
        let mut op = json!({
            "tags": [tag],
            "operationId": id,
            "summary": e.summary,
            "x-gateway-route": r.name,
            "responses": a.render(),
        });
        if let Some(c) = e.request {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{c}") } } } });
        }
        if let Some(s) = security {
            op["security"] = s.clone();
        }
        b.paths.entry(path).or_default().insert("post".into(), op);
    }
}
