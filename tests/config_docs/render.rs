//! Walks the config schema beside `config/example.toml` and renders the generated part of
//! `docs/config.md`: one table per config table, keys in the example's order, with type,
//! default, an example line from `config/example.toml` and the schema's description.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;
use toml_edit::{DocumentMut, Item};

pub const GENERATED_BEGIN: &str =
    "<!-- BEGIN GENERATED: SWITCHYARD_UPDATE_DOCS=1 cargo test --test config_docs -->";
pub const GENERATED_END: &str = "<!-- END GENERATED -->";

/// `config/example.toml` with its commented-out keys restored: a line whose `#` starts it (or
/// is indented by at most two spaces, inside an array) and is followed by `key = …` or
/// `{ key = …` is a key the example shows without setting, usually because the file it
/// names does not exist beside the example.
pub fn uncomment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let rest = line.trim_start().strip_prefix("# ");
        let is_key = rest.is_some_and(|r| {
            let r = r.strip_prefix("{ ").unwrap_or(r);
            let name_len = r
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(0);
            name_len > 0 && r[name_len..].starts_with(" = ")
        });
        match rest {
            Some(rest) if is_key && indent <= 2 => {
                out.push_str(&line[..indent]);
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The schema and the example, walked together.
pub struct Doc<'a> {
    schema: &'a Value,
    example: DocumentMut,
}

/// One config table to document: where it is, its schema, and its example entries.
struct Table<'a> {
    /// How a user finds it, such as `[listen]`, `[upstreams.<name>]` or `[[routes]] shadow`.
    title: String,
    /// Dotted path for key lists, such as `routes[].shadow`.
    path: String,
    description: Option<&'a str>,
    schema: &'a Value,
    examples: Vec<Item>,
}

