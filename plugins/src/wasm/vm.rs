//! A filter's instances: one per worker thread (slots, each behind a mutex; a thread
//! takes its own slot, so the lock is uncontended), each holding many request
//! contexts as an Envoy worker's VM does. A request keeps the slot it started on.
//! Every call is bounded by `max_time` (epoch deadline) and `max_memory` (store
//! limits); a call that traps, times out or overruns memory is a [`Fault`]: it is
//! counted, logged, and the instance is replaced by a fresh one (its contexts are
//! gone: their requests see the filter fail).

use super::abi::BufferType;
use super::engine::Clock;
use super::host::shared_data::QueueOwner;
use super::host::{CallAnswer, CallCx, FilterInfo, Host, PendingCall};
use super::instance::{self, Callbacks, Inst, Recipe, StartError, ROOT};
use super::request::ReqProps;
use crate::Reply;
use bytes::Bytes;
use pingora_http::{RequestHeader, ResponseHeader};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use wasmtime::{InstancePre, Module, Store, Trap};

/// A call into the filter that failed: `reason` is the failure counter's label.
#[derive(Debug, Clone)]
pub struct Fault {
    /// `trap`, `timeout` or `memory`.
    pub reason: &'static str,
    pub message: String,
}

impl Fault {
    #[cold]
    #[inline(never)]
    pub fn of(e: &wasmtime::Error) -> Fault {
        let message = format!("{e:#}");
        let reason = if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            "timeout"
        } else if message.contains("growing memory") || message.contains("memory growth") {
            "memory"
        } else {
            "trap"
        };
        Fault { reason, message }
    }
}

/// One instance and its request contexts.
pub struct Slot {
    pub inst: Option<Inst>,
    /// Bumped when the instance is replaced: contexts of an older one are gone.
    pub generation: u64,
    next_ctx: i32,
}

/// What a call did besides its result.
#[derive(Default)]
pub struct Effects {
    pub local: Option<Box<Reply>>,
    pub calls: Vec<PendingCall>,
    pub resumed: bool,
    /// gRPC calls cancelled while out (tokens), to stop.
    pub cancels: Vec<u32>,
}

/// The request parts a call borrows (lent to the store for the call).
#[derive(Default)]
pub struct Lend<'a> {
    /// The request head, writable (the request phase: what goes upstream).
    pub req: Option<&'a mut RequestHeader>,
    /// The request head, read-only (the body phases: it went upstream already).
    pub req_shared: Option<&'a RequestHeader>,
    pub resp: Option<&'a mut ResponseHeader>,
    pub body: Option<(BufferType, &'a mut Bytes)>,
    pub props: Option<&'a mut ReqProps>,
    pub answer: Option<Box<CallAnswer>>,
}

/// The request parts an HTTP call's callback sees ([`Vm::settle`]): those of the
/// phase that made the call (the writable head in the request headers phase; the
/// read-only head and the held request body in the request body phase; the writable
/// response head in the response headers phase).
#[derive(Default)]
pub struct Parts<'a> {
    pub req: Option<&'a mut RequestHeader>,
    /// The response head, writable (the response headers phase, held for the calls).
    pub resp: Option<&'a mut ResponseHeader>,
    pub req_shared: Option<&'a RequestHeader>,
    pub body: Option<(BufferType, &'a mut Bytes)>,
}

/// A context made by [`Vm::open`]: the instance's generation, the context's id, and
/// the action of its request headers callback and what it did.
pub type Opened = (u64, i32, Option<(i32, Effects)>);

/// What bounds a filter's calls.
pub struct Limits {
    pub max_time: std::time::Duration,
    pub max_memory: usize,
    /// `fail: open`: a fault skips the filter instead of answering 503.
    pub fail_open: bool,
}

/// A filter's instances.
pub struct Vm {
    pub filter: Arc<FilterInfo>,
    pre: InstancePre<Host>,
    glue: Module,
    slots: Box<[Mutex<Slot>]>,
    /// Each call's bound.
    max_time: std::time::Duration,
    clock: Arc<Clock>,
    max_memory: usize,
    pub fail_open: bool,
    /// Calls sent in the background ([`Vm::detach`]) not answered yet.
    pub(super) detached: AtomicUsize,
    pub(super) me: Weak<Vm>,
}

thread_local! {
    /// This thread's slot hint (threads take slots in turn).
    static HINT: Cell<Option<usize>> = const { Cell::new(None) };
}
static NEXT_HINT: AtomicUsize = AtomicUsize::new(0);

