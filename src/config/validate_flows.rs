//! Checks of the flow routes: `pipeline`, `async` and `jobs`.

use super::{AsyncConfig, Config, Errors, PipelineStep, RouteConfig};
use std::collections::BTreeSet;

/// Step names the pipeline answer uses for itself.
const RESERVED_STEP_NAMES: [&str; 2] = ["result", "steps"];

pub(super) fn route(p: &str, r: &RouteConfig, c: &Config, errs: &mut Errors) {
    if let Some(steps) = &r.pipeline {
        pipeline(&format!("{p}.pipeline"), steps, c, errs);
    }
    if let Some(a) = &r.async_job {
        async_job(&format!("{p}.async"), a, c, errs);
    }
    if r.jobs.is_some() {
        let ends_with_id = r
            .matcher
            .path
            .as_deref()
            .is_some_and(|path| path.ends_with("/{job_id}"));
        if !ends_with_id && !r.is_job_events() {
            errs.push(
                format!("{p}.match"),
                "a `jobs` route needs `match.path` ending in `/{job_id}` (e.g. `/api/v1/jobs/{job_id}`), or in `/{job_id}/events` for the job's events",
            );
        }
    }
    if (r.pipeline.is_some() || r.async_job.is_some() || r.jobs.is_some()) && r.rewrite.is_some() {
        errs.push(
            format!("{p}.rewrite"),
            "only proxied routes (`upstream`) are rewritten; flow steps name their own paths",
        );
    }
}

fn upstream_known(path: String, name: &str, c: &Config, errs: &mut Errors) {
    if !c.upstreams.contains_key(name) {
        let known: Vec<String> = c.upstreams.keys().map(|k| format!("`{k}`")).collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        errs.push(
            path,
            format!("unknown upstream `{name}` (defined: {known})"),
        );
    }
}

fn step_path(path: String, v: &str, errs: &mut Errors) {
    if !v.starts_with('/') || v.contains(char::is_whitespace) {
        errs.push(
            path,
            format!("`{v}` is not a path (it must start with `/`)"),
        );
    }
}

fn pipeline(p: &str, steps: &[PipelineStep], c: &Config, errs: &mut Errors) {
    if steps.is_empty() {
        errs.push(p, "a pipeline needs at least one step");
    }
    let mut names = BTreeSet::new();
    for (i, s) in steps.iter().enumerate() {
        let sp = format!("{p}[{i}]");
        upstream_known(format!("{sp}.upstream"), &s.upstream, c, errs);
        step_path(format!("{sp}.path"), &s.path, errs);
        let name = s.step_name();
        if RESERVED_STEP_NAMES.contains(&name) || name.is_empty() {
            errs.push(
                format!("{sp}.name"),
                format!("`{name}` cannot name a step (the answer uses `result` and `steps`)"),
            );
        }
        if !names.insert(name) {
            errs.push(
                format!("{sp}.name"),
                format!("two steps are named `{name}`: give each a distinct `name`"),
            );
        }
    }
}

fn async_job(p: &str, a: &AsyncConfig, c: &Config, errs: &mut Errors) {
    if a.topic.trim().is_empty() {
        errs.push(format!("{p}.topic"), "must not be empty");
    }
    for (field, st) in [("generation", &a.generation), ("enrichment", &a.enrichment)] {
        upstream_known(format!("{p}.{field}.upstream"), &st.upstream, c, errs);
        step_path(format!("{p}.{field}.path"), &st.path, errs);
    }
    if !a.status_path.starts_with('/') || !a.status_path.contains("{job_id}") {
        errs.push(
            format!("{p}.status_path"),
            "must start with `/` and contain `{job_id}`",
        );
    }
    let cb = &a.callback;
    let cp = format!("{p}.callback");
    if cb.attempts == 0 || cb.attempts > 20 {
        errs.push(format!("{cp}.attempts"), "must be between 1 and 20");
    }
    if cb.timeout.get().is_zero() {
        errs.push(format!("{cp}.timeout"), "must be more than 0s");
    }
    if cb.backoff.get() > cb.max_backoff.get() {
        errs.push(format!("{cp}.backoff"), "must not exceed `max_backoff`");
    }
    if cb.secret_env.trim().is_empty() {
        errs.push(
            format!("{cp}.secret_env"),
            "must name an environment variable",
        );
    }
    for (i, h) in cb.allow_hosts.iter().enumerate() {
        let bare = h.strip_prefix("*.").unwrap_or(h);
        if bare.is_empty()
            || bare.contains(['/', ':', '*', ' ', '@'])
                && bare.parse::<std::net::Ipv6Addr>().is_err()
        {
            errs.push(
                format!("{cp}.allow_hosts[{i}]"),
                format!("`{h}` is not a host name or IP (no scheme, port or path; wildcards only as `*.example.com`)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::parse;

    fn env_none(_: &str) -> Option<String> {
        None
    }

    const SPEC_FLOWS: &str = r#"
version: 1
upstreams:
  generation: { targets: [{ addr: "127.0.0.1:8001" }] }
  enrichment: { targets: [{ addr: "127.0.0.1:8002" }] }
routes:
  - name: process-v1
    match: { path: /api/v1/process, methods: [POST] }
    pipeline: [ { upstream: generation, path: /generate }, { upstream: enrichment, path: /enrich } ]
  - name: async-process-v1
    match: { path: /api/v1/async-process, methods: [POST] }
    async: { topic: generation-requests }
  - name: jobs-v1
    match: { path: "/api/v1/jobs/{job_id}", methods: [GET] }
    jobs: {}
"#;

    #[test]
    fn the_spec_flows_load_with_defaults() {
        let c = parse(SPEC_FLOWS, "t.yaml", &env_none).unwrap();
        let a = c.routes[1].async_job.as_ref().unwrap();
        assert_eq!(a.topic, "generation-requests");
        assert_eq!(a.generation.upstream, "generation");
        assert_eq!(a.enrichment.path, "/enrich");
        assert_eq!(a.status_path, "/api/v1/jobs/{job_id}");
        assert!(a.callback.allow_hosts.is_empty());
        assert_eq!(a.callback.secret_env, "WEBHOOK_SECRET");
    }

    #[test]
    fn flow_errors_are_located() {
        let bad = SPEC_FLOWS
            .replace("path: /enrich }", "path: enrich }")
            .replace(
                "topic: generation-requests",
                "topic: t, generation: { upstream: gone, path: /g }",
            )
            .replace("\"/api/v1/jobs/{job_id}\"", "/api/v1/jobs");
        let e = parse(&bad, "t.yaml", &env_none).unwrap_err().to_string();
        assert!(
            e.contains("routes[0].pipeline[1].path: `enrich` is not a path"),
            "{e}"
        );
        assert!(
            e.contains("routes[1].async.generation.upstream: unknown upstream `gone`"),
            "{e}"
        );
        assert!(e.contains("routes[2].match: a `jobs` route needs"), "{e}");
        assert!(e.contains("line "), "{e}");
    }

    #[test]
    fn one_kind_per_route() {
        let bad = SPEC_FLOWS.replace("    jobs: {}", "    jobs: {}\n    upstream: generation");
        let e = parse(&bad, "t.yaml", &env_none).unwrap_err().to_string();
        assert!(e.contains("give only one of"), "{e}");
    }
}
