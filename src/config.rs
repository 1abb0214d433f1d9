//! Loading a config: TOML text (and every file it names) → a validated `rules::RuleSet`, or
//! every error found, each as `file:line:col: message`.
//!
//! Two layers: `file` holds the raw serde structs (unknown keys are errors, positions kept),
//! `compile` turns them into the rule set and runs every semantic check. Sections are
//! deserialized one by one, so a typo in one section does not hide mistakes in another, and
//! after parsing every check runs: the user sees all problems at once.
//!
//! Relative paths in a config (tenant directory, JWKS, tokens, secrets, certificates, the
//! SQLite file) are relative to the config file's own directory.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::rules::RuleSet;

mod compile;
pub mod edit;
pub(crate) mod file;
pub mod schema;
pub mod source;
pub(crate) mod units;

/// One problem, at a 1-based position of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a config; never empty when returned as an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// One error about a whole file (it cannot be read, say), placed at its start.
    pub fn single(file: &Path, message: impl Into<String>) -> ConfigErrors {
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            message: message.into(),
        }])
    }
}

/// Reads the config file and every file it names, and compiles them.
pub fn load_file(path: &Path) -> Result<RuleSet, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, path),
        Err(e) => Err(ConfigErrors::single(
            path,
            format!("cannot read config file: {e}"),
        )),
    }
}

/// Compiles config text; `path` names it in messages and anchors its relative paths.
/// Referenced files are read from disk.
pub fn load_str(text: &str, path: &Path) -> Result<RuleSet, ConfigErrors> {
    compile::compile(text, path)
}

// === positions ===

/// Byte offsets → 1-based line and column (in characters) of one text.
pub(crate) struct Positions<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> Positions<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Positions { text, line_starts }
    }

    pub(crate) fn at(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, col + 1)
    }
}

/// Collects errors for one run of the loader.
pub(crate) struct Diag<'t> {
    file: PathBuf,
    positions: Positions<'t>,
    errors: Vec<ConfigError>,
}

impl<'t> Diag<'t> {
    pub(crate) fn new(file: &Path, text: &'t str) -> Self {
        Diag {
            file: file.to_path_buf(),
            positions: Positions::new(text),
            errors: Vec::new(),
        }
    }

    /// An error at a span of the main config.
    pub(crate) fn at(&mut self, span: Range<usize>, message: impl fmt::Display) {
        let (line, col) = self.positions.at(span.start);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            col,
            message: message.to_string(),
        });
    }

    /// An error at a position of another file.
    pub(crate) fn in_file(
        &mut self,
        file: &Path,
        line: usize,
        col: usize,
        message: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            file: file.to_path_buf(),
            line,
            col,
            message: message.into(),
        });
    }

    /// A toml error of the main config.
    pub(crate) fn toml(&mut self, e: &toml::de::Error) {
        self.at(e.span().unwrap_or(0..0), e.message().trim_end());
    }

    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        self.positions.at(offset)
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// All errors, the main config's first, each file's in position order.
    pub(crate) fn finish(mut self) -> ConfigErrors {
        let main = self.file.clone();
        self.errors.sort_by(|a, b| {
            (a.file != main, &a.file, a.line, a.col).cmp(&(b.file != main, &b.file, b.line, b.col))
        });
        self.errors.dedup();
        ConfigErrors(self.errors)
    }
}

/// An error of a TOML file other than the main config (tenant directory, tokens).
pub(crate) fn toml_error_in(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, col) = Positions::new(text).at(e.span().map_or(0, |s| s.start));
    ConfigError {
        file: file.to_path_buf(),
        line,
        col,
        message: e.message().trim_end().to_owned(),
    }
}

// === referenced files ===

/// Files the config names: where they are, the list the reloader watches, and a running hash
/// of their content.
pub(crate) struct Refs {
    base: PathBuf,
    files: Vec<PathBuf>,
    hasher: Sha256,
}

impl Refs {
    pub(crate) fn new(config: &Path) -> Self {
        let base = config
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Refs {
            base: base.to_path_buf(),
            files: Vec::new(),
            hasher: Sha256::new(),
        }
    }

