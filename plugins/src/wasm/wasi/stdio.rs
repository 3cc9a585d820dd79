//! The descriptors a filter has: the three standard streams (character devices;
//! writing to 1 and 2 goes to the log, reading 0 finds nothing), no preopened
//! directory and nothing else. What language runtimes ask at start-up and around
//! their standard streams: Go's `wasip1` runtime lists the preopens
//! (`fd_prestat_get` until `EBADF`) and reads the streams' kind (`fd_fdstat_get`),
//! wasi-libc's stdio closes and seeks them. `poll_oneoff` answers every subscription
//! at once (a clock as expired, the standard output streams as writable): a call into
//! the filter never blocks its worker thread. A C filter's sleep returns at once; Go's
//! runtime checks the clock again and polls until its timer is due, so a Go sleep runs
//! on the CPU, bounded by `max_time` like any call.

use super::{EBADF, EINVAL, ESPIPE, ESUCCESS};
use crate::wasm::host::{split, write, Host};
use wasmtime::{Caller, Linker};

/// `filetype::character_device`.
const CHARACTER_DEVICE: u8 = 2;
/// `rights::fd_read`, `rights::fd_write`, `rights::poll_fd_readwrite`.
const RIGHT_READ: u64 = 1 << 1;
const RIGHT_WRITE: u64 = 1 << 6;
const RIGHT_POLL: u64 = 1 << 27;
/// `eventtype`: clock, fd_read, fd_write.
const EVENT_CLOCK: u8 = 0;
const EVENT_FD_WRITE: u8 = 2;
/// The sizes of a `subscription` and an `event`.
const SUBSCRIPTION: usize = 48;
const EVENT: usize = 32;

fn is_stdio(fd: i32) -> bool {
    (0..=2).contains(&fd)
}

/// The `fdstat` of a standard stream (24 bytes: type, flags, base and inheriting
/// rights).
fn fdstat(fd: i32) -> [u8; 24] {
    let mut out = [0u8; 24];
    out[0] = CHARACTER_DEVICE;
    let rights = RIGHT_POLL | if fd == 0 { RIGHT_READ } else { RIGHT_WRITE };
    out[8..16].copy_from_slice(&rights.to_le_bytes());
    out
}

fn fd_fdstat_get(mut c: Caller<'_, Host>, fd: i32, rp: i32) -> i32 {
    if !is_stdio(fd) {
        return EBADF;
    }
    match write(&mut c, rp, &fdstat(fd)) {
        Ok(()) => ESUCCESS,
        Err(_) => EINVAL,
    }
}

/// What a standard stream accepts that changes nothing: success; any other
/// descriptor does not exist.
fn stdio_only(fd: i32) -> i32 {
    if is_stdio(fd) {
        ESUCCESS
    } else {
        EBADF
    }
}

/// The events answering `n` subscriptions read from `subs` (each fires now).
fn events(subs: &[u8], n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n * EVENT];
    for (sub, ev) in subs
        .chunks_exact(SUBSCRIPTION)
        .zip(out.chunks_exact_mut(EVENT))
    {
        ev[0..8].copy_from_slice(&sub[0..8]);
        let tag = sub[8];
        let fd = i32::from_le_bytes([sub[16], sub[17], sub[18], sub[19]]);
        let error = match tag {
            EVENT_CLOCK => ESUCCESS,
            EVENT_FD_WRITE if fd == 1 || fd == 2 => ESUCCESS,
            _ => EBADF,
        };
        ev[8..10].copy_from_slice(&(error as u16).to_le_bytes());
        ev[10] = tag;
    }
    out
}

fn poll_oneoff(mut c: Caller<'_, Host>, sp: i32, ep: i32, n: i32, np: i32) -> i32 {
    let Ok(count) = usize::try_from(n) else {
        return EINVAL;
    };
    if count == 0 {
        return EINVAL;
    }
    let out = (|| {
        let (data, _) = split(&mut c).ok()?;
        let len = i32::try_from(count.checked_mul(SUBSCRIPTION)?).ok()?;
        let subs = crate::wasm::host::slice(data, sp, len).ok()?;
        Some(events(subs, count))
    })();
    let Some(out) = out else { return EINVAL };
    let written =
        write(&mut c, ep, &out).and_then(|()| write(&mut c, np, &(count as u32).to_le_bytes()));
    match written {
        Ok(()) => ESUCCESS,
        Err(_) => EINVAL,
    }
}

/// Defines the descriptor functions under `module`.
pub fn define(l: &mut Linker<Host>, module: &str) -> wasmtime::Result<()> {
    l.func_wrap(module, "fd_fdstat_get", fd_fdstat_get)?;
    l.func_wrap(
        module,
        "fd_fdstat_set_flags",
        |_: Caller<'_, Host>, fd: i32, _flags: i32| stdio_only(fd),
    )?;
    // no preopened directories: the list ends at the first descriptor asked
    l.func_wrap(
        module,
        "fd_prestat_get",
        |_: Caller<'_, Host>, _fd: i32, _rp: i32| EBADF,
    )?;
    l.func_wrap(
        module,
        "fd_prestat_dir_name",
        |_: Caller<'_, Host>, _fd: i32, _p: i32, _l: i32| EBADF,
    )?;
    l.func_wrap(module, "fd_close", |_: Caller<'_, Host>, fd: i32| {
        stdio_only(fd)
    })?;
    l.func_wrap(
        module,
        "fd_seek",
        |_: Caller<'_, Host>, fd: i32, _off: i64, _whence: i32, _rp: i32| {
            if is_stdio(fd) {
                ESPIPE
            } else {
                EBADF
            }
        },
    )?;
    l.func_wrap(module, "poll_oneoff", poll_oneoff)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_answers_each_subscription_at_once() {
        let mut subs = vec![0u8; 3 * SUBSCRIPTION];
        // a clock, fd_write on stdout, fd_read on descriptor 7
        subs[0..8].copy_from_slice(&11u64.to_le_bytes());
        subs[8] = EVENT_CLOCK;
        subs[48..56].copy_from_slice(&22u64.to_le_bytes());
        subs[56] = EVENT_FD_WRITE;
        subs[64..68].copy_from_slice(&1i32.to_le_bytes());
        subs[96..104].copy_from_slice(&33u64.to_le_bytes());
        subs[104] = 1;
        subs[112..116].copy_from_slice(&7i32.to_le_bytes());
        let ev = events(&subs, 3);
        assert_eq!(ev.len(), 3 * EVENT);
        assert_eq!(&ev[0..8], &11u64.to_le_bytes());
        assert_eq!((ev[8], ev[10]), (0, EVENT_CLOCK));
        assert_eq!(&ev[32..40], &22u64.to_le_bytes());
        assert_eq!((ev[40], ev[42]), (0, EVENT_FD_WRITE));
        assert_eq!(&ev[64..72], &33u64.to_le_bytes());
        assert_eq!((ev[72], ev[74]), (EBADF as u8, 1));
        assert_eq!(fdstat(1)[0], CHARACTER_DEVICE);
    }
}
