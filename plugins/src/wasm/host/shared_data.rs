//! Shared data (`proxy_{get,set}_shared_data`, with compare-and-swap) and shared queues
//! (`proxy_{register,resolve,enqueue,dequeue}_shared_queue`): one store per gateway
//! process, in [`crate::Shared`], so every instance of every filter sees it and it
//! outlives reloads (Envoy keys it by VM id; every filter here has the empty one).

use super::{give, read, slice, split, write_u32, Host};
use crate::wasm::abi::{code, HostResult, Status};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, Weak};
use wasmtime::Caller;

/// Who is told a queue has data: an instance of a filter (`proxy_on_queue_ready`).
#[derive(Clone)]
pub struct QueueOwner {
    pub vm: Weak<crate::wasm::vm::Vm>,
    pub slot: usize,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Bytes>,
    owner: Option<QueueOwner>,
}

#[derive(Default)]
struct Queues {
    names: HashMap<String, u32>,
    by_token: HashMap<u32, Queue>,
}

/// Items a queue holds at most (older ones are dropped past it).
const QUEUE_LIMIT: usize = 10_000;

/// The process's shared data and queues.
#[derive(Default)]
pub struct SharedStore {
    data: Mutex<HashMap<Vec<u8>, (Bytes, u32)>>,
    queues: Mutex<Queues>,
}

impl SharedStore {
    fn data(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, (Bytes, u32)>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key` and its CAS token.
    pub fn get(&self, key: &[u8]) -> Option<(Bytes, u32)> {
        self.data().get(key).cloned()
    }

    /// Sets `key`; with a non-zero `cas`, only if it is still the key's token.
    pub fn set(&self, key: &[u8], value: &[u8], cas: u32) -> HostResult {
        let mut d = self.data();
        let next = match d.get(key) {
            Some((_, cur)) if cas != 0 && cas != *cur => return Err(Status::CasMismatch),
            Some((_, cur)) => cur.wrapping_add(1).max(1),
            None => 1,
        };
        d.insert(key.to_vec(), (Bytes::copy_from_slice(value), next));
        Ok(())
    }

    /// Registers queue `name` for `owner` (a new owner takes it over).
    pub fn register(&self, name: &str, owner: QueueOwner) -> u32 {
        let mut q = self.queues();
        let next = q.by_token.len() as u32 + 1;
        let token = *q.names.entry(name.to_string()).or_insert(next);
        q.by_token.entry(token).or_default().owner = Some(owner);
        token
    }

    pub fn resolve(&self, name: &str) -> Option<u32> {
        self.queues().names.get(name).copied()
    }

    pub fn enqueue(&self, token: u32, item: &[u8]) -> HostResult {
        let mut q = self.queues();
        let queue = q.by_token.get_mut(&token).ok_or(Status::NotFound)?;
        if queue.items.len() >= QUEUE_LIMIT {
            queue.items.pop_front();
        }
        queue.items.push_back(Bytes::copy_from_slice(item));
        Ok(())
    }

    pub fn dequeue(&self, token: u32) -> Result<Bytes, Status> {
        let mut q = self.queues();
        let queue = q.by_token.get_mut(&token).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    }

    pub fn owner(&self, token: u32) -> Option<QueueOwner> {
        self.queues()
            .by_token
            .get(&token)
            .and_then(|q| q.owner.clone())
    }
}

pub fn get_data(mut c: Caller<'_, Host>, kp: i32, kl: i32, rp: i32, rs: i32, cas_ptr: i32) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let key = slice(data, kp, kl)?;
        let (v, cas) = host.filter.store.get(key).ok_or(Status::NotFound)?;
        give(&mut c, &v, rp, rs)?;
        write_u32(&mut c, cas_ptr, cas)
    })())
}

pub fn set_data(mut c: Caller<'_, Host>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let key = slice(data, kp, kl)?;
        let value = slice(data, vp, vl)?;
        host.filter.store.set(key, value, cas as u32)
    })())
}

fn name(c: &mut Caller<'_, Host>, p: i32, l: i32) -> Result<String, Status> {
    String::from_utf8(read(c, p, l)?).map_err(|_| Status::BadArgument)
}

pub fn register_queue(mut c: Caller<'_, Host>, np: i32, nl: i32, rp: i32) -> i32 {
    code((|| {
        let n = name(&mut c, np, nl)?;
        let owner = c.data().owner.clone().ok_or(Status::InternalFailure)?;
        let token = c.data().filter.store.register(&n, owner);
        write_u32(&mut c, rp, token)
    })())
}

pub fn resolve_queue(
    mut c: Caller<'_, Host>,
    _vp: i32,
    _vl: i32,
    np: i32,
    nl: i32,
    rp: i32,
) -> i32 {
    code((|| {
        let n = name(&mut c, np, nl)?;
        let token = c.data().filter.store.resolve(&n).ok_or(Status::NotFound)?;
        write_u32(&mut c, rp, token)
    })())
}

pub fn enqueue(mut c: Caller<'_, Host>, token: i32, vp: i32, vl: i32) -> i32 {
    code((|| {
        let (data, host) = split(&mut c)?;
        let v = slice(data, vp, vl)?;
        host.filter.store.enqueue(token as u32, v)?;
        host.cx.enqueued.push(token as u32);
        Ok(())
    })())
}

pub fn dequeue(mut c: Caller<'_, Host>, token: i32, rp: i32, rs: i32) -> i32 {
    code((|| {
        let v = c.data().filter.store.dequeue(token as u32)?;
        give(&mut c, &v, rp, rs)
    })())
}
