//! A real `redis-server` (Debian's package) on a free loopback port, no persistence;
//! stopped on drop. `stop` and `restart` (same port, empty data) simulate an outage.
//! [`Redis::start_tls`] starts one that speaks only TLS (`--port 0 --tls-port`), with
//! a CA, a server and a client certificate made here ([`RedisPki`]); it requires the
//! client certificate (`--tls-auth-clients yes`).
//!
//! The one Redis launcher of the tests: the gateway's (through `tests/common`) and
//! api-enrichment's `tests/redis_cache.rs`, which mounts this file with `#[path]` (a
//! test of another package cannot use `tests/common/mod.rs`, which needs the gateway's
//! binary), so it depends on nothing else of `tests/common`.
//!
//! Without `redis-server` the test fails (`scripts/test.sh` installs it), unless
//! `SKIP_REDIS_TESTS=1` says to skip it: then [`Redis::start`] answers `None` with a
//! notice, and the test returns. A missing Redis must not pass as a green Redis test.
//!
//! The port is picked free then released, so another test may take it before
//! `redis-server` binds it: a server that exits with "Address already in use" is
//! started again on a fresh port (3 tries in all).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set to `1`, a missing `redis-server` skips the test instead of failing it.
pub const SKIP_VAR: &str = "SKIP_REDIS_TESTS";

/// Starts on a fresh port after a lost port race, at most this many times in all.
const TRIES: usize = 3;

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    /// The certificates of a TLS-only server.
    pub tls: Option<RedisPki>,
    /// `redis-server.log`, read when it exits during start-up.
    logs: tempfile::TempDir,
}

/// Why `redis-server` did not come up.
enum Failure {
    /// Not installed (the spawn's `NotFound`).
    Missing(std::io::Error),
    /// Exited because the port was taken meanwhile; its log.
    PortTaken(String),
}

/// PEM files of a TLS Redis: the CA that signs the server's and the client's
/// certificates, and another CA that signs nothing here (a wrong `REDIS_CA_FILE`).
pub struct RedisPki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl RedisPki {
    fn new() -> RedisPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ca_of = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().unwrap();
            (p.self_signed(&key).unwrap(), key)
        };
        let (ca, ca_key) = ca_of("redis test CA");
        let (other, _) = ca_of("another CA");
        let leaf = |names: Vec<String>, cn: &str| {
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().unwrap();
            (p.signed_by(&key, &ca, &ca_key).unwrap(), key)
        };
        let (server, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()], "redis");
        let (client, client_key) = leaf(vec![], "gateway");
        RedisPki {
            ca: write("ca.pem", ca.pem()),
            other_ca: write("other-ca.pem", other.pem()),
            server_cert: write("server.crt", server.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.crt", client.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            dir,
        }
    }

    /// `REDIS_CA_FILE`, `REDIS_CERT_FILE` and `REDIS_KEY_FILE` for a client of this CA.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let s = |p: &PathBuf| p.display().to_string();
        vec![
            ("REDIS_CA_FILE", s(&self.ca)),
            ("REDIS_CERT_FILE", s(&self.client_cert)),
            ("REDIS_KEY_FILE", s(&self.client_key)),
        ]
    }
}

impl Redis {
    /// A plain server on a free port; `None` only when `redis-server` is missing and
    /// `SKIP_REDIS_TESTS=1` (else a missing one fails the test).
    pub fn start() -> Option<Redis> {
        Self::launch(None)
    }

    /// A server that speaks TLS only, on a free port, with certificates made here;
    /// `None` as for [`Redis::start`].
    pub fn start_tls() -> Option<Redis> {
        Self::launch(Some(RedisPki::new()))
    }

    fn launch(tls: Option<RedisPki>) -> Option<Redis> {
        let mut r = Redis {
            port: free_port(),
            child: None,
            tls,
            logs: tempfile::tempdir().unwrap(),
        };
        for attempt in 1..=TRIES {
            match r.spawn() {
                Ok(()) => return Some(r),
                Err(Failure::Missing(e)) => {
                    let hint = format!(
                        "redis-server cannot start ({e}): the Debian package redis-server \
                         (scripts/test.sh installs it)"
                    );
                    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
                        eprintln!("NOTICE: {hint}; Redis test skipped ({SKIP_VAR}=1)");
                        return None;
                    }
                    panic!("{hint}; set {SKIP_VAR}=1 to skip the Redis tests");
                }
                Err(Failure::PortTaken(log)) if attempt < TRIES => {
                    eprintln!(
                        "NOTICE: port {} was taken before redis-server bound it; another port\n{log}",
                        r.port
                    );
                    r.port = free_port();
                }
                Err(Failure::PortTaken(log)) => {
                    panic!("redis-server lost the port race {TRIES} times; last log:\n{log}")
                }
            }
        }
        unreachable!("the last try returns or panics")
    }

    /// `redis://127.0.0.1:<port>/`, or `rediss://localhost:<port>/` for a TLS server.
    pub fn url(&self) -> String {
        if self.tls.is_some() {
            format!("rediss://localhost:{}/", self.port)
        } else {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    fn spawn(&mut self) -> Result<(), Failure> {
        let log = self.logs.path().join("redis-server.log");
        let _ = std::fs::remove_file(&log);
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(t) => cmd
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&t.server_cert)
                .arg("--tls-key-file")
                .arg(&t.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&t.ca)
                .args(["--tls-auth-clients", "yes"]),
        };
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Failure::Missing(e)),
            Err(e) => panic!("redis-server cannot start: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Address already in use") {
                    return Err(Failure::PortTaken(text));
                }
                panic!(
                    "redis-server exited ({status}) on port {}; log:\n{text}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    /// Whether the server answers `PING`.
    pub fn ping(&self) -> bool {
        if self.tls.is_some() {
            return self.command("PING").starts_with("PONG");
        }
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    /// Sends one inline command (`PTTL key`) and returns the raw reply (for a TLS
    /// server, through `redis-cli --tls`: the reply as redis-cli prints it).
    pub fn command(&self, line: &str) -> String {
        if let Some(t) = &self.tls {
            let out = Command::new("redis-cli")
                .args(["--tls", "-h", "localhost", "-p", &self.port.to_string()])
                .arg("--cacert")
                .arg(&t.ca)
                .arg("--cert")
                .arg(&t.client_cert)
                .arg("--key")
                .arg(&t.client_key)
                .args(line.split_whitespace())
                .stdin(Stdio::null())
                .output()
                .expect("redis-cli (Debian package redis-tools)");
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: connections stay open but
    /// nothing answers, like a hung or blackholed Redis.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success());
    }

    /// Kills the server (like a crash); its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty (a port taken meanwhile fails the test:
    /// the clients are configured with this one).
    pub fn restart(&mut self) {
        self.stop();
        match self.spawn() {
            Ok(()) => {}
            Err(Failure::Missing(e)) => panic!("redis-server cannot start again: {e}"),
            Err(Failure::PortTaken(log)) => {
                panic!(
                    "port {} was taken while Redis was down; log:\n{log}",
                    self.port
                )
            }
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