impl<'a> Doc<'a> {
    pub fn new(schema: &'a Value, example: &str) -> Doc<'a> {
        let example = example
            .parse::<DocumentMut>()
            .unwrap_or_else(|e| panic!("config/example.toml: {e}"));
        Doc { schema, example }
    }

    /// Follows `$ref` and the one-element `allOf` draft 7 wraps a described `$ref` in.
    fn resolve(&self, mut node: &'a Value) -> &'a Value {
        loop {
            if let Some(name) = node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/definitions/"))
            {
                node = &self.schema["definitions"][name];
            } else if let Some([only]) = node
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                node = only;
            } else {
                return node;
            }
        }
    }

    fn properties(&self, node: &'a Value) -> Option<&'a serde_json::Map<String, Value>> {
        self.resolve(node)
            .get("properties")
            .and_then(Value::as_object)
    }

    /// Values of a map whose entries are tables (`[upstreams.<name>]`).
    fn map_of_tables(&self, node: &'a Value) -> Option<&'a Value> {
        let values = self.resolve(node).get("additionalProperties")?;
        self.properties(values).map(|_| values)
    }

    /// Items of an array whose elements are tables (`[[routes]]`, tenant sources).
    fn array_of_tables(&self, node: &'a Value) -> Option<&'a Value> {
        let items = self.resolve(node).get("items")?;
        self.properties(items).map(|_| items)
    }

    /// Every key path the schema defines, such as `upstreams.*.origins` or
    /// `routes[].shadow.percent`.
    pub fn schema_keys(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect_schema_keys(self.schema, "", &mut out);
        out
    }

    fn collect_schema_keys(&self, node: &'a Value, path: &str, out: &mut BTreeSet<String>) {
        if let Some(props) = self.properties(node) {
            for (key, sub) in props {
                let p = join(path, key);
                out.insert(p.clone());
                self.collect_schema_keys(sub, &p, out);
            }
        } else if let Some(values) = self.map_of_tables(node) {
            self.collect_schema_keys(values, &format!("{path}.*"), out);
        } else if let Some(items) = self.array_of_tables(node) {
            self.collect_schema_keys(items, &format!("{path}[]"), out);
        }
    }

    /// Every key path the example sets, and the keys the schema does not know.
    pub fn example_keys(&self) -> (BTreeSet<String>, Vec<String>) {
        let mut shown = BTreeSet::new();
        let mut unknown = Vec::new();
        let root = Item::Table(self.example.as_table().clone());
        self.collect_example_keys(self.schema, &root, "", &mut shown, &mut unknown);
        (shown, unknown)
    }

    fn collect_example_keys(
        &self,
        node: &'a Value,
        item: &Item,
        path: &str,
        shown: &mut BTreeSet<String>,
        unknown: &mut Vec<String>,
    ) {
        if let Some(props) = self.properties(node) {
            for (key, value) in entries(item) {
                let p = join(path, &key);
                match props.get(&key) {
                    Some(sub) => {
                        shown.insert(p.clone());
                        self.collect_example_keys(sub, &value, &p, shown, unknown);
                    }
                    None => unknown.push(p),
                }
            }
        } else if let Some(values) = self.map_of_tables(node) {
            for (_, value) in entries(item) {
                self.collect_example_keys(values, &value, &format!("{path}.*"), shown, unknown);
            }
        } else if let Some(items) = self.array_of_tables(node) {
            for element in elements(item) {
                self.collect_example_keys(items, &element, &format!("{path}[]"), shown, unknown);
            }
        }
    }

    /// The generated part of `docs/config.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mut tables = Vec::new();
        let root = Item::Table(self.example.as_table().clone());
        self.tables(self.schema, "", "", None, vec![root], &mut tables);
        // The root table has no keys of its own: every section is a table below it.
        for table in tables.iter().skip(1) {
            self.render_table(table, &mut out);
        }
        self.render_value_types(&mut out);
        out
    }

    /// Lists `node` and every table below it, depth first.
    fn tables(
        &self,
        node: &'a Value,
        title: &str,
        path: &str,
        description: Option<&'a str>,
        examples: Vec<Item>,
        out: &mut Vec<Table<'a>>,
    ) {
        let Some(props) = self.properties(node) else {
            return;
        };
        out.push(Table {
            title: title.to_owned(),
            path: path.to_owned(),
            description,
            schema: node,
            examples: examples.clone(),
        });
        for key in self.ordered_keys(props, &examples) {
            let sub = &props[&key];
            let desc = sub.get("description").and_then(Value::as_str);
            let values: Vec<Item> = examples
                .iter()
                .flat_map(entries)
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .collect();
            let p = join(path, &key);
            if self.properties(sub).is_some() {
                let t = if title.is_empty() {
                    format!("[{key}]")
                } else {
                    format!("{title} {key}")
                };
                self.tables(sub, &t, &p, desc, values, out);
            } else if let Some(v) = self.map_of_tables(sub) {
                let inner: Vec<Item> = values.iter().flat_map(entries).map(|(_, v)| v).collect();
                let t = format!("[{key}.<name>]");
                self.tables(v, &t, &format!("{p}.*"), desc, inner, out);
            } else if let Some(items) = self.array_of_tables(sub) {
                let inner: Vec<Item> = values.iter().flat_map(elements).collect();
                let t = if title.is_empty() {
                    format!("[[{key}]]")
                } else {
                    format!("{title} {key} = [{{ … }}]")
                };
                self.tables(items, &t, &format!("{p}[]"), desc, inner, out);
            }
        }
    }

    /// The table's keys in the example's order, then any the example lacks, by name.
    fn ordered_keys(
        &self,
        props: &serde_json::Map<String, Value>,
        examples: &[Item],
    ) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for (key, _) in examples.iter().flat_map(entries) {
            if props.contains_key(&key) && !keys.contains(&key) {
                keys.push(key);
            }
        }
        for key in props.keys() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        keys
    }

    fn render_table(&self, table: &Table<'a>, out: &mut String) {
        let _ = writeln!(
            out,
            "\n### <a id=\"table-{}\"></a>`{}`\n",
            anchor(&table.path),
            table.title
        );
        if let Some(d) = table.description {
            let _ = writeln!(out, "{}\n", one_line(d));
        }
        let Some(props) = self.properties(table.schema) else {
            return;
        };
        let _ = writeln!(out, "| Key | Type | Default | Example | Description |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for key in self.ordered_keys(props, &table.examples) {
            let sub = &props[&key];
            let path = join(&table.path, &key);
            let below = if self.properties(sub).is_some() {
                Some(path.clone())
            } else if self.map_of_tables(sub).is_some() {
                Some(format!("{path}.*"))
            } else if self.array_of_tables(sub).is_some() {
                Some(format!("{path}[]"))
            } else {
                None
            };
            let example = match below {
                // A table of its own is documented, with its examples, in its own section.
                Some(p) => format!("[table below](#table-{})", anchor(&p)),
                None => table
                    .examples
                    .iter()
                    .flat_map(entries)
                    .find(|(k, _)| *k == key)
                    .map(|(k, v)| format!("`{k} = {}`", cell(&one_line(&item_text(&v)))))
                    .unwrap_or_default(),
            };
            let default = sub
                .get("default")
                .map(|d| format!("`{}`", cell(&toml_text(d))))
                .unwrap_or_else(|| "—".to_owned());
            let description = sub
                .get("description")
                .and_then(Value::as_str)
                .map(one_line)
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| <a id=\"{}\"></a>`{key}` | {} | {default} | {example} | {} |",
                anchor(&path),
                self.type_name(sub),
                cell(&description)
            );
        }
    }

    /// The type of a value as a reader wants it: `string`, `integer (1-1024)`, a link to a
    /// value type, the values of an enum, or `table` (documented below).
    fn type_name(&self, node: &'a Value) -> String {
        if let Some(name) = ref_name(node) {
            let def = &self.schema["definitions"][name];
            if let Some(variants) = def.get("oneOf").and_then(Value::as_array) {
                let values: Vec<String> = variants
                    .iter()
                    .filter_map(|v| v.get("const"))
                    .map(|c| format!("`{c}`"))
                    .collect();
                return values.join(" \\| ");
            }
            if def.get("properties").is_some() {
                return "table".to_owned();
            }
            return format!(
                "[{}](#{})",
                name.to_ascii_lowercase(),
                name.to_ascii_lowercase()
            );
        }
        let node = self.resolve(node);
        let ty = node.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "array" if self.array_of_tables(node).is_some() => "array of tables".to_owned(),
            "array" => format!(
                "array of {}",
                node.get("items")
                    .map_or("values".to_owned(), |i| self.type_name(i))
            ),
            "object" if node.get("properties").is_some() => "table".to_owned(),
            "object" => match node.get("additionalProperties") {
                Some(v) if v.is_object() && self.properties(v).is_some() => {
                    "tables by name".to_owned()
                }
                Some(v) if v.is_object() => format!("table of {}", self.type_name(v)),
                _ => "table".to_owned(),
            },
            "integer" | "number" => match (node.get("minimum"), node.get("maximum")) {
                (Some(lo), Some(hi)) => format!("{ty} ({lo}-{hi})"),
                (Some(lo), None) => format!("{ty} (≥ {lo})"),
                _ => ty.to_owned(),
            },
            "" => "value".to_owned(),
            other => other.to_owned(),
        }
    }

