//! Small value helpers shared by the walkers: numbers by value, JSON string escaping, and an
//! iterative equality for subtrees nested beyond the depth limit.

use super::tape::{Tag, Tape};

/// A JSON number normalised for comparison: integral values (including `1.0` and integers
/// written with an exponent) become exact `i128`, the rest stay `f64`.
///
/// Like serde_json (without `arbitrary_precision`), the parser reads integers up to
/// `u64::MAX` / `i64::MIN` exactly and anything larger as the nearest `f64`; those still
/// compare exactly as the integer that `f64` denotes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

/// 2^127: integral floats below this magnitude convert to i128 exactly.
const I128_LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;

// === impl Num ===

impl Num {
    pub(crate) fn from_f64(f: f64) -> Num {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < I128_LIMIT {
            // Exact: an integral f64 below 2^127 is representable as i128.
            return Num::Int(f as i128);
        }
        Num::Float(f)
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Bits for hashing: equal numbers (without tolerance) give equal bits.
    pub(crate) fn hash_bits(self) -> u64 {
        match self {
            Num::Int(i) => (i as u64) ^ ((i >> 64) as u64).rotate_left(17),
            Num::Float(f) => f.to_bits() ^ 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// Numbers by value; with a tolerance, `|a - b| <= tolerance`.
pub(crate) fn num_eq(x: Num, y: Num, tolerance: Option<f64>) -> bool {
    if x == y {
        return true;
    }
    let Some(tol) = tolerance else {
        return false;
    };
    let gap = match (x, y) {
        (Num::Int(i), Num::Int(j)) => i
            .checked_sub(j)
            .map_or(f64::INFINITY, |d| d.unsigned_abs() as f64),
        _ => (x.as_f64() - y.as_f64()).abs(),
    };
    gap <= tol
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Structural equality of two subtrees (numbers by value, object keys in any order, no other
/// rules) with an explicit stack, so any depth is safe.
pub(crate) fn deep_equal(
    ta: &Tape<'_>,
    a: usize,
    tb: &Tape<'_>,
    b: usize,
    tolerance: Option<f64>,
) -> bool {
    let mut stack = vec![(a, b)];
    while let Some((a, b)) = stack.pop() {
        let equal = match (ta.tag(a), tb.tag(b)) {
            (Tag::Null, Tag::Null) | (Tag::True, Tag::True) | (Tag::False, Tag::False) => true,
            (Tag::Int | Tag::Uint | Tag::Float, Tag::Int | Tag::Uint | Tag::Float) => {
                num_eq(ta.num(a), tb.num(b), tolerance)
            }
            (Tag::Str, Tag::Str) => ta.str(a) == tb.str(b),
            (Tag::Arr, Tag::Arr) if ta.len(a) == tb.len(b) => {
                stack.extend(ta.items(a).zip(tb.items(b)));
                true
            }
            (Tag::Obj, Tag::Obj) if ta.len(a) == tb.len(b) => {
                let mut index: Vec<(&str, usize)> = tb.entries(b).collect();
                index.sort_unstable_by(|x, y| x.0.cmp(y.0));
                ta.entries(a).all(|(k, va)| {
                    let at = index.partition_point(|(kb, _)| *kb < k);
                    match index.get(at) {
                        Some((kb, vb)) if *kb == k => {
                            stack.push((va, *vb));
                            true
                        }
                        _ => false,
                    }
                })
            }
            _ => false,
        };
        if !equal {
            return false;
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use serde_json::json;

    fn n(text: &str) -> Num {
        let t = super::super::parse::parse(text.as_bytes()).unwrap();
        t.num(0)
    }

    #[test]
    fn numbers_compare_by_value_and_big_integers_exactly() {
        assert!(num_eq(n("1"), n("1.0"), None));
        assert!(num_eq(n("-0.0"), n("0"), None));
        assert!(num_eq(n("-0"), n("0"), None));
        assert!(num_eq(n("1e2"), n("100"), None));
        assert!(!num_eq(n("1"), n("1.5"), None));
        // Adjacent u64 values beyond 2^53 differ although their f64 images are equal.
        assert!(!num_eq(
            n("18446744073709551615"),
            n("18446744073709551614"),
            None
        ));
        assert!(!num_eq(n("9007199254740993"), n("9007199254740992"), None));
        assert!(num_eq(
            n("-9223372036854775808"),
            n("-9223372036854775808.0"),
            None
        ));
        assert!(num_eq(n("0.1"), n("0.1"), None));
        assert!(num_eq(n("1e20"), n("100000000000000000000"), None));
    }

    #[test]
    fn tolerance_is_absolute() {
        assert!(num_eq(n("1.0"), n("1.004"), Some(0.005)));
        assert!(!num_eq(n("1.0"), n("1.006"), Some(0.005)));
        assert!(num_eq(n("100"), n("101"), Some(1.0)));
        assert!(!num_eq(n("100"), n("102"), Some(1.0)));
        assert!(!num_eq(
            n("-9223372036854775808"),
            n("18446744073709551615"),
            Some(1.0)
        ));
    }

    #[test]
    fn escapes_json_strings() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    /// A tape nested `depth` arrays deep, built by hand: the parser stops at its limit.
    fn nested(depth: usize, leaf: Tag, bits: u64) -> Tape<'static> {
        let mut t = Tape::default();
        for _ in 0..depth {
            t.push(Tag::Arr, 0, 0).unwrap();
        }
        t.push(leaf, 0, bits).unwrap();
        for at in (0..depth).rev() {
            t.close(at, 1);
        }
        t
    }

    #[test]
    fn deep_equal_survives_deep_values_and_ignores_key_order() {
        let one = nested(50_000, Tag::Uint, 1);
        let one_f = nested(50_000, Tag::Float, 1.0f64.to_bits());
        let two = nested(50_000, Tag::Uint, 2);
        assert!(deep_equal(&one, 0, &one_f, 0, None));
        assert!(!deep_equal(&one, 0, &two, 0, None));

        let x = Tape::from_value(&json!({"a": 1, "b": [true, null], "c": "s"})).unwrap();
        let y = super::super::parse::parse(br#"{"c": "s", "b": [true, null], "a": 1.0}"#).unwrap();
        let z = super::super::parse::parse(br#"{"c": "s", "b": [true, null], "d": 1}"#).unwrap();
        assert!(deep_equal(&x, 0, &y, 0, None));
        assert!(!deep_equal(&x, 0, &z, 0, None));
    }
}
