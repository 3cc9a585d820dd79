//! A real `redis-server` (Debian's package) on a free loopback port, no persistence;
//! stopped on drop. `stop` and `restart` (same port, empty data) simulate an outage.
//! [`Redis::start_tls`] starts one that speaks only TLS (`--port 0 --tls-port`), with
//! a CA, a server and a client certificate made here ([`RedisPki`]); it requires the
//! client certificate (`--tls-auth-clients yes`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    /// The certificates of a TLS-only server.
    pub tls: Option<RedisPki>,
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
    pub fn start() -> Redis {
        let mut r = Redis {
            port: super::free_port(),
            child: None,
            tls: None,
        };
        r.spawn();
        r
    }

    /// A server that speaks TLS only, on a free port, with certificates made here.
    pub fn start_tls() -> Redis {
        let mut r = Redis {
            port: super::free_port(),
            child: None,
            tls: Some(RedisPki::new()),
        };
        r.spawn();
        r
    }

    /// `redis://127.0.0.1:<port>/`, or `rediss://localhost:<port>/` for a TLS server.
    pub fn url(&self) -> String {
        if self.tls.is_some() {
            format!("rediss://localhost:{}/", self.port)
        } else {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    fn spawn(&mut self) {
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
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server (Debian package redis-server; scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
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

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
