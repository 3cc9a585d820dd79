//! Spans over OTLP (HTTP/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: one
//! server span per routed request, a child per plugin phase and per upstream attempt.
//! Spans are built in the logging phase from times recorded on the way, so the hot
//! path only pushes a few timestamps; export is batched on the SDK's own thread.
//!
//! The server span carries the ids the gateway propagated upstream in `traceparent`
//! (its trace id, and its span id as the upstream's parent), and continues the client's
//! trace when its `traceparent` was valid. Sampling: the client's sampled flag when it
//! sent one, else `OTEL_TRACES_SAMPLER_ARG` (a ratio, default 1).

use crate::observability::trace::TraceContext;
use opentelemetry::trace::{
    Span, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
    TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SdkTracer, SdkTracerProvider,
};
use opentelemetry_sdk::Resource;
use std::cell::Cell;
use std::time::{Duration, SystemTime};

/// A phase of a request to report as a child span.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub name: String,
    /// From the request's start.
    pub offset: Duration,
    pub duration: Duration,
    pub attributes: Vec<(&'static str, String)>,
}

thread_local! {
    static PRESET: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Ids for the next span made on this thread, when preset (the server span takes the
/// ids already propagated upstream); random otherwise.
#[derive(Debug, Default)]
struct PresetIds(RandomIdGenerator);

impl IdGenerator for PresetIds {
    fn new_trace_id(&self) -> TraceId {
        PRESET
            .with(|p| p.get())
            .map_or_else(|| self.0.new_trace_id(), |(t, _)| t)
    }
    fn new_span_id(&self) -> SpanId {
        PRESET
            .with(|p| p.take())
            .map_or_else(|| self.0.new_span_id(), |(_, s)| s)
    }
}

/// The OTLP span exporter and the gateway's tracer.
pub struct Otel {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// What the server span says about a request.
pub struct RequestSpan<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub request_id: &'a str,
    pub user_id: Option<&'a str>,
    pub error: Option<String>,
}

/// The OTLP exporter cannot be built from the `OTEL_*` settings.
#[derive(Debug, thiserror::Error)]
#[error("OTLP exporter: {0}")]
pub struct OtelError(#[source] pub opentelemetry_otlp::ExporterBuildError);

impl Otel {
    /// Built when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.
    pub fn from_env() -> Result<Option<Self>, OtelError> {
        let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
        if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return Ok(None);
        }
        let ratio = std::env::var("OTEL_TRACES_SAMPLER_ARG")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(1.0);
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(OtelError)?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                ratio,
            ))))
            .with_id_generator(PresetIds::default())
            .with_resource(Resource::builder().with_service_name("api-gateway").build())
            .build();
        let tracer = provider.tracer("api-gateway");
        tracing::info!(sample_ratio = ratio, "exporting spans over OTLP");
        Ok(Some(Self { provider, tracer }))
    }

    /// Reports one finished request: the server span and its children.
    pub fn export(
        &self,
        trace: &TraceContext,
        start: SystemTime,
        elapsed: Duration,
        req: &RequestSpan<'_>,
        children: &[SpanRecord],
    ) {
        let (Ok(trace_id), Ok(span_id)) = (
            TraceId::from_hex(&trace.trace_id),
            SpanId::from_hex(&trace.span_id),
        ) else {
            return;
        };
        let flags = if trace.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let parent = match trace.parent_span_id.as_deref().map(SpanId::from_hex) {
            Some(Ok(p)) => Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                p,
                flags,
                true,
                TraceState::default(),
            )),
            _ => Context::new(),
        };
        let mut attrs = vec![
            KeyValue::new("http.request.method", req.method.to_string()),
            KeyValue::new("url.path", req.path.to_string()),
            KeyValue::new("http.route", req.route.to_string()),
            KeyValue::new("http.response.status_code", i64::from(req.status)),
            KeyValue::new("gateway.request_id", req.request_id.to_string()),
        ];
        if let Some(u) = req.user_id {
            attrs.push(KeyValue::new("enduser.id", u.to_string()));
        }
        if let Some(e) = &req.error {
            attrs.push(KeyValue::new("error.type", e.clone()));
        }
        PRESET.with(|p| p.set(Some((trace_id, span_id))));
        let server = self
            .tracer
            .span_builder(format!("{} {}", req.method, req.route))
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, &parent);
        PRESET.with(|p| p.set(None));
        let sampled = server.span_context().is_sampled();
        let server_cx = parent.with_span(server);
        if sampled {
            for c in children {
                let mut span = self
                    .tracer
                    .span_builder(c.name.clone())
                    .with_kind(if c.name.starts_with("upstream") {
                        SpanKind::Client
                    } else {
                        SpanKind::Internal
                    })
                    .with_start_time(start + c.offset)
                    .with_attributes(
                        c.attributes
                            .iter()
                            .map(|(k, v)| KeyValue::new(*k, v.clone()))
                            .collect::<Vec<_>>(),
                    )
                    .start_with_context(&self.tracer, &server_cx);
                span.end_with_timestamp(start + c.offset + c.duration);
            }
        }
        server_cx.span().end_with_timestamp(start + elapsed);
    }

    /// Flushes what is batched (at shutdown).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "OTLP shutdown");
        }
    }
}
