//! The WASI preview 1 functions SDKs' runtimes import, under both
//! `wasi_snapshot_preview1` and `wasi_unstable`: `fd_write` to stdout/stderr goes to the
//! log, `proc_exit` ends the call (a trap), clocks, `random_get`, and empty arguments
//! and environment; the standard streams as character devices and no preopened
//! directory (what Go's and wasi-libc's start-up ask, see [`stdio`]). Every other
//! preview 1 function exists and answers `ENOSYS`: no file system, no network.

use super::host::{misc, read, slice, split, write, write_u32, Host};
use wasmtime::{Caller, Linker};

mod stdio;

/// `errno` values.
const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
pub const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

/// The module names of WASI preview 1.
pub const MODULES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

/// Every preview 1 function (those not defined in [`define`] answer `ENOSYS`).
pub const KNOWN: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The functions [`define`] defines.
pub const IMPLEMENTED: &[&str] = &[
    "fd_write",
    "clock_time_get",
    "random_get",
    "args_sizes_get",
    "environ_sizes_get",
    "args_get",
    "environ_get",
    "sched_yield",
    "proc_exit",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_close",
    "fd_seek",
    "poll_oneoff",
];

/// A filter called `proc_exit`: its call ends there.
#[derive(Debug, thiserror::Error)]
#[error("the filter called proc_exit({0})")]
pub struct ProcExit(pub i32);

/// `fd_write` on stdout (info) or stderr (warn): the bytes go to the log.
fn fd_write(mut c: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, written: i32) -> i32 {
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let text = (|| {
        let (data, _) = split(&mut c).ok()?;
        let mut out = Vec::new();
        for i in 0..n.max(0) {
            let iov = slice(data, iovs + i * 8, 8).ok()?;
            let p = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
            let l = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
            out.extend_from_slice(slice(data, p, l).ok()?);
        }
        Some(out)
    })();
    let Some(text) = text else { return EINVAL };
    let line = String::from_utf8_lossy(&text);
    let line = line.trim_end();
    if !line.is_empty() {
        misc::emit(c.data(), if fd == 1 { 2 } else { 3 }, line);
    }
    match write_u32(&mut c, written, text.len() as u32) {
        Ok(()) => ESUCCESS,
        Err(_) => EINVAL,
    }
}

fn clock_time_get(mut c: Caller<'_, Host>, id: i32, _precision: i64, rp: i32) -> i32 {
    let now = match id {
        0 => misc::now_nanos(),
        1..=3 => monotonic_nanos(),
        _ => return EINVAL,
    };
    match write(&mut c, rp, &now.to_le_bytes()) {
        Ok(()) => ESUCCESS,
        Err(_) => EINVAL,
    }
}

fn monotonic_nanos() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

fn random_get(mut c: Caller<'_, Host>, p: i32, l: i32) -> i32 {
    let Ok(mut buf) = read(&mut c, p, l) else {
        return EINVAL;
    };
    rand::Rng::fill(&mut rand::rng(), &mut buf[..]);
    match write(&mut c, p, &buf) {
        Ok(()) => ESUCCESS,
        Err(_) => EINVAL,
    }
}

/// Writes two zero counts (no arguments, no environment).
fn sizes_zero(mut c: Caller<'_, Host>, a: i32, b: i32) -> i32 {
    match write_u32(&mut c, a, 0).and_then(|_| write_u32(&mut c, b, 0)) {
        Ok(()) => ESUCCESS,
        Err(_) => EINVAL,
    }
}

/// Defines the implemented functions under `module` (one of [`MODULES`]).
pub fn define(linker: &mut Linker<Host>, module: &str) -> wasmtime::Result<()> {
    linker.func_wrap(module, "fd_write", fd_write)?;
    linker.func_wrap(module, "clock_time_get", clock_time_get)?;
    linker.func_wrap(module, "random_get", random_get)?;
    linker.func_wrap(module, "args_sizes_get", sizes_zero)?;
    linker.func_wrap(module, "environ_sizes_get", sizes_zero)?;
    linker.func_wrap(module, "args_get", |_: Caller<'_, Host>, _: i32, _: i32| {
        ESUCCESS
    })?;
    linker.func_wrap(
        module,
        "environ_get",
        |_: Caller<'_, Host>, _: i32, _: i32| ESUCCESS,
    )?;
    linker.func_wrap(module, "sched_yield", |_: Caller<'_, Host>| ESUCCESS)?;
    linker.func_wrap(
        module,
        "proc_exit",
        |_: Caller<'_, Host>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(ProcExit(code)))
        },
    )?;
    stdio::define(linker, module)
}
