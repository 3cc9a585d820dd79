use super::*;
use crate::config::MatchConfig;

fn m(path: Option<&str>, prefix: Option<&str>, methods: &[&str]) -> MatchConfig {
    MatchConfig {
        path: path.map(Into::into),
        path_prefix: prefix.map(Into::into),
        methods: methods.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn found(r: Routed<'_>) -> usize {
    match r {
        Routed::Found { route, .. } => route,
        other => panic!("expected a route, got {other:?}"),
    }
}

#[test]
fn specificity_and_order() {
    let routes = vec![
        m(None, Some("/api"), &[]),                     // 0
        m(None, Some("/api/v1"), &[]),                  // 1
        m(Some("/api/v1/jobs/{id}"), None, &["GET"]),   // 2
        m(Some("/api/v1/jobs/latest"), None, &["GET"]), // 3
        m(None, Some("/api/v1"), &["POST"]),            // 4: more specific (methods) than 1
        m(Some("/only-get"), None, &["GET", "HEAD"]),   // 5
    ];
    let r = Router::build(&routes).unwrap();
    let h = HeaderMap::new();
    assert_eq!(
        found(r.lookup(&Method::GET, None, &h, "/api/v1/jobs/latest")),
        3
    );
    match r.lookup(&Method::GET, None, &h, "/api/v1/jobs/42") {
        Routed::Found { route, params } => {
            assert_eq!(route, 2);
            assert_eq!(params.as_slice(), &["42"]);
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(
        found(r.lookup(&Method::DELETE, None, &h, "/api/v1/jobs/42")),
        1
    );
    assert_eq!(found(r.lookup(&Method::POST, None, &h, "/api/v1/other")), 4);
    assert_eq!(found(r.lookup(&Method::GET, None, &h, "/api/v1")), 1);
    assert_eq!(found(r.lookup(&Method::GET, None, &h, "/api/v2/x")), 0);
    assert_eq!(r.lookup(&Method::GET, None, &h, "/apix"), Routed::NotFound);
    assert_eq!(r.lookup(&Method::GET, None, &h, "/"), Routed::NotFound);
    assert_eq!(
        r.lookup(&Method::POST, None, &h, "/only-get"),
        Routed::MethodNotAllowed("GET, HEAD".into())
    );
}

#[test]
fn host_and_headers() {
    let mut a = m(None, Some("/"), &[]);
    a.host = Some("*.example.com".into());
    let mut b = m(None, Some("/"), &[]);
    b.host = Some("api.example.com".into());
    let mut c = m(None, Some("/"), &[]);
    c.headers.insert("x-version".into(), "2".into());
    let d = m(None, Some("/"), &[]);
    let r = Router::build(&[a, b, c, d]).unwrap();
    let mut h = HeaderMap::new();
    assert_eq!(
        found(r.lookup(&Method::GET, Some("API.example.com"), &h, "/x")),
        1
    );
    assert_eq!(
        found(r.lookup(&Method::GET, Some("www.example.com"), &h, "/x")),
        0
    );
    assert_eq!(
        found(r.lookup(&Method::GET, Some("example.com"), &h, "/x")),
        3
    );
    h.insert("x-version", HeaderValue::from_static("2"));
    assert_eq!(found(r.lookup(&Method::GET, Some("other"), &h, "/x")), 2);
}

#[test]
fn request_host_strips_port() {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("a.example:8080"));
    assert_eq!(request_host(&h, &"/".parse().unwrap()), Some("a.example"));
    h.insert("host", HeaderValue::from_static("[::1]:80"));
    assert_eq!(request_host(&h, &"/".parse().unwrap()), Some("[::1]"));
}

#[test]
fn rewrites() {
    use crate::config::RewriteConfig;
    let rw = Rewrite::compile(
        Some(&RewriteConfig {
            strip_prefix: Some("/api/v1".into()),
            ..Default::default()
        }),
        None,
    )
    .unwrap();
    assert_eq!(
        rw.apply("/api/v1/generate", &Params::new(), Some("a=1")),
        "/generate?a=1"
    );
    assert_eq!(rw.apply("/api/v1", &Params::new(), None), "/");
    let rw = Rewrite::compile(
        Some(&RewriteConfig {
            strip_prefix: Some("/api/v2".into()),
            add_prefix: Some("/v2/".into()),
            ..Default::default()
        }),
        None,
    )
    .unwrap();
    assert_eq!(rw.apply("/api/v2/x", &Params::new(), None), "/v2/x");
    let pat = PathPattern::parse("/api/v1/jobs/{id}").unwrap();
    let rw = Rewrite::compile(
        Some(&RewriteConfig {
            path: Some("/jobs/{id}/status".into()),
            ..Default::default()
        }),
        Some(&pat),
    )
    .unwrap();
    let mut p = Params::new();
    p.push("7");
    assert_eq!(rw.apply("/api/v1/jobs/7", &p, None), "/jobs/7/status");
}

#[test]
fn folded_lookup_compares_statics_without_case() {
    let routes = vec![
        m(None, Some("/api/v1"), &[]),           // 0: open
        m(None, Some("/api/v1/admin"), &[]),     // 1: guarded
        m(Some("/api/v1/Jobs/{id}"), None, &[]), // 2: upper case in the pattern
    ];
    let r = Router::build(&routes).unwrap();
    let h = HeaderMap::new();
    // the case-sensitive lookup puts /api/v1/Admin under the open route...
    assert_eq!(
        found(r.lookup(&Method::GET, None, &h, "/api/v1/Admin/users")),
        0
    );
    // ...a case-insensitive upstream would run the guarded one
    let fold = |p: &str| r.lookup_folded(&Method::GET, None, &h, &p.to_ascii_lowercase());
    assert_eq!(fold("/api/v1/Admin/users"), Some(1));
    assert_eq!(fold("/API/V1/other"), Some(0));
    assert_eq!(fold("/api/v1/JOBS/A1"), Some(2));
    assert_eq!(
        found(r.lookup(&Method::GET, None, &h, "/api/v1/Jobs/A1")),
        2
    );
    assert_eq!(fold("/elsewhere"), None);
}
