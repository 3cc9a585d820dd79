//! The analysis threads: a [`rayon`] pool of `ENRICHMENT_WORKERS` threads
//! (default: the number of CPUs) shared by every request. A document's local
//! analyses run on it concurrently with each other (`rayon::join`), off the
//! async runtime, so at most `ENRICHMENT_WORKERS` analyses run at once across
//! all requests; the others wait in the pool's queue.

use tokio::sync::oneshot;

/// Why the pool cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the analysis threads: {0}")]
pub struct WorkersError(#[from] rayon::ThreadPoolBuildError);

/// The pool stopped before answering (an analysis panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an analysis thread stopped before answering")]
pub struct WorkerLost;

/// The analysis threads; cheap to clone (clones share the threads).
#[derive(Debug, Clone)]
pub struct Workers {
    pool: std::sync::Arc<rayon::ThreadPool>,
}

impl Workers {
    /// Starts `threads` (at least 1) threads named `enrichment-N`.
    pub fn new(threads: usize) -> Result<Self, WorkersError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|n| format!("enrichment-{n}"))
            // a panicking analysis fails its request (WorkerLost), not the process
            .panic_handler(|_| tracing::error!(operation = "enrich", "an analysis panicked"))
            .build()?;
        Ok(Self {
            pool: std::sync::Arc::new(pool),
        })
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `job` on the pool (where it may `rayon::join` further) and waits
    /// for its result without blocking the async runtime.
    pub async fn run<T, F>(&self, job: F) -> Result<T, WorkerLost>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.pool.spawn(move || {
            if !tx.is_closed() {
                let _ = tx.send(job());
            }
        });
        rx.await.map_err(|_| WorkerLost)
    }
}

/// Default of `ENRICHMENT_WORKERS`: the number of CPUs the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_on_named_threads_and_joins() {
        let workers = Workers::new(2).expect("pool");
        assert_eq!(workers.threads(), 2);
        let (a, b) = workers
            .run(|| {
                rayon::join(
                    || std::thread::current().name().map(str::to_owned),
                    || 40 + 2,
                )
            })
            .await
            .expect("ran");
        assert!(a.is_some_and(|n| n.starts_with("enrichment-")));
        assert_eq!(b, 42);
    }
}
