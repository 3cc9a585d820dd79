//! Admission control: at most `capacity` generations run at once; the others
//! wait in a priority queue.
//!
//! A request takes a free slot at once only when nobody is waiting. Otherwise
//! it waits; each released slot goes to the oldest waiter of the most urgent
//! non-empty priority (`high`, then `normal`, then `low`; FIFO within one).
//! At most `max_waiting` requests wait in all; beyond, [`PriorityGate::acquire`]
//! answers [`QueueFull`] at once. A waiter that gives up (its request was
//! dropped) leaves the queue, and a slot granted to it just before it gave up
//! is handed on, so no slot is ever lost.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

pub use backend_api::generation::Priority;
use tokio::sync::oneshot;

use crate::metrics::QueueMetrics;

/// The queue already holds `max_waiting` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// The admission gate; cheap to clone (all clones share the slots).
#[derive(Clone)]
pub struct PriorityGate {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    metrics: QueueMetrics,
    max_waiting: usize,
}

struct State {
    available: usize,
    next_ticket: u64,
    waiting: [VecDeque<Waiter>; 3],
}

struct Waiter {
    ticket: u64,
    wake: oneshot::Sender<()>,
}

/// A running slot; released when dropped.
pub struct Permit {
    inner: Arc<Inner>,
}

impl PriorityGate {
    /// A gate with `capacity` slots (at least 1) and room for `max_waiting`
    /// waiters.
    pub fn new(capacity: usize, max_waiting: usize, metrics: QueueMetrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    available: capacity.max(1),
                    next_ticket: 0,
                    waiting: Default::default(),
                }),
                metrics,
                max_waiting,
            }),
        }
    }

    /// Waits for a slot; see the module docs for the order.
    pub async fn acquire(&self, priority: Priority) -> Result<Permit, QueueFull> {
        let arrived = Instant::now();
        let (ticket, woken) = {
            let mut state = self.inner.lock();
            let nobody_waits = state.waiting.iter().all(VecDeque::is_empty);
            if nobody_waits && state.available > 0 {
                state.available -= 1;
                drop(state);
                self.inner.metrics.wait.observe(0.0);
                return Ok(Permit {
                    inner: Arc::clone(&self.inner),
                });
            }
            let queued: usize = state.waiting.iter().map(VecDeque::len).sum();
            if queued >= self.inner.max_waiting {
                return Err(QueueFull);
            }
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            let (wake, woken) = oneshot::channel();
            state.waiting[priority.slot()].push_back(Waiter { ticket, wake });
            self.inner.publish_len(&state, priority);
            (ticket, woken)
        };

        let mut guard = WaitGuard {
            inner: &self.inner,
            priority,
            ticket,
            armed: true,
        };
        // The sender is only dropped after sending (or by this waiter's own
        // guard), so an error cannot happen while we wait.
        let _ = woken.await;
        guard.armed = false;
        self.inner
            .metrics
            .wait
            .observe(arrived.elapsed().as_secs_f64());
        Ok(Permit {
            inner: Arc::clone(&self.inner),
        })
    }

    /// Number of requests waiting with `priority`.
    pub fn waiting(&self, priority: Priority) -> usize {
        self.inner.lock().waiting[priority.slot()].len()
    }

    /// Number of free slots.
    pub fn available(&self) -> usize {
        self.inner.lock().available
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent: ignore poisoning.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish_len(&self, state: &State, priority: Priority) {
        let len = state.waiting[priority.slot()].len();
        self.metrics
            .size
            .with_label_values(&[priority.as_str()])
            .set(i64::try_from(len).unwrap_or(i64::MAX));
    }

    /// Hands a slot to the next live waiter, or frees it.
    fn release(&self, state: &mut State) {
        for priority in Priority::BY_URGENCY {
            while let Some(waiter) = state.waiting[priority.slot()].pop_front() {
                self.publish_len(state, priority);
                if waiter.wake.send(()).is_ok() {
                    return;
                }
            }
        }
        state.available += 1;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        self.inner.release(&mut state);
    }
}

/// Cleans up after a waiter whose `acquire` future is dropped while waiting.
struct WaitGuard<'a> {
    inner: &'a Inner,
    priority: Priority,
    ticket: u64,
    armed: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.inner.lock();
        let queue = &mut state.waiting[self.priority.slot()];
        if let Some(pos) = queue.iter().position(|w| w.ticket == self.ticket) {
            queue.remove(pos);
            self.inner.publish_len(&state, self.priority);
        } else {
            // Granted a slot it will never use: pass it on.
            self.inner.release(&mut state);
        }
    }
}

#[cfg(test)]
mod tests;