    /// `name` relative to the config's directory (absolute names stay as they are).
    pub(crate) fn resolve(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// Reads a referenced file and records it.
    pub(crate) fn read(&mut self, name: &str) -> Result<(PathBuf, Vec<u8>), String> {
        let path = self.resolve(name);
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // Path and length delimit each file, so moving bytes between files changes the hash.
        self.hasher.update(path.to_string_lossy().as_bytes());
        self.hasher.update([0u8]);
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(&bytes);
        if !self.files.contains(&path) {
            self.files.push(path.clone());
        }
        Ok((path, bytes))
    }

    /// sha256 hex over every referenced file (path and content) and the config text, and the
    /// list of referenced files.
    pub(crate) fn finish(mut self, config_text: &str) -> (String, Vec<PathBuf>) {
        self.hasher.update(config_text.as_bytes());
        (hex::encode(self.hasher.finalize()), self.files)
    }
}

// === section-by-section parsing ===

const SECTIONS: &str =
    "listen, admin, tenant, upstreams, default, tenants, routes, shadow, store, telemetry";

fn section<T: DeserializeOwned>(value: Spanned<DeValue<'_>>, diag: &mut Diag<'_>) -> Option<T> {
    T::deserialize(ValueDeserializer::from(value))
        .map_err(|e| diag.toml(&e))
        .ok()
}

/// `[name.<key>]` tables: each entry deserialized on its own.
fn entries<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    what: &str,
    diag: &mut Diag<'_>,
) -> Option<Vec<(Spanned<String>, Option<T>)>> {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        diag.at(
            span,
            format!("`{what}` must be a table of named tables ([{what}.<name>])"),
        );
        return None;
    };
    Some(
        table
            .into_iter()
            .map(|(k, v)| {
                let key = Spanned::new(k.span(), k.into_inner().into_owned());
                (key, section(v, diag))
            })
            .collect(),
    )
}

/// Parses the main config into raw sections, collecting every syntax and shape error.
pub(crate) fn parse_sections(text: &str, diag: &mut Diag<'_>) -> Option<file::RawConfig> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in &errors {
            diag.toml(e);
        }
        return None;
    }
    let mut raw = file::RawConfig::default();
    for (key, value) in root.into_inner() {
        let key_span = key.span();
        match key.get_ref().as_ref() {
            "listen" => {
                raw.listen = section(value, diag);
                raw.failed.listen = raw.listen.is_none();
            }
            "admin" => raw.admin = section(value, diag),
            "tenant" => {
                raw.tenant = section(value, diag);
                raw.failed.tenant = raw.tenant.is_none();
            }
            "upstreams" => match entries(value, "upstreams", diag) {
                Some(list) => {
                    raw.failed.upstreams = list.iter().any(|(_, v)| v.is_none());
                    raw.upstreams = list;
                }
                None => raw.failed.upstreams = true,
            },
            "default" => {
                raw.default = section(value, diag);
                raw.failed.default = raw.default.is_none();
            }
            "tenants" => raw.tenants = entries(value, "tenants", diag).unwrap_or_default(),
            "routes" => {
                let span = value.span();
                match value.into_inner() {
                    DeValue::Array(items) => {
                        for item in items {
                            let item_span = item.span();
                            let route = section(item, diag);
                            raw.failed.routes |= route.is_none();
                            raw.routes.push((item_span, route));
                        }
                    }
                    _ => {
                        raw.failed.routes = true;
                        diag.at(
                            span,
                            "`routes` must be an array of tables: write each route as [[routes]]",
                        );
                    }
                }
            }
            "shadow" => raw.shadow = section(value, diag),
            "store" => raw.store = section(value, diag),
            "telemetry" => raw.telemetry = section(value, diag),
            other => diag.at(
                key_span,
                format!("unknown section `{other}`, expected one of {SECTIONS}"),
            ),
        }
    }
    Some(raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let p = Positions::new("ab\nc\u{e9}d\n\nx");
        assert_eq!(p.at(0), (1, 1));
        assert_eq!(p.at(1), (1, 2));
        assert_eq!(p.at(3), (2, 1));
        // After a two-byte character the column counts characters.
        assert_eq!(p.at(6), (2, 3));
        assert_eq!(p.at(8), (3, 1));
        assert_eq!(p.at(9), (4, 1));
        assert_eq!(p.at(100), (4, 2));
    }

    #[test]
    fn errors_display_as_file_line_col() {
        let errors = ConfigErrors(vec![
            ConfigError {
                file: "a.toml".into(),
                line: 3,
                col: 7,
                message: "first".into(),
            },
            ConfigError {
                file: "b.toml".into(),
                line: 1,
                col: 1,
                message: "second".into(),
            },
        ]);
        assert_eq!(errors.to_string(), "a.toml:3:7: first\nb.toml:1:1: second");
    }
}
