//! `wasm`: runs a proxy-wasm filter (ABI 0.2.0 and 0.2.1, as Envoy implements them)
//! with wasmtime, sandboxed: each call bounded in time (`max_time`) and memory
//! (`max_memory`), no file system or network; a fault answers 503 (`fail: closed`) or
//! skips the filter (`fail: open`) and the instance is recreated.
//!
//! ```yaml
//! - name: wasm
//!   module: filters/auth.wasm      # relative to routes.yaml; an edit reloads
//!   root_id: auth
//!   configuration: {allow: [alice]} # a string as is, anything else as JSON text
//!   fail: closed
//! ```
//!
//! The request's way: [`engine`] compiles the module (cached by content hash, across
//! reloads), [`host::link`] checks its imports, [`vm`] keeps one instance per worker
//! thread, [`filter`] runs the callbacks in the plugin phases, [`host`] answers the
//! filter's calls into the host, [`calls`] sends its HTTP and gRPC calls out. See
//! `docs/plugins/wasm.md`.

mod abi;
mod calls;
mod engine;
mod filter;
mod glue;
mod host;
mod instance;
mod metrics;
mod request;
mod request_body;
mod response;
mod settings;
mod vm;
mod wasi;

pub use engine::Modules;
pub use settings::{FailMode, WasmSettings};

use crate::{BuildCtx, Factory, Plugin, SettingsError};
use host::shared_data::SharedStore;
use host::FilterInfo;
use metrics::WasmMetrics;
use std::sync::Arc;

/// The `wasm` plugin.
pub struct Wasm;

/// Instances of a filter kept at most (one per worker thread up to this).
const MAX_SLOTS: usize = 16;

impl Factory for Wasm {
    const NAME: &'static str = "wasm";
    const SUMMARY: &'static str =
        "Runs a proxy-wasm filter (Envoy's ABI 0.2.x), sandboxed, hot-reloadable";
    type Settings = WasmSettings;

    fn build(s: WasmSettings, cx: &BuildCtx<'_>) -> Result<Arc<dyn Plugin>, SettingsError> {
        let at_module = |e: &dyn std::fmt::Display| SettingsError::at("module", e.to_string());
        let path = cx.file(&s.module);
        let modules = Modules::of(cx.shared).map_err(|e| at_module(&e))?;
        let module = modules.load(&path).map_err(|e| at_module(&e))?;
        let pre = host::link::link(&modules.engine, &module).map_err(|e| at_module(&e))?;
        let max_memory = usize::try_from(s.max_memory.0).unwrap_or(usize::MAX);
        let needs = min_memory(&module);
        if needs > max_memory as u64 {
            return Err(SettingsError::at(
                "max_memory",
                format!(
                    "the filter's memory starts at {needs} bytes, over max_memory ({max_memory})"
                ),
            ));
        }
        let name = if s.root_id.is_empty() {
            path.file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "wasm".into())
        } else {
            s.root_id.clone()
        };
        let filter = Arc::new(FilterInfo {
            name,
            route: cx.route.map(str::to_owned),
            root_id: s.root_id.clone(),
            configuration: s.configuration.0.into(),
            store: cx.shared.state("wasm", SharedStore::default),
            metrics: cx.shared.state("wasm", || {
                WasmMetrics::new(cx.shared.metrics.registry.clone())
            }),
            calls: cx.upstreams(),
        });
        let exports = filter::Exports::of(&module);
        if cx.shared.is_dry() {
            // `check`: compiled and linked; nothing runs
            return Ok(Arc::new(filter::WasmFilter::dry(exports)));
        }
        // generated, so nothing for `check` to find in it: built for live tables only
        let glue = modules
            .glue
            .of(&modules.engine, &module)
            .map_err(|e| at_module(&format!("cannot build the filter's glue: {e:#}")))?;
        let clock = modules.start_ticker();
        let slots = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(MAX_SLOTS);
        let limits = vm::Limits {
            max_time: s.max_time.0,
            max_memory,
            fail_open: s.fail == FailMode::Open,
        };
        let vm = vm::Vm::new(filter, pre, glue, slots, limits, clock).map_err(|e| at_module(&e))?;
        if exports.tick {
            filter::start_ticks(&vm);
        }
        Ok(Arc::new(filter::WasmFilter::live(vm, exports)))
    }
}

/// The bytes the module's memories start with.
fn min_memory(module: &wasmtime::Module) -> u64 {
    module
        .exports()
        .filter_map(|e| match e.ty() {
            wasmtime::ExternType::Memory(m) => Some(m.minimum().saturating_mul(m.page_size())),
            _ => None,
        })
        .sum()
}

#[cfg(test)]
mod sdk_cost;
#[cfg(test)]
mod tests;
