//! The logging phase: metrics and the access log line of each request.

use crate::gateway::Gateway;
use crate::observability::otel::RequestSpan;
use crate::proxy::Ctx;
use pingora_error::Error;
use pingora_proxy::Session;

/// Records one finished request.
pub fn record(gw: &Gateway, session: &Session, e: Option<&Error>, ctx: &Ctx) {
    let status = session
        .response_written()
        .map(|r| r.status.as_u16())
        .or(ctx.answered)
        .unwrap_or(0);
    let route = ctx.route_name();
    let req = session.req_header();
    let elapsed = ctx.start.elapsed();
    let m = &gw.metrics;
    let rm = match &ctx.route {
        Some(r) => r.metrics(m),
        None => m.unrouted(),
    };
    rm.count(Some(&req.method), status);
    rm.duration.observe(elapsed.as_secs_f64());
    if let Some(t) = ctx.first_byte {
        rm.ttfb.observe(t.as_secs_f64());
    }
    if let (Some(pool), Some((requests, duration))) = (ctx.pool.as_ref(), rm.backend(ctx.side)) {
        if ctx.tries > 0 {
            requests.inc();
            if let Some(t) = ctx.upstream_time {
                duration.observe(t.as_secs_f64());
            }
        }
        // only requests that failed in the end: a failure that a retry mended is not one
        let failed = e.is_some() || status >= 500;
        if let (true, Some(kind)) = (failed, ctx.error_type) {
            m.route_errors
                .with_label_values(&[route, &pool.name, kind])
                .inc();
        } else if status >= 500 && ctx.tries > 0 {
            m.route_errors
                .with_label_values(&[route, &pool.name, "upstream_5xx"])
                .inc();
        }
    }
    if let (Some(otel), Some(trace)) = (&gw.otel, &ctx.trace) {
        let error = e.map(|e| e.etype().as_str().to_string());
        otel.export(
            trace,
            std::time::SystemTime::now() - elapsed,
            elapsed,
            &RequestSpan {
                method: req.method.as_str(),
                path: req.uri.path(),
                route,
                status,
                request_id: ctx.request_id.to_str().unwrap_or(""),
                user_id: ctx.plugin.consumer(),
                error,
            },
            ctx.spans.as_deref().unwrap_or(&[]),
        );
    }
    // the line's values are only made when it is written (LOG_LEVEL may be above info)
    if gw.access_log
        && tracing::enabled!(tracing::Level::INFO)
        && sampled(gw.access_log_sample, status)
    {
        let trace_id = ctx
            .trace
            .as_ref()
            .map(|t| t.trace_id.as_str())
            .unwrap_or("");
        let span_id = ctx.trace.as_ref().map(|t| t.span_id.as_str()).unwrap_or("");
        let upstream = ctx.tried.last().map(|a| a.to_string()).unwrap_or_default();
        // the path only: query strings may carry credentials (`?api_key=`)
        tracing::info!(
            service = "api-gateway",
            operation = "proxy",
            method = req.method.as_str(),
            path = req.uri.path(),
            status_code = status,
            route,
            upstream = upstream.as_str(),
            side = ctx.side_name().unwrap_or(""),
            attempts = ctx.tries,
            bytes_in = session.body_bytes_read(),
            bytes_out = session.body_bytes_sent(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            correlation_id = ctx.request_id.to_str().unwrap_or(""),
            trace_id,
            span_id,
            user_id = ctx.plugin.consumer().unwrap_or(""),
            error = e.map(|e| e.to_string()).unwrap_or_default(),
            "request"
        );
    }
}

/// Every failed request (status ≥ 400 or none) is logged; successful ones with
/// probability `ratio` (`ACCESS_LOG_SAMPLE`, default 1).
fn sampled(ratio: f64, status: u16) -> bool {
    status >= 400 || status == 0 || ratio >= 1.0 || (ratio > 0.0 && rand::random::<f64>() < ratio)
}
