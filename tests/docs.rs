//! The hand-written reference pages name what the code has: every metric registered in
//! `src/telemetry.rs` is in `docs/metrics.md` and every metric named there exists; every call
//! of the admin router (`src/admin.rs`, `src/admin/`) is in `docs/admin-api.md` and every call
//! listed there exists; no page links outside the repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn set(iter: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    iter.into_iter().collect()
}

#[test]
fn metrics_page_lists_every_metric_and_no_other() {
    // Read from the source: a family without a series yet renders nothing, so the registry's
    // own output would hide the metrics a fresh gateway has not used.
    let source = read(&root().join("src/telemetry.rs"));
    let register = regex::Regex::new(r#"register\(\s*"([a-z0-9_]+)""#).expect("regex");
    let registered = set(register
        .captures_iter(&source)
        .map(|c| format!("switchyard_{}", &c[1])));
    assert!(registered.len() >= 10, "{registered:?}");
    let page = read(&root().join("docs/metrics.md"));
    let name = regex::Regex::new(r"switchyard_[a-z0-9_]+").expect("regex");
    // Counters are exposed with `_total`, histograms as `_bucket`, `_sum` and `_count`.
    let named = set(name.find_iter(&page).map(|m| {
        let n = m.as_str();
        ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| n.strip_suffix(s))
            .unwrap_or(n)
            .to_owned()
    }));
    let missing: Vec<_> = registered.difference(&named).collect();
    assert!(missing.is_empty(), "docs/metrics.md lacks {missing:?}");
    let unknown: Vec<_> = named.difference(&registered).collect();
    assert!(
        unknown.is_empty(),
        "docs/metrics.md names unknown metrics {unknown:?}"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn admin_api_page_lists_every_call_and_no_other() {
    let mut files = vec![root().join("src/admin.rs")];
    rust_files(&root().join("src/admin"), &mut files);
    // `.route("/path", get(a).post(b))`: every method the path answers (a handler may be a
    // closure, so the methods are read up to the next `.route(`).
    let path = regex::Regex::new(r#"^\s*"([^"]+)","#).expect("regex");
    let method = regex::Regex::new(r"(?:^|[\s.])(get|post|put|patch|delete)\(").expect("regex");
    let mut routed = BTreeSet::new();
    for file in &files {
        for call in read(file).split(".route(").skip(1) {
            let Some(p) = path.captures(call) else {
                continue;
            };
            for m in method.captures_iter(&call[p[0].len()..]) {
                routed.insert(format!("{} {}", m[1].to_ascii_uppercase(), &p[1]));
            }
        }
    }
    assert!(routed.len() >= 10, "{routed:?}");
    let page = read(&root().join("docs/admin-api.md"));
    let missing: Vec<_> = routed
        .iter()
        .filter(|call| !page.contains(&format!("`{call}`")))
        .collect();
    assert!(missing.is_empty(), "docs/admin-api.md lacks {missing:?}");
    let listed = regex::Regex::new(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`").expect("regex");
    let unknown: Vec<String> = listed
        .captures_iter(&page)
        .map(|c| format!("{} {}", &c[1], &c[2]))
        .filter(|call| !routed.contains(call))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/admin-api.md lists unknown calls {unknown:?}"
    );
}

#[test]
fn no_page_links_outside_the_repository() {
    let mut pages = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "md") {
            pages.push(entry.path());
        }
    }
    let link = regex::Regex::new(r"\]\(([^)#\s]+)").expect("regex");
    for page in pages {
        let text = read(&page);
        let dir = page.parent().unwrap_or(Path::new("."));
        for c in link.captures_iter(&text) {
            let target = &c[1];
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let resolved = dir.join(target);
            assert!(
                resolved.exists(),
                "{}: link to {target} points at nothing",
                page.display()
            );
            let inside = resolved
                .canonicalize()
                .is_ok_and(|p| p.starts_with(root().canonicalize().unwrap_or(root())));
            assert!(
                inside,
                "{}: link to {target} leaves the repository",
                page.display()
            );
        }
    }
}
