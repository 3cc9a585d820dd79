//! Reload triggers: file changes (notify on the file's directory, so an editor's
//! rename-over and the Kubernetes ConfigMap `..data` symlink swap are both seen, with a
//! 1 s content check as a safety net), and SIGHUP. `POST /admin/reload` calls
//! [`Gateway::reload`] directly. Events are debounced: a burst of writes is loaded once,
//! 50 ms after the last event (300 ms at most after the first).

use crate::gateway::{Gateway, Trigger};
use notify::{RecursiveMode, Watcher};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Quiet time after the last file event before loading.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// Longest a burst of events can delay a load.
pub const MAX_DEBOUNCE: Duration = Duration::from_millis(300);
/// Content check interval when no event arrives.
pub const POLL: Duration = Duration::from_secs(1);

/// Starts the watcher and the SIGHUP listener on their own threads.
pub fn spawn(gw: Arc<Gateway>) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<()>();
    let dir = gw
        .config_path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
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
    .map_err(|e| format!("cannot start the file watcher: {e}"))?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;

    let watch_gw = gw.clone();
    std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            let _watcher = watcher; // lives as long as the thread
            loop {
                match rx.recv_timeout(POLL) {
                    Ok(()) => {
                        // debounce: wait until events stop for DEBOUNCE, at most MAX_DEBOUNCE
                        let started = std::time::Instant::now();
                        while started.elapsed() < MAX_DEBOUNCE && rx.recv_timeout(DEBOUNCE).is_ok()
                        {
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                let _ = watch_gw.reload(Trigger::Watch);
            }
        })
        .map_err(|e| format!("cannot start the watcher thread: {e}"))?;

    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP reloads disabled: cannot start a runtime");
                    return;
                }
            };
            rt.block_on(async move {
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
            });
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}
