//! An echo upstream that can be killed and restarted on its port, like a crashed
//! process.

use super::echo_app;
use std::net::SocketAddr;
use std::time::Duration;

/// An echo upstream on its own runtime, so that `kill` really closes every socket
/// (listener and open keep-alive connections), like a crashed process.
pub struct KillableEcho {
    pub addr: SocketAddr,
    name: String,
    rt: Option<tokio::runtime::Runtime>,
}

impl KillableEcho {
    pub fn start(name: &str, port: u16) -> KillableEcho {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let std_listener = loop {
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let app = echo_app(name, Duration::ZERO);
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let _ = axum::serve(listener, app).await;
        });
        KillableEcho {
            addr,
            name: name.to_string(),
            rt: Some(rt),
        }
    }

    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        *self = KillableEcho::start(&self.name.clone(), self.addr.port());
    }
}

impl Drop for KillableEcho {
    fn drop(&mut self) {
        self.kill();
    }
}
