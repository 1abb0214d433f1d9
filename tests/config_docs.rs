//! Keeps the config's reference in step with the code: the JSON Schema derived from the
//! loader's own structs (`switchyard::config::schema`) is the one source; `config/example.toml`,
//! `config/demo.toml`, `docs/config.schema.json` and the generated part of `docs/config.md`
//! are checked against it.
//!
//! Regenerate the generated files after changing a config key:
//!
//! ```sh
//! SWITCHYARD_UPDATE_DOCS=1 cargo test --test config_docs
//! ```

#[path = "config_docs/render.rs"]
mod render;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use render::{Doc, GENERATED_BEGIN, GENERATED_END};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn schema() -> Value {
    serde_json::to_value(switchyard::config::schema::json_schema()).expect("schema as JSON")
}

fn updating() -> bool {
    std::env::var("SWITCHYARD_UPDATE_DOCS").is_ok_and(|v| v == "1")
}

/// Compares `path` with `expected`, or rewrites it when `SWITCHYARD_UPDATE_DOCS=1`.
fn check_generated(path: &str, expected: &str) {
    let full = root().join(path);
    let actual = std::fs::read_to_string(&full).unwrap_or_default();
    if actual == expected {
        return;
    }
    if updating() {
        std::fs::write(&full, expected).unwrap_or_else(|e| panic!("{path}: {e}"));
        return;
    }
    let line = actual
        .lines()
        .zip(expected.lines())
        .position(|(a, b)| a != b)
        .map_or_else(
            || actual.lines().count().min(expected.lines().count()) + 1,
            |i| i + 1,
        );
    panic!(
        "{path} is stale (first difference on line {line}); regenerate it with\n\n    SWITCHYARD_UPDATE_DOCS=1 cargo test --test config_docs\n"
    );
}

/// A TOML config as JSON, for the validator.
fn as_json(path: &str, text: &str) -> Value {
    toml::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn validate(schema: &Value, path: &str, text: &str) {
    let validator = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    let instance = as_json(path, text);
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{path} does not validate against the config schema:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_checked_in_schema_is_current() {
    check_generated(
        "docs/config.schema.json",
        &switchyard::config::schema::json_schema_text(),
    );
}

#[test]
fn the_config_reference_is_current() {
    let example = render::uncomment(&read("config/example.toml"));
    let generated = Doc::new(&schema(), &example).markdown();
    let current = read("docs/config.md");
    let (Some(begin), Some(end)) = (current.find(GENERATED_BEGIN), current.find(GENERATED_END))
    else {
        panic!("docs/config.md lacks the {GENERATED_BEGIN} … {GENERATED_END} markers");
    };
    let expected = format!(
        "{}{GENERATED_BEGIN}\n{generated}{}",
        &current[..begin],
        &current[end..]
    );
    check_generated("docs/config.md", &expected);
}

#[test]
fn the_example_and_demo_configs_validate_against_the_schema() {
    let schema = schema();
    for path in ["config/example.toml", "config/demo.toml"] {
        validate(&schema, path, &read(path));
    }
    // The keys the example leaves commented out (their files do not exist beside it) must be
    // valid too, once uncommented.
    let uncommented = render::uncomment(&read("config/example.toml"));
    validate(&schema, "config/example.toml (uncommented)", &uncommented);
}

#[test]
fn the_schema_rejects_what_the_loader_rejects() {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    const LISTEN: &str = "[listen]\nhttp = \"127.0.0.1:0\"\n";
    const UP: &str = "[upstreams.legacy]\norigins = [\"http://127.0.0.1:1\"]\n";
    const ROUTE: &str = "[[routes]]\nname = \"r\"\npath = \"/r\"\n";
    let good = format!("{LISTEN}{UP}{ROUTE}");
    assert!(validator.is_valid(&as_json("inline", &good)));
    assert!(switchyard::config::load_str(&good, Path::new("inline.toml")).is_ok());
    for bad in [
        format!("{LISTEN}htpp = \"0.0.0.0:8080\"\n{UP}"),
        format!("{LISTEN}max_header_bytes = \"64 kilobytes\"\n{UP}"),
        format!("{LISTEN}{UP}timeout = 30\n"),
        format!("{LISTEN}{UP}{ROUTE}state = \"half\"\n"),
        format!("{LISTEN}{UP}{ROUTE}percent = 101\n"),
        format!("{LISTEN}{UP}{ROUTE}shadow = {{ percent = 5, max_body = \"1.5MiB\" }}\n"),
        format!("{LISTEN}{UP}{ROUTE}compare = {{ ignored = [\"/a\"] }}\n"),
        format!("{LISTEN}{UP}[nope]\n"),
    ] {
        let bad = bad.as_str();
        let instance = as_json("inline", bad);
        assert!(!validator.is_valid(&instance), "the schema accepts:\n{bad}");
        assert!(
            switchyard::config::load_str(bad, Path::new("inline.toml")).is_err(),
            "the loader accepts:\n{bad}"
        );
    }
}

#[test]
fn every_schema_key_is_in_the_example_and_every_example_key_in_the_schema() {
    let schema = schema();
    let example = render::uncomment(&read("config/example.toml"));
    let doc = Doc::new(&schema, &example);
    let documented: BTreeSet<String> = doc.schema_keys();
    let (shown, unknown) = doc.example_keys();
    assert!(
        unknown.is_empty(),
        "config/example.toml has keys the schema does not know: {unknown:?}"
    );
    let missing: Vec<&String> = documented.difference(&shown).collect();
    assert!(
        missing.is_empty(),
        "config/example.toml does not show these keys (add them, commented out if they name a file): {missing:?}"
    );
}
