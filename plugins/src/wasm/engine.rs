//! The wasmtime engine (Cranelift, epoch interruption), its epoch ticker and the
//! compiled modules, cached by the SHA-256 of their bytes in [`crate::Shared`] so that a
//! reload of an unchanged filter compiles nothing; and what `check` refuses in a
//! module: not wasm, no proxy-wasm ABI export.

use crate::Shared;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wasmtime::{Config, Engine, Module};

/// How often the epoch advances: the granularity of `max_time`.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Compiled modules kept at most (the oldest unused go first).
const CACHE_SIZE: usize = 32;

/// The engine and the modules compiled for it, kept across reloads.
pub struct Modules {
    pub engine: Engine,
    cache: Mutex<HashMap<[u8; 32], (u64, Module)>>,
    uses: std::sync::atomic::AtomicU64,
    ticker: OnceLock<()>,
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
                        ticker: OnceLock::new(),
                    })
                })
                .map_err(|e| e.to_string())
        });
        (*made).clone().map_err(ModuleError::Engine)
    }

    /// Starts the thread that advances the epoch (once; live gateways only).
    pub fn start_ticker(&self) {
        self.ticker.get_or_init(|| {
            let engine = self.engine.clone();
            let started = std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || loop {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "wasm: cannot start the epoch ticker: max_time is not enforced");
            }
        });
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
