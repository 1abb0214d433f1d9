//! Apply an admin change to the config TEXT, keeping its comments and layout (`toml_edit`).
//!
//! Admin changes persist by rewriting the config file itself, so the file stays the one source
//! of truth: a restart, a `git diff` or a hand edit all see what the API did. The edit is purely
//! textual; whether the result is a valid config is decided afterwards by the same pipeline as
//! a hand edit (`Live::write_and_reload_from`), which refuses it whole when it is not.
//!
//! Supported: one `[[routes]]` entry found by `name` (array-of-tables or an inline array of
//! inline tables) — add/remove tenants in `tenants` and `exclude`, set `percent` and `state` —
//! and a tenant-wide `[tenants.<id>] side`. Missing keys and tables are created; a value that
//! is replaced keeps its surrounding whitespace and trailing comment.

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::rules::{RouteState, Side};

/// Changes to one route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteChange {
    pub tenants_add: Vec<String>,
    pub tenants_remove: Vec<String>,
    pub exclude_add: Vec<String>,
    pub exclude_remove: Vec<String>,
    /// 0..=100, kept to 0.01 % (the bucket resolution).
    pub percent: Option<f64>,
    pub state: Option<RouteState>,
    /// `guard.tripped`: set by a trip, removed by a re-arm (the `guard` table must exist).
    pub guard_tripped: Option<bool>,
    /// `rollout.paused`: set by a pause or an abort, removed by a resume (the `rollout` table
    /// must exist).
    pub schedule_paused: Option<bool>,
}

impl RouteChange {
    /// True when the change asks for nothing.
    pub fn is_empty(&self) -> bool {
        self == &RouteChange::default()
    }
}

/// One admin change to the config.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Edit the `[[routes]]` entry named `route`.
    Route { route: String, change: RouteChange },
    /// Tenant-wide cutover or hold: `[tenants.<tenant>] side`.
    TenantSide { tenant: String, side: Side },
}

/// Why a change could not be applied to the text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("the config file does not parse as TOML: {0}")]
    Parse(String),
    #[error("no [[routes]] entry named {0:?} in the config file")]
    NoRoute(String),
    #[error(
        "`{0}` in the config file is not of the expected kind (table or array); edit it by hand"
    )]
    Shape(String),
    #[error("percent must be a number from 0 to 100, not {0}")]
    BadPercent(f64),
    #[error("a tenant id cannot be empty")]
    EmptyTenant,
}

/// Apply `change` to the config `text` and return the new text. Text outside the edited
/// values is kept byte for byte.
pub fn apply(text: &str, change: &Change) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(e.to_string()))?;
    match change {
        Change::Route { route, change } => edit_route(&mut doc, route, change)?,
        Change::TenantSide { tenant, side } => set_tenant_side(&mut doc, tenant, *side)?,
    }
    Ok(doc.to_string())
}

fn edit_route(doc: &mut DocumentMut, name: &str, change: &RouteChange) -> Result<(), EditError> {
    let all = [
        &change.tenants_add,
        &change.tenants_remove,
        &change.exclude_add,
        &change.exclude_remove,
    ];
    if all.iter().any(|list| list.iter().any(|t| t.is_empty())) {
        return Err(EditError::EmptyTenant);
    }
    if let Some(p) = change.percent
        && !(p.is_finite() && (0.0..=100.0).contains(&p))
    {
        return Err(EditError::BadPercent(p));
    }
    let route = find_route(doc, name)?;
    let field = |key: &str| format!("routes.{name}.{key}");
    edit_list(
        route,
        "tenants",
        &change.tenants_add,
        &change.tenants_remove,
        &field("tenants"),
    )?;
    edit_list(
        route,
        "exclude",
        &change.exclude_add,
        &change.exclude_remove,
        &field("exclude"),
    )?;
    if let Some(p) = change.percent {
        set_value(route, "percent", percent_value(p));
    }
    if let Some(state) = change.state {
        set_value(route, "state", Value::from(state.as_str()));
    }
    if let Some(tripped) = change.guard_tripped {
        set_flag(route, "guard", "tripped", tripped, &field("guard"))?;
    }
    if let Some(paused) = change.schedule_paused {
        set_flag(route, "rollout", "paused", paused, &field("rollout"))?;
    }
    Ok(())
}

