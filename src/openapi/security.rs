//! Security requirements of a route from its plugins' schemes (global ones included):
//! each plugin that authenticates gives its alternatives ([`gateway_plugins::ApiDoc`]'s
//! `security`). Plugins of one chain must all pass, so their schemes form one
//! requirement; a plugin with two alternatives (an API key in a header or a query
//! parameter) gives two.

use gateway_plugins::ApiDoc;
use serde_json::{json, Map, Value};

/// The schemes of a chain (added to `schemes`) and the operation's `security`
/// (alternatives, each a set of schemes that must all pass); `None` when no plugin
/// authenticates.
pub fn requirements(chain: &[ApiDoc], schemes: &mut Map<String, Value>) -> Option<Value> {
    // each plugin: its alternatives; the requirement is every combination
    let mut combos: Vec<Map<String, Value>> = vec![Map::new()];
    let mut any = false;
    for alts in chain.iter().map(|d| &d.security) {
        if alts.is_empty() {
            continue;
        }
        any = true;
        let mut next = Vec::with_capacity(combos.len() * alts.len());
        for c in &combos {
            for (k, scheme) in alts {
                schemes.insert(k.clone(), scheme.clone());
                let mut c = c.clone();
                c.insert(k.clone(), json!([]));
                next.push(c);
            }
        }
        combos = next;
    }
    any.then(|| Value::Array(combos.into_iter().map(Value::Object).collect()))
}
