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
        if !self.read_only(session, ctx).await? {
            return Ok(true);
        }
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
        if !self.read_only(session, ctx).await? {
            return Ok(true);
        }
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

    /// GET and HEAD go on (`true`); any other method is answered 405 with `Allow`.
    async fn read_only(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let m = &session.req_header().method;
        if m == http::Method::GET || m == http::Method::HEAD {
            return Ok(true);
        }
        let allow = [(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"))];
        self.answer_error(
            session,
            ctx,
            405,
            "method_not_allowed",
            "this path takes GET and HEAD",
            &allow,
        )
        .await?;
        Ok(false)
    }
}
