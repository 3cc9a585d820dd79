//! The imports a filter may have: the proxy-wasm host functions (module `env`), WASI
//! preview 1, and functions the gateway knows but does not implement (gRPC streams,
//! foreign functions), which answer `Unimplemented` with whatever signature the filter
//! declares. Any other import is refused when the module is loaded.

use super::{buffers, configuration, grpc, headers, misc, properties, shared_data, Host};
use crate::wasm::abi::Status;
use crate::wasm::wasi;
use wasmtime::{Caller, ExternType, InstancePre, Linker, Module, Val};

/// proxy-wasm functions that exist but are not implemented here.
const UNIMPLEMENTED: &[&str] = &[
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_call_foreign_function",
    "proxy_get_downstream_data",
    "proxy_get_upstream_data",
];

/// Whether the host defines `module.name` itself.
fn defined(module: &str, name: &str) -> bool {
    match module {
        "env" => PROXY.contains(&name),
        m if wasi::MODULES.contains(&m) => wasi::IMPLEMENTED.contains(&name),
        _ => false,
    }
}

/// The proxy-wasm functions [`define_proxy`] defines.
const PROXY: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_send_local_response",
    "proxy_continue_stream",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_close_stream",
    "proxy_clear_route_cache",
    "proxy_done",
    "proxy_set_effective_context",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_get_configuration",
    "proxy_get_status",
];

/// Why the imports of a module cannot be satisfied.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the filter imports `{module}.{name}`, which this gateway does not provide")]
    Unknown { module: String, name: String },
    #[error("the filter's imports do not match the host's: {0}")]
    Mismatch(String),
}

fn ok(_: Caller<'_, Host>) -> i32 {
    Status::Ok as i32
}

/// The proxy-wasm functions of ABI 0.2.0 and 0.2.1.
fn define_proxy(l: &mut Linker<Host>) -> wasmtime::Result<()> {
    let m = "env";
    l.func_wrap(m, "proxy_log", misc::log)?;
    l.func_wrap(m, "proxy_get_log_level", misc::log_level)?;
    l.func_wrap(m, "proxy_get_current_time_nanoseconds", misc::current_time)?;
    l.func_wrap(m, "proxy_set_tick_period_milliseconds", misc::set_tick)?;
    l.func_wrap(m, "proxy_get_buffer_bytes", buffers::get_bytes)?;
    l.func_wrap(m, "proxy_get_buffer_status", buffers::get_status)?;
    l.func_wrap(m, "proxy_set_buffer_bytes", buffers::set_bytes)?;
    l.func_wrap(m, "proxy_get_header_map_value", headers::get_value)?;
    l.func_wrap(m, "proxy_add_header_map_value", headers::add_value)?;
    l.func_wrap(m, "proxy_replace_header_map_value", headers::replace_value)?;
    l.func_wrap(m, "proxy_remove_header_map_value", headers::remove_value)?;
    l.func_wrap(m, "proxy_get_header_map_pairs", headers::get_pairs)?;
    l.func_wrap(m, "proxy_set_header_map_pairs", headers::set_pairs_call)?;
    l.func_wrap(m, "proxy_get_header_map_size", headers::get_size)?;
    l.func_wrap(m, "proxy_get_property", properties::get)?;
    l.func_wrap(m, "proxy_set_property", properties::set_call)?;
    l.func_wrap(m, "proxy_get_shared_data", shared_data::get_data)?;
    l.func_wrap(m, "proxy_set_shared_data", shared_data::set_data)?;
    l.func_wrap(
        m,
        "proxy_register_shared_queue",
        shared_data::register_queue,
    )?;
    l.func_wrap(m, "proxy_resolve_shared_queue", shared_data::resolve_queue)?;
    l.func_wrap(m, "proxy_enqueue_shared_queue", shared_data::enqueue)?;
    l.func_wrap(m, "proxy_dequeue_shared_queue", shared_data::dequeue)?;
    l.func_wrap(m, "proxy_send_local_response", misc::local_response)?;
    l.func_wrap(
        m,
        "proxy_continue_stream",
        |mut c: Caller<'_, Host>, _: i32| misc::resume(&mut c),
    )?;
    l.func_wrap(m, "proxy_continue_request", |mut c: Caller<'_, Host>| {
        misc::resume(&mut c)
    })?;
    l.func_wrap(m, "proxy_continue_response", |mut c: Caller<'_, Host>| {
        misc::resume(&mut c)
    })?;
    l.func_wrap(m, "proxy_close_stream", |_: Caller<'_, Host>, _: i32| {
        Status::Ok as i32
    })?;
    l.func_wrap(m, "proxy_clear_route_cache", ok)?;
    l.func_wrap(m, "proxy_done", ok)?;
    l.func_wrap(
        m,
        "proxy_set_effective_context",
        |_: Caller<'_, Host>, _: i32| Status::Ok as i32,
    )?;
    l.func_wrap(m, "proxy_http_call", misc::http_call)?;
    l.func_wrap(m, "proxy_grpc_call", grpc::call)?;
    l.func_wrap(m, "proxy_grpc_cancel", grpc::cancel)?;
    l.func_wrap(m, "proxy_grpc_close", grpc::cancel)?;
    l.func_wrap(m, "proxy_define_metric", misc::define_metric)?;
    l.func_wrap(m, "proxy_increment_metric", misc::increment_metric)?;
    l.func_wrap(m, "proxy_record_metric", misc::record_metric)?;
    l.func_wrap(m, "proxy_get_metric", misc::get_metric)?;
    l.func_wrap(
        m,
        "proxy_get_configuration",
        configuration::get_configuration,
    )?;
    l.func_wrap(m, "proxy_get_status", configuration::get_status)?;
    Ok(())
}

