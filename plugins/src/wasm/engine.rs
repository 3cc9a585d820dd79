//! The wasmtime engine (Cranelift, epoch interruption), its epoch ticker and the
//! compiled modules, cached by the SHA-256 of their bytes in [`crate::Shared`] so that a
//! reload of an unchanged filter compiles nothing; and what `check` refuses in a
//! module: not wasm, no proxy-wasm ABI export.

use crate::Shared;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wasmtime::{Config, Engine, Module};

/// The shortest epoch period (for a `max_time` of 2 ms or less).
pub const MIN_TICK: Duration = Duration::from_millis(1);

/// Compiled modules kept at most (the oldest unused go first).
const CACHE_SIZE: usize = 32;

/// The engine and the modules compiled for it, kept across reloads.
pub struct Modules {
    pub engine: Engine,
    cache: Mutex<HashMap<[u8; 32], (u64, Module)>>,
    uses: std::sync::atomic::AtomicU64,
    clock: Arc<Clock>,
    ticker: OnceLock<()>,
    /// The glue modules ([`super::glue`]).
    pub glue: super::glue::GlueModules,
}

/// Why a module cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("`{0}` is not a WebAssembly module")]
    NotWasm(String),
    #[error("`{path}` does not compile: {message}")]
    Compile { path: String, message: String },
    #[error("`{0}` is not a proxy-wasm filter: it exports neither `proxy_abi_version_0_2_0` nor `proxy_abi_version_0_2_1`")]
    NoAbi(String),
    #[error("cannot start the wasm engine: {0}")]
    Engine(String),
}

impl Modules {
    /// The engine and cache of this process (one per [`Shared`]).
    pub fn of(shared: &Shared) -> Result<Arc<Modules>, ModuleError> {
        let made = shared.state("wasm-engine", || {
            let mut cfg = Config::new();
            cfg.epoch_interruption(true);
            Engine::new(&cfg)
                .map(|engine| {
                    Arc::new(Modules {
                        engine,
                        cache: Mutex::new(HashMap::new()),
                        uses: Default::default(),
                        clock: Arc::new(Clock::new()),
                        ticker: OnceLock::new(),
                        glue: Default::default(),
                    })
                })
                .map_err(|e| e.to_string())
        });
        (*made).clone().map_err(ModuleError::Engine)
    }

    /// Starts the thread that advances the epoch (once; live gateways only) and
    /// returns the clock that filters' calls read their deadlines from.
    pub fn start_ticker(&self) -> Arc<Clock> {
        self.ticker.get_or_init(|| {
            let engine = self.engine.clone();
            let clock = self.clock.clone();
            let started = std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || clock.run(|| engine.increment_epoch()));
            match started {
                Ok(t) => {
                    let _ = self.clock.thread.set(t.thread().clone());
                }
                Err(e) => {
                    tracing::error!(error = %e, "wasm: cannot start the epoch ticker: max_time is not enforced")
                }
            }
        });
        self.clock.clone()
    }

    /// The module of `path` compiled, from the cache when its bytes were compiled
    /// before; checks that it is a proxy-wasm filter.
    pub fn load(&self, path: &std::path::Path) -> Result<Module, ModuleError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ModuleError::Read {
            path: shown.clone(),
            source,
        })?;
        if !bytes.starts_with(b"\0asm") {
            return Err(ModuleError::NotWasm(shown));
        }
        let key: [u8; 32] = Sha256::digest(&bytes).into();
        let n = self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some((used, m)) = self.lock().get_mut(&key) {
            *used = n;
            return Ok(m.clone());
        }
        // compiled without the lock: another reload may compile the same bytes at once
        let module = Module::new(&self.engine, &bytes).map_err(|e| ModuleError::Compile {
            path: shown.clone(),
            message: format!("{e:#}"),
        })?;
        let abi = module.exports().any(|e| {
            e.name() == "proxy_abi_version_0_2_0" || e.name() == "proxy_abi_version_0_2_1"
        });
        if !abi {
            return Err(ModuleError::NoAbi(shown));
        }
        let mut cache = self.lock();
        if cache.len() >= CACHE_SIZE {
            if let Some(oldest) = cache.iter().min_by_key(|(_, (u, _))| *u).map(|(k, _)| *k) {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, (n, module.clone()));
        Ok(module)
    }

    /// How many compiled modules the cache holds (tests).
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (u64, Module)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The epoch ticker's state. The epoch advances every `period` (half the smallest
/// `max_time` of the live filters, at least [`MIN_TICK`]), so a call is interrupted
/// between `max_time` and `max_time` + `period` after it began. The ticker sleeps
/// (parks) after [`IDLE_TICKS`] periods without a call into any filter, and the next
/// call wakes it: an idle gateway pays no wake-ups, a busy one `1 / period` a second.
pub struct Clock {
    period_ms: AtomicU64,
    /// A call began since the ticker last looked.
    active: AtomicBool,
    parked: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
}

