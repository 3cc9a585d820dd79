//! `GET /openapi.json` (the live table's document) and the `/docs` page, answered
//! before routing like the probes.

use super::{respond, Ctx, GatewayProxy};
use crate::runtime::Runtime;
use bytes::Bytes;
use http::HeaderValue;
use pingora_error::Result;
use pingora_proxy::Session;

impl GatewayProxy {
    /// The OpenAPI document of the table this request started with.
    pub(super) async fn openapi(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        rt: &Runtime,
    ) -> Result<bool> {
        let body = rt.openapi.get(&rt.config);
        let extra = [(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        )];
        self.answer(session, ctx, 200, Some(&respond::json_type()), body, &extra)
            .await?;
        Ok(true)
    }

    /// A file of the `/docs` page, or 404.
    pub(super) async fn docs(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let path = session.req_header().uri.path().to_string();
        match crate::openapi::docs::asset(&path) {
            Some(a) => {
                let ct = HeaderValue::from_static(a.content_type);
                let extra = [(
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                )];
                self.answer(
                    session,
                    ctx,
                    200,
                    Some(&ct),
                    Bytes::from_static(a.body),
                    &extra,
                )
                .await?;
            }
            None => {
                self.answer_error(session, ctx, 404, "not_found", "no such file", &[])
                    .await?;
            }
        }
        Ok(true)
    }
}
