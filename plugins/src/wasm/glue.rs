//! The glue: a small wasm module instantiated beside each filter instance, importing
//! the filter's request callbacks and chaining those the gateway always calls
//! together: `open` runs `proxy_on_context_create` then `proxy_on_request_headers`,
//! `end` runs `proxy_on_log` (`end_log` only), `proxy_on_done` and `proxy_on_delete`.
//! Each entry into wasm from the host costs wasmtime's trap and stack set-up and a
//! trampoline (a few hundred instructions and their cold code); a call from one
//! instance into another is a plain indirect call. So a request enters the filter's
//! store three times (open, response headers, end) instead of six. What the filter
//! sees is unchanged: the same callbacks, in the same order, with the same arguments;
//! a trap in any of them ends the entry as it would have ended the call, and the
//! instance is replaced alike.
//!
//! The module is generated for the callbacks a filter exports (one that lacks
//! `proxy_on_request_headers` answers Continue, others are skipped) and compiled once
//! per set of exports for the process.

use std::collections::HashMap;
use std::sync::Mutex;
use wasmtime::{Engine, Extern, Instance, Module, Store, TypedFunc};

/// The chained callbacks, by import name, with their signature in WAT.
const CHAINED: [(&str, &str); 5] = [
    ("proxy_on_context_create", "(param i32 i32)"),
    (
        "proxy_on_request_headers",
        "(param i32 i32 i32) (result i32)",
    ),
    ("proxy_on_log", "(param i32)"),
    ("proxy_on_done", "(param i32) (result i32)"),
    ("proxy_on_delete", "(param i32)"),
];

/// Which of [`CHAINED`] a module exports (bit `i` for `CHAINED[i]`).
fn exported(m: &Module) -> u8 {
    CHAINED
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| m.get_export(name).is_some())
        .fold(0, |bits, (i, _)| bits | (1 << i))
}

/// The glue's text for a filter exporting `bits` of [`CHAINED`].
fn source(bits: u8) -> String {
    let has = |i: usize| bits & (1 << i) != 0;
    let mut wat = String::from("(module\n");
    for (i, (name, sig)) in CHAINED.iter().enumerate() {
        if has(i) {
            wat.push_str(&format!("  (import \"f\" \"{name}\" (func $f{i} {sig}))\n"));
        }
    }
    let call = |i: usize, args: &str, drop: bool| -> String {
        match (has(i), drop) {
            (false, _) => String::new(),
            (true, false) => format!("    (call $f{i} {args})\n"),
            (true, true) => format!("    (drop (call $f{i} {args}))\n"),
        }
    };
    let ctx = "(local.get 0)";
    wat.push_str("  (func (export \"open\") (param i32 i32 i32 i32) (result i32)\n");
    wat.push_str(&call(0, "(local.get 0) (local.get 1)", false));
    wat.push_str(if has(1) {
        "    (call $f1 (local.get 0) (local.get 2) (local.get 3)))\n"
    } else {
        "    (i32.const 0))\n"
    });
    for (export, log) in [("end", false), ("end_log", true)] {
        wat.push_str(&format!("  (func (export \"{export}\") (param i32)\n"));
        if log {
            wat.push_str(&call(2, ctx, false));
        }
        wat.push_str(&call(3, ctx, true));
        wat.push_str(&call(4, ctx, false));
        wat.push_str("  )\n");
    }
    wat.push(')');
    wat
}

/// The glue modules compiled in this process, by the exports they chain.
#[derive(Default)]
pub struct GlueModules(Mutex<HashMap<u8, Module>>);

impl GlueModules {
    /// The glue for `filter` (compiled on first use of its set of exports).
    pub fn of(&self, engine: &Engine, filter: &Module) -> wasmtime::Result<Module> {
        let bits = exported(filter);
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = kept.get(&bits) {
            return Ok(m.clone());
        }
        let m = Module::new(engine, wat::parse_str(source(bits))?)?;
        kept.insert(bits, m.clone());
        Ok(m)
    }
}

/// The glue's entries in one store.
pub struct Glue {
    /// `open(ctx, root, headers, end_of_stream)`: context create, then request headers
    /// (their action; Continue when not exported).
    pub open: TypedFunc<(i32, i32, i32, i32), i32>,
    /// `end(ctx)`: done, delete.
    pub end: TypedFunc<i32, ()>,
    /// `end_log(ctx)`: log, done, delete.
    pub end_log: TypedFunc<i32, ()>,
}

impl Glue {
    /// Instantiates `glue` in `store` over the exports of the filter's `inst`.
    pub fn new<T>(store: &mut Store<T>, glue: &Module, inst: &Instance) -> wasmtime::Result<Glue> {
        let mut imports: Vec<Extern> = Vec::new();
        for i in glue.imports() {
            let f = inst.get_func(&mut *store, i.name()).ok_or_else(|| {
                wasmtime::Error::msg(format!("the filter no longer exports `{}`", i.name()))
            })?;
            imports.push(f.into());
        }
        let g = Instance::new(&mut *store, glue, &imports)?;
        Ok(Glue {
            open: g.get_typed_func(&mut *store, "open")?,
            end: g.get_typed_func(&mut *store, "end")?,
            end_log: g.get_typed_func(&mut *store, "end_log")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_of_exports_makes_a_valid_glue() {
        let engine = Engine::default();
        for bits in 0..32u8 {
            let text = source(bits);
            let bytes = wat::parse_str(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
            Module::new(&engine, bytes).unwrap_or_else(|e| panic!("{text}\n{e}"));
        }
    }
}
