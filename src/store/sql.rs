//! A tiny builder for the store's few dynamic queries (optional filters): it numbers `$N`
//! placeholders by hand — the one syntax both SQLite and PostgreSQL accept through sqlx's
//! `any` driver — and binds the values in the same order. SQL text only ever comes from
//! fixed fragments in this module's callers; values always go through placeholders.

use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

/// A bound value.
#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Int(i64),
}

/// `WHERE` clauses plus their values.
#[derive(Debug, Default)]
pub(super) struct Filter {
    clauses: Vec<String>,
    params: Vec<Param>,
}

// === impl Filter ===

impl Filter {
    pub(super) fn new() -> Self {
        Filter::default()
    }

    /// Reserve the next placeholder for a text value and return it (`$3`).
    pub(super) fn text(&mut self, v: &str) -> String {
        self.params.push(Param::Text(v.to_owned()));
        format!("${}", self.params.len())
    }

    /// Reserve the next placeholder for an integer value and return it.
    pub(super) fn int(&mut self, v: i64) -> String {
        self.params.push(Param::Int(v));
        format!("${}", self.params.len())
    }

    /// Add `clause` (built with placeholders from [`Filter::text`]/[`Filter::int`]).
    pub(super) fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `column = $N` when `value` is set.
    pub(super) fn eq_opt(&mut self, column: &str, value: Option<&str>) {
        if let Some(v) = value {
            let p = self.text(v);
            self.and(format!("{column} = {p}"));
        }
    }

    /// `column >= $N` when `value` is set.
    pub(super) fn ge_opt(&mut self, column: &str, value: Option<i64>) {
        if let Some(v) = value {
            let p = self.int(v);
            self.and(format!("{column} >= {p}"));
        }
    }

    /// `column <= $N` when `value` is set.
    pub(super) fn le_opt(&mut self, column: &str, value: Option<i64>) {
        if let Some(v) = value {
            let p = self.int(v);
            self.and(format!("{column} <= {p}"));
        }
    }

    /// `" WHERE a AND b"`, or nothing.
    pub(super) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// A query over `sql` with this filter's values bound in placeholder order.
    pub(super) fn query(&self, sql: String) -> Query<'static, Any, AnyArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for p in &self.params {
            q = match p {
                Param::Text(s) => q.bind(s.clone()),
                Param::Int(i) => q.bind(*i),
            };
        }
        q
    }
}