/// Set `table.key = true`, or remove the key for `false` (its default), in the route's
/// sub-table `table` (inline or not).
fn set_flag(
    route: &mut dyn TableLike,
    table: &str,
    key: &str,
    on: bool,
    path: &str,
) -> Result<(), EditError> {
    let sub = route
        .get_mut(table)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| EditError::Shape(path.into()))?;
    if on {
        set_value(sub, key, Value::from(true));
    } else {
        sub.remove(key);
    }
    Ok(())
}

fn find_route<'d>(
    doc: &'d mut DocumentMut,
    name: &str,
) -> Result<&'d mut dyn TableLike, EditError> {
    let is_named = |t: &dyn TableLike| t.get("name").and_then(Item::as_str) == Some(name);
    let found: Option<&mut dyn TableLike> = match doc.get_mut("routes") {
        None => None,
        Some(Item::ArrayOfTables(routes)) => routes
            .iter_mut()
            .find(|t| is_named(*t))
            .map(|t| t as &mut dyn TableLike),
        Some(Item::Value(Value::Array(routes))) => routes
            .iter_mut()
            .filter_map(Value::as_inline_table_mut)
            .find(|t| is_named(*t))
            .map(|t| t as &mut dyn TableLike),
        Some(_) => return Err(EditError::Shape("routes".into())),
    };
    found.ok_or_else(|| EditError::NoRoute(name.into()))
}

/// Remove then add tenant ids in the string array `key`, creating it when missing.
fn edit_list(
    table: &mut dyn TableLike,
    key: &str,
    add: &[String],
    remove: &[String],
    path: &str,
) -> Result<(), EditError> {
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    if !table.contains_key(key) {
        if add.is_empty() {
            return Ok(());
        }
        table.insert(key, Item::Value(Value::Array(Array::new())));
    }
    let array = table
        .get_mut(key)
        .and_then(Item::as_array_mut)
        .ok_or_else(|| EditError::Shape(path.into()))?;
    let mut i = array.len();
    while i > 0 {
        i -= 1;
        let removing = array
            .get(i)
            .and_then(Value::as_str)
            .is_some_and(|s| remove.iter().any(|r| r == s));
        if removing {
            remove_keeping_comments(array, i);
        }
    }
    for tenant in add {
        if array.iter().any(|v| v.as_str() == Some(tenant)) {
            continue;
        }
        push_like_siblings(array, tenant);
    }
    Ok(())
}

// In toml_edit an element's prefix holds what follows the previous comma: first the rest of
// the previous element's line (its trailing comment), then, after a newline, full-line comments
// and the indentation of this element. Removing an element keeps the former and drops its own
// trailing comment (the head of the next element's prefix).

fn prefix(v: &Value) -> String {
    v.decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_owned()
}

fn suffix(v: &Value) -> String {
    v.decor()
        .suffix()
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_owned()
}

/// `(rest of the previous line, everything after its newline)`.
fn split_line(text: &str) -> (&str, Option<&str>) {
    match text.split_once('\n') {
        Some((head, tail)) => (head, Some(tail)),
        None => (text, None),
    }
}

fn remove_keeping_comments(array: &mut Array, index: usize) {
    if index >= array.len() {
        return;
    }
    let removed = array.remove(index);
    let removed_prefix = prefix(&removed);
    let (head, _) = split_line(&removed_prefix);
    if let Some(next) = array.get_mut(index) {
        let next_prefix = prefix(next);
        let new_prefix = match split_line(&next_prefix) {
            (_, Some(tail)) => format!("{head}\n{tail}"),
            (_, None) => removed_prefix.clone(),
        };
        next.decor_mut().set_prefix(new_prefix);
        return;
    }
    // The last element went: the previous element's trailing comment and the layout before
    // `]` stay, the removed element's own trailing comment goes.
    // Without a newline the prefix is only this element's spacing, with nothing to keep.
    let mut closing = match split_line(&removed_prefix) {
        (_, Some(_)) => head.to_owned(),
        (_, None) => String::new(),
    };
    if array.trailing_comma() || array.is_empty() {
        let trailing = array.trailing().as_str().unwrap_or("").to_owned();
        let rest = if array.is_empty() {
            without_first_line(&format!("{}{trailing}", suffix(&removed)))
        } else {
            without_first_line(&trailing)
        };
        if closing.contains('#') && !rest.starts_with('\n') {
            closing.push('\n');
        }
        if array.is_empty() {
            array.set_trailing_comma(false);
        }
        array.set_trailing(format!("{closing}{rest}"));
    } else if let Some(last) = array.get_mut(index - 1) {
        closing.push_str(&without_first_line(&suffix(&removed)));
        if closing.contains('#') && !closing.ends_with('\n') {
            closing.push('\n');
        }
        let own = suffix(last);
        last.decor_mut().set_suffix(format!("{own}{closing}"));
    }
}

