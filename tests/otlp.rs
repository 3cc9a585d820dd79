//! Spans exported over OTLP/HTTP to a real receiver on loopback that decodes them with
//! the OpenTelemetry protobuf types: the server span continues the client's trace,
//! plugin and upstream-attempt spans are its children, and the upstream saw the
//! gateway's span as its parent.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn receiver() -> (std::net::SocketAddr, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|a| a.key == "service.name")
                        .map(|a| format!("{:?}", a.value));
                    assert!(service.unwrap().contains("api-gateway"));
                    for ss in rs.scope_spans {
                        sink.lock().unwrap().extend(ss.spans);
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let (addr, _) = serve_app(app).await;
    (addr, spans)
}

fn attr(s: &Span, key: &str) -> String {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| format!("{:?}", a.value))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver() {
    let (otlp, spans) = receiver().await;
    let up = Echo::start("u").await;
    let endpoint = format!("http://{otlp}");
    let gw = Gateway::start_with(
        &format!("version: 1\nupstreams:\n  u: {{ targets: [{{ addr: \"{}\" }}] }}\nroutes:\n  - {{ name: traced, match: {{ path_prefix: /t }}, upstream: u, plugins: [{{ name: request_headers, set: {{ x-a: b }} }}] }}\n", up.addr),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let r = reqwest::Client::new()
        .get(gw.url("/t/x"))
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echoed: serde_json::Value = r.json().await.unwrap();
    let upstream_tp = echoed["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_string();

    let got = wait_until(Duration::from_secs(10), || async {
        spans.lock().unwrap().len() >= 3
    })
    .await;
    assert!(got.is_some(), "no spans arrived; log:\n{}", gw.logs());
    let spans = spans.lock().unwrap().clone();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let server = spans.iter().find(|s| s.name == "GET traced").unwrap();
    assert_eq!(hex(&server.trace_id), trace_id);
    assert_eq!(hex(&server.parent_span_id), client_span);
    assert!(attr(server, "http.response.status_code").contains("200"));
    // the upstream's parent is the gateway's server span
    assert_eq!(
        upstream_tp,
        format!("00-{trace_id}-{}-01", hex(&server.span_id))
    );
    let attempt = spans.iter().find(|s| s.name == "upstream attempt").unwrap();
    assert_eq!(attempt.parent_span_id, server.span_id);
    assert!(attr(attempt, "server.address").contains(&up.addr.to_string()));
    let plugin = spans
        .iter()
        .find(|s| s.name == "plugin request_headers")
        .unwrap();
    assert_eq!(plugin.parent_span_id, server.span_id);
    assert!(attempt.start_time_unix_nano >= server.start_time_unix_nano);
    assert!(attempt.end_time_unix_nano <= server.end_time_unix_nano);
}
