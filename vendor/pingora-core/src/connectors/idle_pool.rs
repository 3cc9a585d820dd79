// Copyright 2026 Cloudflare, Inc. and api-gateway contributors
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//! A passive pool of idle upstream connections (api-gateway patch 0002).
//!
//! pingora's `ConnectionPool` spawns one task per released connection that watches it
//! while it is idle (a read with the idle timeout, a oneshot for "picked up", a `Notify`
//! for eviction) and hands it over through an `Arc<Mutex<Stream>>`. On the proxy's hot
//! path that is, per request: a task spawned and woken, two channels, a timer registered,
//! a mutex handed over between two tasks, and usually one more `recvfrom` (`EAGAIN`) by
//! the watcher.
//!
//! This pool keeps idle streams in a plain list per reuse key instead. A stream is
//! checked when it is taken (a non-blocking read: closed, or unexpected data, means it is
//! dropped and the next one is tried; a passed idle deadline too), and one sweeper task
//! per pool checks every idle stream once a second, so a connection the upstream closed
//! or one past its idle timeout is closed within a second even without traffic. The
//! capacity is enforced on release by closing the oldest idle stream.

use crate::protocols::Stream;
use log::debug;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often the sweeper looks at idle streams.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

struct Idle {
    stream: Stream,
    since: Instant,
    deadline: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    /// Idle streams per reuse key, oldest first.
    by_key: HashMap<u64, VecDeque<Idle>>,
    total: usize,
    sweeper: bool,
}

/// Called with how long a stream was idle when the pool closes it for capacity.
pub(crate) type EvictCallback = Arc<dyn Fn(Duration) + Send + Sync>;

pub(crate) struct IdlePool {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl IdlePool {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(IdlePool {
            inner: Mutex::new(Inner::default()),
            capacity,
        })
    }

    /// The most recently released idle stream of `key` that is still open and usable;
    /// `usable` is checked outside the lock, and a stream that fails it is closed.
    pub(crate) fn take(
        &self,
        key: u64,
        mut usable: impl FnMut(&mut Stream) -> bool,
    ) -> Option<Stream> {
        loop {
            let idle = {
                let mut inner = self.inner.lock();
                let list = inner.by_key.get_mut(&key)?;
                let idle = list.pop_back()?;
                if list.is_empty() {
                    inner.by_key.remove(&key);
                }
                inner.total -= 1;
                idle
            };
            if idle.deadline.is_some_and(|d| d <= Instant::now()) {
                debug!("idle connection past its idle timeout, closed");
                continue;
            }
            let mut stream = idle.stream;
            if usable(&mut stream) {
                return Some(stream);
            }
        }
    }

    /// Keeps `stream` for reuse under `key`; closes the oldest idle stream when full.
    pub(crate) fn put(
        self: &Arc<Self>,
        key: u64,
        stream: Stream,
        idle_timeout: Option<Duration>,
        on_evict: Option<&EvictCallback>,
    ) {
        if self.capacity == 0 {
            return;
        }
        let now = Instant::now();
        let idle = Idle {
            stream,
            since: now,
            deadline: idle_timeout.map(|t| now + t),
        };
        let (evicted, start_sweeper) = {
            let mut inner = self.inner.lock();
            let evicted = if inner.total >= self.capacity {
                inner.pop_oldest()
            } else {
                None
            };
            inner.by_key.entry(key).or_default().push_back(idle);
            inner.total += 1;
            let start = !inner.sweeper;
            inner.sweeper = true;
            (evicted, start)
        };
        if let Some(old) = evicted {
            debug!("idle connection pool full, closing the oldest");
            if let Some(cb) = on_evict {
                cb(old.since.elapsed());
            }
        }
        if start_sweeper && !self.spawn_sweeper() {
            self.inner.lock().sweeper = false;
        }
    }

    /// Starts the sweeper on the current runtime; false when there is none.
    fn spawn_sweeper(self: &Arc<Self>) -> bool {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let pool: Weak<Self> = Arc::downgrade(self);
        rt.spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(pool) = pool.upgrade() else {
                    return;
                };
                pool.sweep();
            }
        });
        true
    }

    /// Closes idle streams past their deadline, closed by the peer, or with unexpected data.
    fn sweep(&self) {
        let now = Instant::now();
        let mut closed = Vec::new();
        {
            let mut inner = self.inner.lock();
            let mut removed = 0;
            inner.by_key.retain(|_, list| {
                let before = list.len();
                let mut kept = VecDeque::with_capacity(before);
                for mut idle in list.drain(..) {
                    let expired = idle.deadline.is_some_and(|d| d <= now);
                    if expired || !super::test_reusable_stream_quiet(&mut idle.stream) {
                        closed.push(idle.stream);
                    } else {
                        kept.push_back(idle);
                    }
                }
                removed += before - kept.len();
                *list = kept;
                !list.is_empty()
            });
            inner.total -= removed;
        }
        if !closed.is_empty() {
            debug!("closing {} idle upstream connections", closed.len());
        }
        // dropped (closed) outside the lock
    }
}

impl Inner {
    /// Removes the stream idle the longest, across keys.
    fn pop_oldest(&mut self) -> Option<Idle> {
        let key = *self
            .by_key
            .iter()
            .filter_map(|(k, l)| l.front().map(|i| (k, i.since)))
            .min_by_key(|(_, since)| *since)?
            .0;
        let list = self.by_key.get_mut(&key)?;
        let idle = list.pop_front();
        if list.is_empty() {
            self.by_key.remove(&key);
        }
        if idle.is_some() {
            self.total -= 1;
        }
        idle
    }
}