    /// The value types links point at: their description and, where there is one, pattern.
    fn render_value_types(&self, out: &mut String) {
        let _ = writeln!(out, "\n## Value types\n");
        let Some(defs) = self.schema.get("definitions").and_then(Value::as_object) else {
            return;
        };
        for (name, def) in defs {
            if def.get("properties").is_some() || def.get("oneOf").is_some() {
                continue;
            }
            let _ = writeln!(
                out,
                "### <a id=\"{}\"></a>{}\n",
                name.to_ascii_lowercase(),
                name.to_ascii_lowercase()
            );
            if let Some(d) = def.get("description").and_then(Value::as_str) {
                let _ = writeln!(out, "{}\n", one_line(d));
            }
            if let Some(examples) = def.get("examples").and_then(Value::as_array) {
                let list: Vec<String> = examples
                    .iter()
                    .map(|e| format!("`{}`", toml_text(e)))
                    .collect();
                let _ = writeln!(out, "Examples: {}.\n", list.join(", "));
            }
        }
    }
}

fn ref_name(node: &Value) -> Option<&str> {
    let direct = node.get("$ref");
    let wrapped = node
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|f| f.get("$ref"));
    direct
        .or(wrapped)
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/definitions/"))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// An HTML anchor for a key path: `routes[].shadow.percent` → `routes-shadow-percent`.
fn anchor(path: &str) -> String {
    path.replace("[]", "").replace(".*", "").replace('.', "-")
}

/// The entries of a table or inline table.
fn entries(item: &Item) -> Vec<(String, Item)> {
    match item {
        Item::Table(t) => t.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect(),
        Item::Value(toml_edit::Value::InlineTable(t)) => t
            .iter()
            .map(|(k, v)| (k.to_owned(), Item::Value(v.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

/// The elements of an array or array of tables.
fn elements(item: &Item) -> Vec<Item> {
    match item {
        Item::ArrayOfTables(a) => a.iter().map(|t| Item::Table(t.clone())).collect(),
        Item::Value(toml_edit::Value::Array(a)) => {
            a.iter().map(|v| Item::Value(v.clone())).collect()
        }
        _ => Vec::new(),
    }
}

/// A value as the example writes it, without its comments and surrounding space.
fn item_text(item: &Item) -> String {
    match item {
        Item::Value(v) => {
            let mut v = v.clone();
            v.decor_mut().clear();
            v.to_string().trim().to_owned()
        }
        Item::Table(_) | Item::ArrayOfTables(_) => "{ … }".to_owned(),
        Item::None => String::new(),
    }
}

/// A JSON value written as TOML (defaults and examples of the schema).
fn toml_text(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_text).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}
