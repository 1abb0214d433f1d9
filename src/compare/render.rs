//! Short renderings of values for a [`Difference`](super::Difference): compact JSON cut at
//! [`MAX_RENDERED`](super::MAX_RENDERED) characters, with redacted subtrees replaced by their
//! keyed hash on the way (a difference at `/owner` must not leak `/owner/email`).

use std::fmt::Write as _;

use super::MAX_RENDERED;
use super::pattern::{Frame, PatternSet, Step};
use super::redact::RedactKey;
use super::tape::{Tag, Tape};
use super::value::push_json_str;

pub(crate) struct Renderer<'a> {
    pub(crate) patterns: &'a PatternSet,
    pub(crate) key: &'a RedactKey,
}

// === impl Renderer ===

impl Renderer<'_> {
    /// Renders node `v` of `t`, found at `depth` with pattern `frame`; `redacted` when the node
    /// itself is under a `redact` pattern.
    pub(crate) fn render(
        &self,
        arena: &mut Vec<u16>,
        t: &Tape<'_>,
        v: usize,
        frame: Frame,
        depth: usize,
        redacted: bool,
    ) -> String {
        let mut out = String::new();
        if redacted {
            push_json_str(&mut out, &self.key.tag_node(t, v));
            return out;
        }
        self.write(arena, &mut out, t, v, frame, depth);
        cap(out)
    }

    /// Writes node `v`; stops descending once the output is past the cap (which also bounds
    /// the recursion: every level writes at least one character).
    fn write(
        &self,
        arena: &mut Vec<u16>,
        out: &mut String,
        t: &Tape<'_>,
        v: usize,
        frame: Frame,
        depth: usize,
    ) {
        if out.len() > MAX_RENDERED {
            return;
        }
        match t.tag(v) {
            Tag::Null => out.push_str("null"),
            Tag::True => out.push_str("true"),
            Tag::False => out.push_str("false"),
            Tag::Int | Tag::Uint | Tag::Float => write_number(out, t, v),
            Tag::Str => push_json_str(out, t.str(v)),
            Tag::Arr => {
                out.push('[');
                for (i, item) in t.items(v).enumerate() {
                    if out.len() > MAX_RENDERED {
                        break;
                    }
                    if i > 0 {
                        out.push(',');
                    }
                    self.child(arena, out, t, item, frame, depth, Step::Index(i));
                }
                out.push(']');
            }
            Tag::Obj => {
                out.push('{');
                for (i, (k, item)) in t.entries(v).enumerate() {
                    if out.len() > MAX_RENDERED {
                        break;
                    }
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_str(out, k);
                    out.push(':');
                    self.child(arena, out, t, item, frame, depth, Step::Key(k));
                }
                out.push('}');
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn child(
        &self,
        arena: &mut Vec<u16>,
        out: &mut String,
        t: &Tape<'_>,
        item: usize,
        frame: Frame,
        depth: usize,
        step: Step<'_>,
    ) {
        let mark = arena.len();
        let (cf, flags) = self.patterns.step(arena, frame, depth, step);
        if flags.redacted {
            push_json_str(out, &self.key.tag_node(t, item));
        } else {
            self.write(arena, out, t, item, cf, depth + 1);
        }
        arena.truncate(mark);
    }
}

/// Integers as integers, floats in Rust's shortest round-trip form (`1.0`, `0.1`, `1e20`).
pub(crate) fn write_number(out: &mut String, t: &Tape<'_>, v: usize) {
    let Some(n) = t.nodes.get(v) else {
        return;
    };
    let _ = match n.tag {
        Tag::Int => write!(out, "{}", n.b as i64),
        Tag::Uint => write!(out, "{}", n.b),
        _ => write!(out, "{:?}", f64::from_bits(n.b)),
    };
}

/// Cuts `s` to at most [`MAX_RENDERED`] characters (on a char boundary), marking the cut.
pub(crate) fn cap(mut s: String) -> String {
    if s.len() <= MAX_RENDERED {
        return s;
    }
    let mut end = MAX_RENDERED;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::compare::pattern::{Role, parse_pointer};
    use serde_json::json;

    #[test]
    fn caps_long_values_on_char_boundaries() {
        let s = "é".repeat(300);
        let c = cap(s);
        assert!(c.len() <= MAX_RENDERED + '…'.len_utf8());
        assert!(c.ends_with('…'));
        assert_eq!(cap("short".into()), "short");
    }

    #[test]
    fn renders_compact_json_with_nested_redaction() {
        let mut set = PatternSet::default();
        set.push(parse_pointer("/owner/email").unwrap(), Role::Redact);
        let key = RedactKey::new(b"k");
        let r = Renderer {
            patterns: &set,
            key: &key,
        };
        let mut arena = Vec::new();
        let root = set.root(&mut arena);
        let (owner, _) = set.step(&mut arena, root, 0, Step::Key("owner"));
        let t = Tape::from_value(
            &json!({"email": "a@b.c", "n": 1.0, "big": 1.5, "l": [true, null], "i": -3}),
        )
        .unwrap();
        let s = r.render(&mut arena, &t, 0, owner, 1, false);
        assert!(!s.contains("a@b.c"), "{s}");
        assert!(s.contains("\"email\":\"redacted:"), "{s}");
        assert!(s.contains("\"n\":1.0") && s.contains("\"big\":1.5"), "{s}");
        assert!(
            s.contains("\"l\":[true,null]") && s.contains("\"i\":-3"),
            "{s}"
        );
        let whole = r.render(&mut arena, &t, 0, owner, 1, true);
        assert!(
            whole.starts_with("\"redacted:") && whole.len() == 23,
            "{whole}"
        );
    }

    #[test]
    fn long_arrays_stop_early() {
        let set = PatternSet::default();
        let key = RedactKey::new(b"k");
        let r = Renderer {
            patterns: &set,
            key: &key,
        };
        let mut arena = Vec::new();
        let root = set.root(&mut arena);
        let t = Tape::from_value(&serde_json::Value::Array(
            (0..100_000).map(|i| json!(i)).collect(),
        ))
        .unwrap();
        let s = r.render(&mut arena, &t, 0, root, 0, false);
        assert!(s.ends_with('…') && s.chars().count() <= MAX_RENDERED + 1);
    }
}