/// Periods without a call before the ticker parks.
const IDLE_TICKS: u32 = 64;

impl Clock {
    fn new() -> Self {
        Self {
            period_ms: AtomicU64::new(50),
            active: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            thread: OnceLock::new(),
        }
    }

    /// Makes the period fit a filter's `max_time` (it only shortens: a filter still
    /// loaded keeps its bound).
    pub fn fit(&self, max_time: Duration) {
        let want = (max_time.as_millis() as u64 / 2).max(MIN_TICK.as_millis() as u64);
        self.period_ms.fetch_min(want, Ordering::Relaxed);
    }

    /// The epoch deadline (in ticks from now) of a call bounded by `max_time`, and a
    /// mark that a call begins (waking the ticker when it sleeps).
    pub fn deadline(&self, max_time: Duration) -> u64 {
        if !self.active.load(Ordering::Relaxed) {
            self.active.store(true, Ordering::SeqCst);
            if self.parked.load(Ordering::SeqCst) {
                self.parked.store(false, Ordering::SeqCst);
                if let Some(t) = self.thread.get() {
                    t.unpark();
                }
            }
        }
        let period = self.period_ms.load(Ordering::Relaxed).max(1);
        (max_time.as_millis() as u64).div_ceil(period) + 1
    }

    /// The ticker's loop: `tick` every period while calls come, parked otherwise.
    fn run(&self, tick: impl Fn()) {
        let mut idle = 0u32;
        loop {
            let period = self.period_ms.load(Ordering::Relaxed).max(1);
            std::thread::sleep(Duration::from_millis(period));
            tick();
            if self.active.swap(false, Ordering::SeqCst) {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle < IDLE_TICKS {
                continue;
            }
            // park unless a call began meanwhile (it sees `parked` and unparks us)
            self.parked.store(true, Ordering::SeqCst);
            while self.parked.load(Ordering::SeqCst) && !self.active.load(Ordering::SeqCst) {
                std::thread::park();
            }
            self.parked.store(false, Ordering::SeqCst);
            idle = 0;
        }
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn deadlines_follow_the_period() {
        let c = Clock::new();
        c.fit(Duration::from_millis(10));
        // period 5 ms: interrupted between 10 and 15 ms
        assert_eq!(c.deadline(Duration::from_millis(10)), 3);
        c.fit(Duration::from_millis(100)); // only shortens
        assert_eq!(c.deadline(Duration::from_millis(100)), 21);
        c.fit(Duration::from_micros(500));
        assert_eq!(c.deadline(Duration::from_millis(10)), 11);
    }

    #[test]
    fn the_ticker_parks_when_idle_and_a_call_wakes_it() {
        let clock = Arc::new(Clock::new());
        clock.fit(Duration::from_millis(2));
        let ticks = Arc::new(AtomicUsize::new(0));
        let (c, t) = (clock.clone(), ticks.clone());
        let h = std::thread::spawn(move || {
            c.run(|| {
                t.fetch_add(1, Ordering::SeqCst);
            })
        });
        let _ = clock.thread.set(h.thread().clone());
        // 64 idle periods of 1 ms, then it parks
        let parked = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            clock.parked.load(Ordering::SeqCst)
        });
        assert!(parked, "the ticker never parked");
        let before = ticks.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            before,
            "a parked ticker ticked"
        );
        clock.deadline(Duration::from_millis(2));
        let woke = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            ticks.load(Ordering::SeqCst) > before
        });
        assert!(woke, "a call did not wake the ticker");
    }
}