/// A function of the filter's own signature that answers `value` (its first result).
fn stub(
    l: &mut Linker<Host>,
    module: &str,
    name: &str,
    ty: wasmtime::FuncType,
    value: i32,
) -> wasmtime::Result<()> {
    l.func_new(module, name, ty, move |_c, _params, results| {
        if let Some(r) = results.first_mut() {
            *r = match r {
                Val::I64(_) => Val::I64(i64::from(value)),
                _ => Val::I32(value),
            };
        }
        Ok(())
    })?;
    Ok(())
}

/// Links `module`: the host's functions, stubs for known unimplemented ones; an
/// import of anything else is refused.
pub fn link(engine: &wasmtime::Engine, module: &Module) -> Result<InstancePre<Host>, LinkError> {
    let mut l = Linker::new(engine);
    l.allow_shadowing(true);
    let mismatch = |e: wasmtime::Error| LinkError::Mismatch(format!("{e:#}"));
    define_proxy(&mut l).map_err(mismatch)?;
    for w in wasi::MODULES {
        wasi::define(&mut l, w).map_err(mismatch)?;
    }
    for imp in module.imports() {
        let (m, n) = (imp.module(), imp.name());
        let ExternType::Func(ty) = imp.ty() else {
            // memories and tables are not provided: only `env.memory` could be, and no
            // SDK imports one
            return Err(LinkError::Unknown {
                module: m.into(),
                name: n.into(),
            });
        };
        if defined(m, n) {
            continue;
        }
        if m == "env" && UNIMPLEMENTED.contains(&n) {
            stub(&mut l, m, n, ty, Status::Unimplemented as i32).map_err(mismatch)?;
        } else if wasi::MODULES.contains(&m) && wasi::KNOWN.contains(&n) {
            stub(&mut l, m, n, ty, wasi::ENOSYS).map_err(mismatch)?;
        } else {
            return Err(LinkError::Unknown {
                module: m.into(),
                name: n.into(),
            });
        }
    }
    l.instantiate_pre(module).map_err(mismatch)
}
