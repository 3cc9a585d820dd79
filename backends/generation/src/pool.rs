//! The generation threads: `WORKER_PROCESSES` dedicated OS threads that run
//! the CPU-bound generations, off the async runtime (whose threads keep
//! serving HTTP while texts are generated).
//!
//! Jobs come from requests already admitted by the [`crate::queue`] gate
//! (at most `MAX_CONCURRENT_REQUESTS` of them), so the pool's own queue is
//! bounded by that gate. A free thread takes the oldest `high` job first,
//! then `normal`, then `low` (one channel per priority, read in that order),
//! so the priority order also holds among admitted requests when there are
//! more of them than threads. A job whose caller went away before a thread
//! took it is skipped. The threads stop when the pool is dropped.

use crossbeam_channel::{select_biased, unbounded, Receiver, Sender};
use tokio::sync::oneshot;

use crate::queue::Priority;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool has stopped (a thread panicked or the pool is being dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the generation threads have stopped")]
pub struct PoolStopped;

/// Why the pool cannot start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start generation thread: {0}")]
pub struct PoolError(#[from] std::io::Error);

/// The generation threads; dropping it stops them once their current job ends.
pub struct GenerationPool {
    senders: [Sender<Job>; 3],
    threads: usize,
}

impl GenerationPool {
    /// Starts `threads` (at least 1) named `generation-N` threads.
    pub fn new(threads: usize) -> Result<Self, PoolError> {
        let threads = threads.max(1);
        let (high, high_rx) = unbounded::<Job>();
        let (normal, normal_rx) = unbounded::<Job>();
        let (low, low_rx) = unbounded::<Job>();
        for n in 0..threads {
            let queues = [high_rx.clone(), normal_rx.clone(), low_rx.clone()];
            std::thread::Builder::new()
                .name(format!("generation-{n}"))
                .spawn(move || work(&queues))?;
        }
        Ok(Self {
            senders: [high, normal, low],
            threads,
        })
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job` on a generation thread and waits for its result.
    pub async fn run<T, F>(&self, priority: Priority, job: F) -> Result<T, PoolStopped>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let boxed: Job = Box::new(move || {
            if tx.is_closed() {
                return; // the caller went away: skip the work
            }
            let _ = tx.send(job());
        });
        self.senders[priority.slot()]
            .send(boxed)
            .map_err(|_| PoolStopped)?;
        rx.await.map_err(|_| PoolStopped)
    }
}

/// A thread's loop: the most urgent job first; ends when the pool is dropped.
fn work(queues: &[Receiver<Job>; 3]) {
    let [high, normal, low] = queues;
    loop {
        let job = select_biased! {
            recv(high) -> job => job,
            recv(normal) -> job => job,
            recv(low) -> job => job,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return, // disconnected: the pool was dropped
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier, Mutex};

    use super::*;

    #[tokio::test]
    async fn runs_jobs_off_the_runtime() {
        let pool = GenerationPool::new(2).expect("pool");
        let name = pool
            .run(Priority::Normal, || {
                std::thread::current().name().map(str::to_owned)
            })
            .await
            .expect("ran");
        assert!(name.is_some_and(|n| n.starts_with("generation-")));
    }

    #[tokio::test]
    async fn more_urgent_jobs_run_first() {
        let pool = Arc::new(GenerationPool::new(1).expect("pool"));
        let order = Arc::new(Mutex::new(Vec::new()));
        // Hold the only thread until every job is queued.
        let gate = Arc::new(Barrier::new(2));
        let (started, running) = std::sync::mpsc::channel();
        let blocker = {
            let (pool, gate) = (Arc::clone(&pool), Arc::clone(&gate));
            tokio::spawn(async move {
                pool.run(Priority::Low, move || {
                    let _ = started.send(());
                    gate.wait();
                })
                .await
            })
        };
        while running.try_recv().is_err() {
            tokio::task::yield_now().await;
        }
        let mut handles = Vec::new();
        for (priority, label) in [
            (Priority::Low, "low"),
            (Priority::Normal, "normal"),
            (Priority::High, "high"),
        ] {
            let (task_pool, order) = (Arc::clone(&pool), Arc::clone(&order));
            handles.push(tokio::spawn(async move {
                task_pool
                    .run(priority, move || order.lock().expect("lock").push(label))
                    .await
            }));
            // let the job reach its channel before the next one
            while pool.senders.iter().map(Sender::len).sum::<usize>() < handles.len() {
                tokio::task::yield_now().await;
            }
        }
        gate.wait();
        blocker.await.expect("task").expect("ran");
        for h in handles {
            h.await.expect("task").expect("ran");
        }
        assert_eq!(*order.lock().expect("lock"), ["high", "normal", "low"]);
    }
}
