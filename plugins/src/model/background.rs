//! A background thread with its own single-threaded tokio runtime, for work that must
//! not depend on a serving runtime (the JWKS refresher, the gateway's SIGHUP listener).

use std::future::Future;

/// Starts thread `name` running the future `make` returns on a current-thread runtime
/// of its own. A runtime that cannot start is logged (`what` says what is disabled);
/// a thread that cannot start is the error.
pub fn spawn_with_runtime<F, Fut>(
    name: &str,
    what: &'static str,
    make: F,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(make()),
                Err(e) => tracing::error!(error = %e, "{what} disabled: cannot start a runtime"),
            }
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn runs_the_future_on_its_own_runtime() {
        let (tx, rx) = std::sync::mpsc::channel();
        let h = spawn_with_runtime("t", "test", move || async move {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            tx.send(std::thread::current().name().map(str::to_owned))
                .unwrap();
        })
        .unwrap();
        h.join().unwrap();
        assert_eq!(rx.recv().unwrap().as_deref(), Some("t"));
    }
}
