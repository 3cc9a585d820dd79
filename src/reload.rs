//! Reload triggers: file changes (notify on the directory of routes.yaml and of every
//! file it references, so an editor's rename-over and the Kubernetes ConfigMap `..data`
//! symlink swap are both seen, with a 1 s content check as a safety net), and SIGHUP.
//! `POST /admin/reload` calls [`Gateway::reload`] directly.
//!
//! No edit is lost to a file read mid-write (an editor or `kubectl cp` truncating then
//! writing in place, or writing in several chunks):
//! - **settle**: after an event, the watcher waits until the files stop changing (no
//!   event for [`QUIET`], then none for [`STABLE`] with the same [`stamp`] of every
//!   input at both ends; at most [`MAX_SETTLE`]), then reads;
//! - **re-check**: a refused table whose inputs changed while it was read is not
//!   remembered as tried ([`Gateway::reload`] compares the stamps before and after the
//!   build), and the watcher settles and reads once more; a table refused with inputs
//!   that did not change is not retried until they do.

use crate::gateway::{Gateway, Trigger};
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Quiet time without a file event after which the files may be written...
pub const QUIET: Duration = Duration::from_millis(100);
/// ...and the time over which their [`stamp`] must then stay the same (no event
/// either) for them to count as written.
pub const STABLE: Duration = Duration::from_millis(50);
/// Longest the files can keep changing before they are read anyway (the 1 s check
/// reads them again once they change no more).
pub const MAX_SETTLE: Duration = Duration::from_secs(3);
/// Content check interval when no event arrives.
pub const POLL: Duration = Duration::from_secs(1);

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start the file watcher: {0}")]
    Start(#[source] notify::Error),
    #[error("cannot watch {}: {source}", dir.display())]
    Watch {
        dir: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, #[source] std::io::Error),
}

/// A stamp of every input of a build: routes.yaml and each file plugins and the TLS
/// listener read (device, inode, length, modification and change times; a missing
/// file stamps as missing). Two equal stamps: nothing was written in between.
pub fn stamp(config: &Path, plugins: &gateway_plugins::Shared) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in std::iter::once(config.to_path_buf()).chain(plugins.watched_files()) {
        f.hash(&mut h);
        match std::fs::metadata(&f) {
            Ok(m) => (
                m.dev(),
                m.ino(),
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            )
                .hash(&mut h),
            Err(e) => e.kind().hash(&mut h),
        }
    }
    h.finish()
}

/// Marks the files routes.yaml names outside plugin settings for watching (plugins
/// mark their own through `BuildCtx::file`): the TLS listener's `client_ca` and
/// `client_crl` (read again on reload), upstream TLS files (`client_cert`,
/// `client_key`, `ca`) and route `fallback.file`s (read by every build). Called
/// before the build, so that the first fingerprint covers them.
pub fn watch_config_files(
    cfg: &crate::config::Config,
    base: &Path,
    plugins: &gateway_plugins::Shared,
) {
    if let Some(t) = &cfg.server.tls {
        if let Some(ca) = &t.client_ca {
            plugins.watch_file(Path::new(ca));
        }
        if let Some(crl) = crate::tls_listener::crl_path(t, base) {
            plugins.watch_file(&crl);
        }
    }
    for up in cfg.upstreams.values() {
        if let Some(s) = up.tls.settings() {
            for f in [&s.client_cert, &s.client_key, &s.ca].into_iter().flatten() {
                plugins.watch_file(Path::new(f));
            }
        }
    }
    for f in cfg
        .routes
        .iter()
        .filter_map(|r| r.fallback.as_ref()?.file.as_ref())
    {
        plugins.watch_file(Path::new(f));
    }
}

/// The directory a file is in (`.` for a bare name).
fn dir_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Waits for [`QUIET`] without a file event (at most until `deadline`).
fn quiet(rx: &mpsc::Receiver<()>, deadline: Instant) {
    loop {
        match rx.recv_timeout(QUIET) {
            Ok(()) if Instant::now() < deadline => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => return,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(QUIET);
                return;
            }
        }
    }
}