impl Vm {
    /// A filter with up to `slots` instances. The first is started now (a filter
    /// that fails to start refuses the table); the others when a thread first needs
    /// one, so a route's filter holds as many instances as threads serve it.
    pub fn new(
        filter: Arc<FilterInfo>,
        pre: InstancePre<Host>,
        glue: Module,
        slots: usize,
        limits: Limits,
        clock: Arc<Clock>,
    ) -> Result<Arc<Vm>, StartError> {
        let Limits {
            max_time,
            max_memory,
            fail_open,
        } = limits;
        clock.fit(max_time);
        let vm = Arc::new_cyclic(|me| Vm {
            filter,
            pre,
            glue,
            slots: (0..slots.max(1))
                .map(|_| {
                    Mutex::new(Slot {
                        inst: None,
                        generation: 0,
                        next_ctx: ROOT + 1,
                    })
                })
                .collect(),
            max_time,
            clock,
            max_memory,
            fail_open,
            detached: AtomicUsize::new(0),
            me: me.clone(),
        });
        let first = vm.start(0)?;
        vm.lock(0).inst = Some(first);
        Ok(vm)
    }

    #[cold]
    #[inline(never)]
    fn start(&self, slot: usize) -> Result<Inst, StartError> {
        instance::start(&Recipe {
            pre: &self.pre,
            glue: &self.glue,
            filter: &self.filter,
            max_memory: self.max_memory,
            // a start (runtime init, vm_start, configure) may take up to a second
            start_ticks: self
                .clock
                .deadline(self.max_time.max(std::time::Duration::from_secs(1))),
            owner: QueueOwner {
                vm: self.me.clone(),
                slot,
            },
        })
    }

    /// This call's epoch deadline.
    fn deadline(&self) -> u64 {
        self.clock.deadline(self.max_time)
    }

    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn lock(&self, slot: usize) -> MutexGuard<'_, Slot> {
        self.slots[slot].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot of the current thread.
    pub fn pick(&self) -> usize {
        let hint = HINT.with(|h| {
            h.get().unwrap_or_else(|| {
                let n = NEXT_HINT.fetch_add(1, Ordering::Relaxed);
                h.set(Some(n));
                n
            })
        });
        hint % self.slots.len()
    }

    /// Counts and logs a fault, and replaces the slot's instance.
    #[cold]
    #[inline(never)]
    fn fault(&self, s: &mut Slot, slot: usize, fault: &Fault) {
        let m = &self.filter.metrics.failures;
        m.with_label_values(&[self.filter.name.as_str(), fault.reason])
            .inc();
        tracing::error!(
            plugin = "wasm",
            filter = %self.filter.name,
            route = self.filter.route.as_deref().unwrap_or(""),
            reason = fault.reason,
            error = %fault.message,
            "wasm filter failed; its instance is recreated"
        );
        s.generation += 1;
        s.inst = None;
        match self.start(slot) {
            Ok(i) => s.inst = Some(i),
            Err(e) => tracing::error!(plugin = "wasm", filter = %self.filter.name, error = %e,
                "wasm filter could not be restarted; next request tries again"),
        }
    }

    /// Creates a request context on `slot` (starting the slot's instance when it has
    /// none yet) and runs its request headers callback (`headers` pairs,
    /// `end_of_stream`) with `lend` swapped in: one entry into the filter
    /// ([`super::glue`]), under one lock. The context's generation and id, and what the
    /// callback did.
    pub fn open(
        &self,
        slot: usize,
        lend: Lend<'_>,
        headers: i32,
        end_of_stream: i32,
    ) -> Result<Opened, Fault> {
        let mut s = self.lock(slot);
        if s.inst.is_none() {
            match self.start(slot) {
                Ok(i) => s.inst = Some(i),
                Err(e) => {
                    return Err(Fault {
                        reason: "trap",
                        message: e.to_string(),
                    })
                }
            }
        }
        let id = s.next_ctx;
        s.next_ctx = if id == i32::MAX { ROOT + 1 } else { id + 1 };
        let gen = s.generation;
        let out = self.run(s, slot, id, lend, |cb, st| {
            Some(cb.glue.open.call(st, (id, ROOT, headers, end_of_stream)))
        })?;
        Ok((gen, id, out))
    }

    /// Runs `f` on context `ctx` of `slot` with `lend` swapped in. `Ok(None)`: the
    /// instance was replaced since the context was made (or the callback is not
    /// exported); the filter has nothing more to say for this request.
    pub fn call<R>(
        &self,
        slot: usize,
        gen: u64,
        ctx: i32,
        lend: Lend<'_>,
        f: impl FnOnce(&Callbacks, &mut Store<Host>) -> Option<wasmtime::Result<R>>,
    ) -> Result<Option<(R, Effects)>, Fault> {
        let s = self.lock(slot);
        if s.generation != gen {
            return Ok(None);
        }
        self.run(s, slot, ctx, lend, f)
    }

