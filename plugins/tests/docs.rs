//! Every built-in plugin has its user page in docs/plugins/, and the page names each of
//! its settings: a plugin's docs travel with it (one registry line makes it appear in
//! routes.yaml, the schema and /openapi.json; this test makes it appear in the docs).

#![allow(clippy::unwrap_used)]

use gateway_plugins::BUILT_IN;
use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use std::path::Path;

/// The page that documents `name`: `docs/plugins/<name>.md`, or a page of a family
/// (`headers.md` for `request_headers`) whose examples configure it by name.
fn page_of(dir: &Path, name: &str) -> Option<(String, String)> {
    let own = dir.join(format!("{name}.md"));
    if let Ok(text) = std::fs::read_to_string(&own) {
        return Some((own.display().to_string(), text));
    }
    let mut pages: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    pages.into_iter().find_map(|p| {
        let text = std::fs::read_to_string(&p).ok()?;
        let configured = [format!("name: {name}"), format!("`{name}`")]
            .iter()
            .any(|s| text.contains(s.as_str()));
        configured.then(|| (p.display().to_string(), text))
    })
}

#[test]
fn every_plugin_has_a_page_that_names_its_settings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugins");
    let mut missing = Vec::new();
    for spec in BUILT_IN {
        let Some((page, text)) = page_of(&dir, spec.name) else {
            missing.push(format!("{}: no page in docs/plugins/", spec.name));
            continue;
        };
        let mut gen = SchemaGenerator::default();
        let Schema::Object(obj) = (spec.schema)(&mut gen) else {
            continue;
        };
        let Some(props) = obj.object.as_ref().map(|o| &o.properties) else {
            continue;
        };
        for setting in props.keys() {
            let named = [format!("`{setting}`"), format!("{setting}:")]
                .iter()
                .any(|s| text.contains(s.as_str()));
            if !named {
                missing.push(format!("{}: {page} does not name `{setting}`", spec.name));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