/// Returns once the files stop changing: [`QUIET`] without an event, then
/// [`STABLE`] without an event and with the same stamp at both ends (at most
/// [`MAX_SETTLE`]).
fn settle(rx: &mpsc::Receiver<()>, gw: &Gateway) {
    let deadline = Instant::now() + MAX_SETTLE;
    loop {
        quiet(rx, deadline);
        let before = stamp(&gw.config_path, &gw.plugins);
        let event = match rx.recv_timeout(STABLE) {
            Ok(()) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(STABLE);
                false
            }
        };
        let stable = !event && stamp(&gw.config_path, &gw.plugins) == before;
        if stable || Instant::now() >= deadline {
            return;
        }
    }
}

/// One watcher pass: settle after an event, load, and after a refusal whose inputs
/// changed while they were read, settle and load once more.
fn watch_reload(rx: &mpsc::Receiver<()>, gw: &Gateway, event: bool) {
    if event {
        settle(rx, gw);
    }
    let before = stamp(&gw.config_path, &gw.plugins);
    if gw.reload(Trigger::Watch).is_err() && stamp(&gw.config_path, &gw.plugins) != before {
        tracing::info!("a file changed while it was read: reading it again once it settles");
        settle(rx, gw);
        let _ = gw.reload(Trigger::Watch);
    }
}

/// Adds a watch on the directory of every referenced file not watched yet (the
/// directories are kept until the process ends; a failure is logged once per
/// directory, and the 1 s check still covers the file).
fn watch_dirs(w: &mut impl Watcher, dirs: &mut BTreeSet<PathBuf>, gw: &Gateway) {
    for f in gw.plugins.watched_files() {
        let d = dir_of(&f);
        if dirs.insert(d.clone()) {
            if let Err(e) = w.watch(&d, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %d.display(), error = %e, "cannot watch a referenced file's directory; its changes are seen by the 1 s check");
            }
        }
    }
}

/// Starts the watcher and the SIGHUP listener on their own threads.
pub fn spawn(gw: Arc<Gateway>) -> Result<(), WatchError> {
    let (tx, rx) = mpsc::channel::<()>();
    let dir = dir_of(&gw.config_path);
    let ev_tx = tx.clone();
    let name = gw
        .config_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let plugins = gw.plugins.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // only events about the file itself, the kubelet's `..data` swap, or a file a
        // plugin read (a key file) count: a busy neighbour (a log file) must not keep
        // the debounce from settling
        if let Ok(ev) = res {
            let watched = plugins.watched_files();
            let relevant = ev.paths.iter().any(|p| {
                p.file_name().is_some_and(|f| {
                    f == name.as_os_str()
                        || f.to_string_lossy().starts_with("..")
                        || watched.iter().any(|w| w.file_name() == Some(f))
                })
            });
            if relevant {
                let _ = ev_tx.send(());
            }
        }
    })
    .map_err(WatchError::Start)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Watch {
            dir: dir.clone(),
            source,
        })?;

    let watch_gw = gw.clone();
    std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            let mut watcher = watcher; // lives as long as the thread
            let mut dirs = BTreeSet::from([dir]);
            loop {
                watch_dirs(&mut watcher, &mut dirs, &watch_gw);
                let event = match rx.recv_timeout(POLL) {
                    Ok(()) => true,
                    Err(mpsc::RecvTimeoutError::Timeout) => false,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                watch_reload(&rx, &watch_gw, event);
            }
        })
        .map_err(|e| WatchError::Thread("watcher", e))?;

    gateway_plugins::spawn_with_runtime("sighup", "SIGHUP reloads", move || async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP reloads disabled");
                return;
            }
        };
        while hup.recv().await.is_some() {
            let g = gw.clone();
            let _ = tokio::task::spawn_blocking(move || g.reload(Trigger::Signal)).await;
        }
    })
    .map_err(|e| WatchError::Thread("signal", e))?;
    Ok(())
}