    /// [`Vm::call`] on a locked slot.
    fn run<R>(
        &self,
        mut s: MutexGuard<'_, Slot>,
        slot: usize,
        ctx: i32,
        mut lend: Lend<'_>,
        f: impl FnOnce(&Callbacks, &mut Store<Host>) -> Option<wasmtime::Result<R>>,
    ) -> Result<Option<(R, Effects)>, Fault> {
        let deadline = self.deadline();
        let Some(inst) = s.inst.as_mut() else {
            return Ok(None);
        };
        inst.store.set_epoch_deadline(deadline);
        lend_to(&mut inst.store.data_mut().cx, &mut lend, ctx);
        let out = f(&inst.cb, &mut inst.store);
        let cx = &mut inst.store.data_mut().cx;
        take_back(cx);
        let effects = Effects {
            local: cx.local.take(),
            calls: std::mem::take(&mut cx.calls),
            resumed: std::mem::take(&mut cx.resumed),
            cancels: std::mem::take(&mut cx.cancels),
        };
        let enqueued = std::mem::take(&mut cx.enqueued);
        let result = match out {
            None => Ok(None),
            Some(Ok(r)) => Ok(Some((r, effects))),
            Some(Err(e)) => {
                let fault = Fault::of(&e);
                self.fault(&mut s, slot, &fault);
                Err(fault)
            }
        };
        drop(s);
        if !enqueued.is_empty() {
            self.notify(enqueued, 0);
        }
        result
    }

    /// Tells the owners of queues that got data (`proxy_on_queue_ready`).
    fn notify(&self, tokens: Vec<u32>, depth: u32) {
        if depth > 8 {
            return;
        }
        for t in tokens {
            let Some(owner) = self.filter.store.owner(t) else {
                continue;
            };
            let Some(vm) = owner.vm.upgrade() else {
                continue;
            };
            let gen = vm.lock(owner.slot).generation;
            let lend = Lend::default();
            let _ = vm.call(owner.slot, gen, ROOT, lend, |cb, st| {
                cb.queue_ready
                    .as_ref()
                    .map(|f| f.call(st, (ROOT, t as i32)))
            });
        }
    }

    /// Runs `proxy_on_tick` on every instance whose tick is due; the smallest period
    /// asked for (0: none), and the HTTP calls the ticks made (slot, generation,
    /// effects), for [`Vm::settle`] on the root context.
    pub fn tick(&self, due: &mut [std::time::Instant]) -> (u32, Vec<(usize, u64, Effects)>) {
        let now = std::time::Instant::now();
        let mut period = 0u32;
        let mut calls = Vec::new();
        for (slot, at) in due.iter_mut().enumerate() {
            let (gen, ms) = {
                let s = self.lock(slot);
                let ms = s.inst.as_ref().map(|i| i.store.data().tick_ms).unwrap_or(0);
                (s.generation, ms)
            };
            if ms == 0 {
                continue;
            }
            period = if period == 0 { ms } else { period.min(ms) };
            if now < *at {
                continue;
            }
            *at = now + std::time::Duration::from_millis(u64::from(ms));
            let ticked = self.call(slot, gen, ROOT, Lend::default(), |cb, st| {
                cb.tick.as_ref().map(|f| f.call(st, ROOT))
            });
            if let Ok(Some(((), effects))) = ticked {
                if !effects.calls.is_empty() {
                    calls.push((slot, gen, effects));
                }
            }
        }
        (period, calls)
    }

    /// Ends context `ctx`: `proxy_on_log` (when `log`), `proxy_on_done`, then
    /// `proxy_on_delete`, in one entry ([`super::glue`]). Calls they made go out in
    /// the background ([`Vm::detach`]).
    pub fn end(&self, slot: usize, gen: u64, ctx: i32, props: &mut ReqProps, log: bool) {
        let lend = Lend {
            props: Some(props),
            ..Default::default()
        };
        let ended = self.call(slot, gen, ctx, lend, |cb, st| {
            let end = if log { &cb.glue.end_log } else { &cb.glue.end };
            Some(end.call(st, ctx))
        });
        if let Ok(Some(((), effects))) = ended {
            self.detach(slot, gen, effects);
        }
    }
}

/// Lends `lend`'s parts to the store's call context for the call about to run (every
/// part: one the call does not have is cleared, whatever an earlier call left).
fn lend_to(cx: &mut CallCx, lend: &mut Lend<'_>, ctx: i32) {
    cx.ctx_id = ctx as u32;
    match lend.req_shared {
        Some(r) => cx.req.set_shared(r),
        None => cx.req.set(lend.req.as_deref_mut()),
    }
    cx.resp.set(lend.resp.as_deref_mut());
    match lend.body.as_mut() {
        Some((kind, b)) => {
            cx.body_of = Some(*kind);
            cx.body.set(Some(&mut **b));
        }
        None => {
            cx.body_of = None;
            cx.body.set(None);
        }
    }
    cx.props.set(lend.props.as_deref_mut());
    if let Some(a) = lend.answer.take() {
        cx.answer = Some(a);
    }
}

/// Ends the loan of [`lend_to`]: the call is over.
fn take_back(cx: &mut CallCx) {
    cx.req.set(None);
    cx.resp.set(None);
    cx.body.set(None);
    cx.body_of = None;
    cx.props.set(None);
    cx.answer = None;
}
