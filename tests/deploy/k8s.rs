//! The Kubernetes manifests: rendered with `kubectl kustomize` (or read file by file
//! when kubectl is missing), validated with `kubernetes-validate --strict`, then checked
//! for what the seed's Deployment promises an operator.

use super::{find_tool, root, run_ok, tool, KUBERNETES_VALIDATE};
use serde::Deserialize;
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `a.b.0.c` in a YAML value.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(v, |cur, key| match key.parse::<usize>() {
            Ok(i) if cur.is_sequence() => cur.get(i).unwrap_or(&Value::Null),
            _ => cur.get(key).unwrap_or(&Value::Null),
        })
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).as_str().unwrap_or("")
}

fn seq<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    at(v, path)
        .as_sequence()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

fn docs_of(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file a kustomization names exists; in the base, every manifest is listed.
fn check_kustomization_files(dir: &Path) -> Value {
    let k: Value = serde_yaml::from_str(&read(&dir.join("kustomization.yaml"))).unwrap();
    let mut named: Vec<PathBuf> = Vec::new();
    for r in seq(&k, "resources") {
        let p = dir.join(r.as_str().unwrap());
        assert!(
            p.is_file() || p.join("kustomization.yaml").is_file(),
            "{}: resource {} does not exist",
            dir.display(),
            p.display()
        );
        named.push(p);
    }
    for p in seq(&k, "patches") {
        let f = dir.join(s(p, "path"));
        assert!(f.is_file(), "patch {} does not exist", f.display());
        named.push(f);
    }
    for g in seq(&k, "configMapGenerator") {
        for f in seq(g, "files") {
            let f = dir.join(f.as_str().unwrap());
            assert!(f.is_file(), "generator file {} does not exist", f.display());
            named.push(f);
        }
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let yaml = p.extension().is_some_and(|x| x == "yaml");
        if yaml && !p.ends_with("kustomization.yaml") {
            assert!(
                named.contains(&p),
                "{} is not listed in its kustomization.yaml",
                p.display()
            );
        }
    }
    k
}

/// Validates `dir` against the Kubernetes schemas and returns its objects: the
/// kustomize render when kubectl exists, else the listed files one by one.
pub fn validated_render(dir: &Path) -> Vec<Value> {
    let validate = tool("kubernetes-validate", KUBERNETES_VALIDATE);
    let k = check_kustomization_files(dir);
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = match find_tool("kubectl") {
        Some(kubectl) => {
            let out = run_ok(Command::new(kubectl).arg("kustomize").arg(dir));
            let f = tmp.path().join("rendered.yaml");
            std::fs::write(&f, &out.stdout).unwrap();
            println!("{}: rendered with kubectl kustomize", dir.display());
            vec![f]
        }
        None => {
            println!(
                "{}: kubectl not installed; validating each listed file",
                dir.display()
            );
            seq(&k, "resources")
                .iter()
                .map(|r| dir.join(r.as_str().unwrap()))
                .filter(|p| p.is_file())
                .collect()
        }
    };
    if files.is_empty() {
        // an overlay without kubectl: only its base can be validated
        return validated_render(&dir.join("../../base"));
    }
    let out = run_ok(
        Command::new(validate)
            .args(["--strict", "--no-warn"])
            .args(&files),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let passed = report.lines().filter(|l| l.contains(" passed ")).count();
    let docs: Vec<Value> = files.iter().flat_map(|f| docs_of(&read(f))).collect();
    assert_eq!(
        passed,
        docs.len(),
        "every object must pass kubernetes-validate:\n{report}"
    );
    println!(
        "kubernetes-validate --strict: {passed} objects passed ({})",
        dir.display()
    );
    docs
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| s(d, "kind") == kind && s(d, "metadata.name") == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn env_of<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    seq(c, "env").into_iter().find(|e| s(e, "name") == name)
}

fn dur(routes: &Value, key: &str, default: u64) -> Duration {
    at(routes, &format!("server.{key}"))
        .as_str()
        .map(|d| humantime::parse_duration(d).unwrap())
        .unwrap_or(Duration::from_secs(default))
}

/// The seed's HPA behaviour block.
const SEED_BEHAVIOR: &str = "
scaleDown:
  stabilizationWindowSeconds: 300
  policies: [{ type: Percent, value: 10, periodSeconds: 60 }]
scaleUp:
  stabilizationWindowSeconds: 60
  policies: [{ type: Percent, value: 50, periodSeconds: 30 }]
";

fn check_deployment(d: &Value) {
    let name = s(d, "metadata.name");
    let pod = at(d, "spec.template.spec");
    assert_eq!(
        at(pod, "securityContext.runAsNonRoot").as_bool(),
        Some(true),
        "{name}"
    );
    assert_eq!(
        at(pod, "securityContext.runAsUser").as_u64(),
        Some(1000),
        "{name}"
    );
    assert_eq!(
        s(pod, "securityContext.seccompProfile.type"),
        "RuntimeDefault",
        "{name}"
    );
    let c = at(pod, "containers.0");
    assert_eq!(s(c, "livenessProbe.httpGet.path"), "/health", "{name}");
    assert_eq!(s(c, "readinessProbe.httpGet.path"), "/ready", "{name}");
    for k in [
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ] {
        assert!(
            !at(c, &format!("resources.{k}")).is_null(),
            "{name}: no {k}"
        );
    }
    let sc = at(c, "securityContext");
    assert_eq!(
        at(sc, "readOnlyRootFilesystem").as_bool(),
        Some(true),
        "{name}"
    );
    assert_eq!(
        at(sc, "allowPrivilegeEscalation").as_bool(),
        Some(false),
        "{name}"
    );
    assert_eq!(at(sc, "runAsNonRoot").as_bool(), Some(true), "{name}");
    assert!(
        seq(sc, "capabilities.drop")
            .iter()
            .any(|v| v.as_str() == Some("ALL")),
        "{name}"
    );
    assert_eq!(
        s(c, "command.0"),
        format!("/usr/local/bin/{name}"),
        "the command picks the service"
    );
    let tmp = seq(c, "volumeMounts")
        .into_iter()
        .any(|m| s(m, "mountPath") == "/tmp");
    assert!(
        tmp,
        "{name}: read-only root filesystem needs a writable /tmp"
    );
    let labels = at(d, "spec.template.metadata.labels");
    assert_eq!(s(labels, "app"), name);
    assert_eq!(
        at(d, "spec.selector.matchLabels"),
        &serde_yaml::from_str::<Value>(&format!("{{app: {name}}}")).unwrap()
    );
}

/// What the base promises, on the rendered objects.
pub fn check_base(docs: &[Value]) {
    assert!(
        docs.iter().all(|d| s(d, "kind") != "Secret"),
        "a Secret with values is in the manifests"
    );
    for name in ["api-gateway", "api-generation", "api-enrichment"] {
        check_deployment(find(docs, "Deployment", name));
        let svc = find(docs, "Service", name);
        assert_eq!(s(svc, "spec.selector.app"), name);
        find(docs, "ServiceAccount", name);
        let pdb = find(docs, "PodDisruptionBudget", name);
        assert_eq!(s(pdb, "spec.selector.matchLabels.app"), name);
        let hpa = find(docs, "HorizontalPodAutoscaler", &format!("{name}-hpa"));
        assert_eq!(s(hpa, "apiVersion"), "autoscaling/v2");
        assert_eq!(s(hpa, "spec.scaleTargetRef.name"), name);
        let seed: Value = serde_yaml::from_str(SEED_BEHAVIOR).unwrap();
        assert_eq!(
            at(hpa, "spec.behavior"),
            &seed,
            "{name}: not the seed's HPA behaviour"
        );
    }
    for name in ["api-generation-headless", "api-enrichment-headless"] {
        assert_eq!(s(find(docs, "Service", name), "spec.clusterIP"), "None");
    }
    find(docs, "Role", "api-gateway-role");
    let rb = find(docs, "RoleBinding", "api-gateway-binding");
    assert_eq!(s(rb, "subjects.0.name"), "api-gateway");
    assert_eq!(
        s(
            find(docs, "Ingress", "api-gateway"),
            "spec.rules.0.http.paths.0.backend.service.name"
        ),
        "api-gateway"
    );
    let np = find(docs, "NetworkPolicy", "api-gateway");
    assert!(
        seq(np, "spec.egress").iter().any(|e| seq(e, "ports")
            .iter()
            .any(|p| at(p, "port").as_u64() == Some(53))),
        "DNS egress"
    );

    // the gateway: seed env names, secrets by name, ConfigMap as a directory, drain time
    let gw = find(docs, "Deployment", "api-gateway");
    let c = at(gw, "spec.template.spec.containers.0");
    for e in ["PORT", "METRICS_PORT", "LOG_LEVEL", "ROUTES_FILE"] {
        assert!(env_of(c, e).is_some(), "no {e}");
    }
    for secret in ["JWT_SECRET", "ADMIN_TOKEN", "WEBHOOK_SECRET"] {
        let e = env_of(c, secret).unwrap_or_else(|| panic!("no {secret}"));
        assert!(at(e, "value").is_null(), "{secret} has an inline value");
        assert!(
            !s(e, "valueFrom.secretKeyRef.name").is_empty(),
            "{secret} is not from a Secret"
        );
    }
    let vol = seq(gw, "spec.template.spec.volumes")
        .into_iter()
        .find(|v| s(v, "configMap.name") == "api-gateway-routes")
        .expect("the routes ConfigMap is not mounted");
    let mount = seq(c, "volumeMounts")
        .into_iter()
        .find(|m| s(m, "name") == s(vol, "name"))
        .unwrap();
    assert!(
        at(mount, "subPath").is_null(),
        "a subPath mount never sees ConfigMap updates"
    );
    let routes_file = s(env_of(c, "ROUTES_FILE").unwrap(), "value");
    assert_eq!(
        Path::new(routes_file).parent().unwrap(),
        Path::new(s(mount, "mountPath"))
    );
    let port = at(gw, "spec.template.metadata.annotations").get("prometheus.io/port");
    assert_eq!(
        port.and_then(|v| v.as_str()),
        Some("8081"),
        "Prometheus must scrape METRICS_PORT"
    );
    let file_text = read(&root().join("deploy/k8s/base/routes.yaml"));
    if let Some(cm) = docs
        .iter()
        .find(|d| s(d, "kind") == "ConfigMap" && s(d, "metadata.name") == "api-gateway-routes")
    {
        let data = at(cm, "data")
            .get("routes.yaml")
            .and_then(|v| v.as_str())
            .unwrap();
        assert_eq!(
            data, file_text,
            "the ConfigMap is not deploy/k8s/base/routes.yaml"
        );
    }
    let routes: Value = serde_yaml::from_str(&file_text).unwrap();
    let drain = dur(&routes, "shutdown_delay", 5) + 2 * dur(&routes, "grace_period", 10);
    let tgps = at(gw, "spec.template.spec.terminationGracePeriodSeconds")
        .as_u64()
        .unwrap();
    assert!(
        Duration::from_secs(tgps) > drain,
        "terminationGracePeriodSeconds {tgps} must exceed shutdown_delay + 2 x grace_period = {drain:?}"
    );
    println!("drain: shutdown_delay + 2 x grace_period = {drain:?} < terminationGracePeriodSeconds {tgps}s");
}

/// The overlay: the base, plus Redis and Kafka switched on.
pub fn check_overlay(docs: &[Value]) {
    check_base(docs);
    let gw = at(
        find(docs, "Deployment", "api-gateway"),
        "spec.template.spec.containers.0",
    );
    for e in ["REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"] {
        assert!(!s(
            env_of(gw, e).unwrap_or_else(|| panic!("gateway: no {e}")),
            "value"
        )
        .is_empty());
    }
    for np in docs.iter().filter(|d| s(d, "kind") == "NetworkPolicy") {
        let ports: Vec<u64> = seq(np, "spec.egress")
            .iter()
            .flat_map(|e| seq(e, "ports"))
            .filter_map(|p| at(p, "port").as_u64())
            .collect();
        assert!(
            ports.contains(&6379) && ports.contains(&9092),
            "{}: egress {ports:?}",
            s(np, "metadata.name")
        );
    }
}
