//! A steady load for "under load" tests: client tasks that `GET` one URL in a loop until
//! stopped, counting the answers accepted (200 unless said otherwise) and the failures
//! (another answer or a transport error, each printed to stderr).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::task::JoinHandle;

/// Whether an answer counts as served.
type Accept = Arc<dyn Fn(&reqwest::Response) -> bool + Send + Sync>;

pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

/// What a load did: answers accepted, requests failed.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
}

impl Load {
    /// `clients` tasks, each with its own `reqwest::Client`, sending `GET url` until
    /// [`Load::stop`]; a 200 is served, anything else failed.
    pub fn start(clients: usize, url: String) -> Load {
        Self::start_with(
            clients,
            url,
            |_| reqwest::Client::new(),
            |r| r.status() == 200,
        )
    }

    /// As [`Load::start`], with task `i`'s client made by `client(i)` and an answer
    /// counted as served when `accept` says so.
    pub fn start_with(
        clients: usize,
        url: String,
        client: impl Fn(usize) -> reqwest::Client,
        accept: impl Fn(&reqwest::Response) -> bool + Send + Sync + 'static,
    ) -> Load {
        let accept: Accept = Arc::new(accept);
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let tasks = (0..clients)
            .map(|i| {
                let (c, url, accept) = (client(i), url.clone(), accept.clone());
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match c.get(&url).send().await {
                            Ok(r) if accept(&r) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                let status = r.status();
                                let body = r.text().await.unwrap_or_default();
                                eprintln!("failed: {status} {body}");
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                eprintln!("failed: {e:?}");
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    /// Answers served so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the clients, waits for their last request, and counts.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        Tally {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}