/// Drop the rest of the current line (a comment), keep the newline and what follows; plain
/// whitespace without a newline is kept.
fn without_first_line(text: &str) -> String {
    match split_line(text) {
        (_, Some(tail)) => format!("\n{tail}"),
        (head, None) if head.trim().is_empty() => head.to_owned(),
        (_, None) => String::new(),
    }
}

/// Push a string formatted like the array's existing elements (one per line stays one per line).
fn push_like_siblings(array: &mut Array, item: &str) {
    let n = array.len();
    let Some(last_prefix) = array.get(n.wrapping_sub(1)).map(prefix) else {
        array.push(item);
        return;
    };
    let mut new_prefix = match last_prefix.rsplit_once('\n') {
        Some((_, indent)) => format!("\n{indent}"),
        None => " ".to_owned(),
    };
    // After a trailing comma, the last element's own comment sits in the array's trailing
    // text: it stays on that element's line, before the new one.
    if array.trailing_comma() {
        let trailing = array.trailing().as_str().unwrap_or("").to_owned();
        if let (comment, Some(tail)) = split_line(&trailing)
            && new_prefix.starts_with('\n')
        {
            new_prefix = format!("{comment}{new_prefix}");
            array.set_trailing(format!("\n{tail}"));
        }
    }
    let Some(last) = array.get_mut(n - 1) else {
        return;
    };
    // Whitespace before `]` moves along to stay before `]`; a comment stays where it is.
    let last_suffix = suffix(last);
    let new_suffix = if last_suffix.trim().is_empty() {
        last.decor_mut().set_suffix("");
        last_suffix
    } else {
        String::new()
    };
    let mut value = Value::from(item);
    value.decor_mut().set_prefix(new_prefix);
    value.decor_mut().set_suffix(new_suffix);
    array.push_formatted(value);
}

/// Set `key` to `value`, keeping the old value's whitespace and trailing comment.
fn set_value(table: &mut dyn TableLike, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *value.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(value);
        }
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

/// An integer when whole (`25`), else a float rounded to 0.01 (`12.5`).
fn percent_value(p: f64) -> Value {
    let hundredths = (p * 100.0).round();
    if hundredths % 100.0 == 0.0 {
        Value::from((hundredths / 100.0) as i64)
    } else {
        Value::from(hundredths / 100.0)
    }
}

fn set_tenant_side(doc: &mut DocumentMut, tenant: &str, side: Side) -> Result<(), EditError> {
    if tenant.is_empty() {
        return Err(EditError::EmptyTenant);
    }
    let root = doc.as_table_mut();
    if !root.contains_key("tenants") {
        // `[tenants.<id>]` headers only: no bare `[tenants]` line.
        let mut tenants = Table::new();
        tenants.set_implicit(true);
        root.insert("tenants", Item::Table(tenants));
    }
    let tenants = root
        .get_mut("tenants")
        .ok_or_else(|| EditError::Shape("tenants".into()))?;
    let path = format!("tenants.{tenant}");
    match tenants {
        Item::Table(tenants) => {
            if !tenants.contains_key(tenant) {
                tenants.insert(tenant, Item::Table(Table::new()));
            }
        }
        Item::Value(Value::InlineTable(tenants)) => {
            if !tenants.contains_key(tenant) {
                tenants.insert(tenant, Value::InlineTable(InlineTable::new()));
            }
        }
        _ => return Err(EditError::Shape("tenants".into())),
    }
    let entry = tenants
        .get_mut(tenant)
        .and_then(Item::as_table_like_mut)
        .ok_or(EditError::Shape(path))?;
    set_value(entry, "side", Value::from(side.as_str()));
    Ok(())
}

#[cfg(test)]
mod tests;
