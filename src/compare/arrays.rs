//! Unordered and keyed arrays, and the permutation test behind `order` differences.
//!
//! Multiset matching hashes every element with a rule-aware structural hash (ignored subtrees
//! left out, numbers by value, object members and unordered elements combined commutatively),
//! then probes only candidates with the same hash, in order of appearance. Equal elements always
//! hash alike; where rules make equality coarser than any hash (a `tolerance`, `subset`), the
//! hash leaves those parts out and probing decides. Elements left unmatched on both sides are
//! paired in order of appearance and compared, so a changed element reports its changed fields;
//! the surplus is `missing` (primary index) or `extra` (shadow index).

use std::ops::ControlFlow::{self, Continue};

use super::json::Walker;
use super::pattern::{Flags, Frame, PathSeg, Step};
use super::rules::KeyField;
use super::tape::{Tag, Tape};
use super::value::Num;
use super::{Kind, MAX_DEPTH};

type Flow = ControlFlow<()>;
/// `(position in the array, node)`.
type Elems = Vec<(usize, usize)>;

/// The value of a keyed element's key field, comparable across sides (`1` equals `1.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyRepr<'v> {
    Bool(bool),
    Int(i128),
    Float(u64),
    Str(&'v str),
}

const TAG_NULL: u64 = 0x6e75_6c6c;
const TAG_TRUE: u64 = 0x7472_7565;
const TAG_FALSE: u64 = 0x6661_6c73;
const TAG_NUMBER: u64 = 0x6e75_6d62;
const TAG_OBJECT: u64 = 0x6f62_6a65;
const TAG_ARRAY: u64 = 0x6172_7261;
const TAG_SET: u64 = 0x7365_7473;
const TAG_DEEP: u64 = 0x6465_6570;

#[derive(Clone, Copy)]
enum Side {
    Primary,
    Shadow,
}

// === impl Walker (arrays) ===

impl<'v> Walker<'_, 'v> {
    pub(super) fn walk_unordered(&mut self, a: usize, b: usize, frame: Frame) -> Flow {
        if self.same_in_place(a, b, frame) {
            return Continue(());
        }
        let (left_a, left_b) = self.match_multiset(a, b, frame);
        self.settle(&left_a, &left_b, frame)
    }

    /// True when array `b` holds exactly the elements of array `a` (under the rules), in any
    /// order.
    pub(super) fn is_permutation(&mut self, a: usize, b: usize, frame: Frame) -> bool {
        let (left_a, left_b) = self.match_multiset(a, b, frame);
        left_a.is_empty() && left_b.is_empty()
    }

    /// The cheap common case of unordered and keyed arrays: equal element by element, as is.
    fn same_in_place(&mut self, a: usize, b: usize, frame: Frame) -> bool {
        let (ta, tb) = (self.ta, self.tb);
        ta.len(a) == tb.len(b)
            && self.probe(|w| {
                for (i, (va, vb)) in ta.items(a).zip(tb.items(b)).enumerate() {
                    w.elem(i, frame, |w, cf, fl| w.walk(va, vb, cf, fl))?;
                }
                Continue(())
            })
    }

    pub(super) fn walk_keyed(&mut self, a: usize, b: usize, frame: Frame, key: u16) -> Flow {
        if self.same_in_place(a, b, frame) {
            return Continue(());
        }
        let (ta, tb) = (self.ta, self.tb);
        let Some(field) = self.rules.key_fields.get(usize::from(key)) else {
            return self.walk_unordered(a, b, frame);
        };
        let elems_b: Vec<(usize, Option<KeyRepr<'v>>)> =
            tb.items(b).map(|v| (v, key_of(tb, v, field))).collect();
        let mut index: Vec<(KeyRepr<'v>, usize)> = elems_b
            .iter()
            .enumerate()
            .filter_map(|(j, (_, k))| k.map(|k| (k, j)))
            .collect();
        index.sort_unstable();
        let mut used = vec![false; elems_b.len()];
        let mut keyless_a = Vec::new();
        for (i, va) in ta.items(a).enumerate() {
            let Some(k) = key_of(ta, va, field) else {
                keyless_a.push((i, va));
                continue;
            };
            // The n-th element with a key on one side meets the n-th with it on the other.
            let start = index.partition_point(|(kb, _)| *kb < k);
            let partner = index
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take_while(|(kb, _)| *kb == k)
                .map(|(_, j)| *j)
                .find(|j| used.get(*j) == Some(&false));
            match partner.and_then(|j| Some((j, elems_b.get(j)?.0))) {
                Some((j, vb)) => {
                    if let Some(u) = used.get_mut(j) {
                        *u = true;
                    }
                    self.elem(i, frame, |w, cf, fl| w.walk(va, vb, cf, fl))?;
                }
                None => self.elem(i, frame, |w, cf, fl| {
                    w.report(Kind::Missing, Some(va), None, cf, fl.redacted)
                })?,
            }
        }
        let keyless_b: Elems = elems_b
            .iter()
            .enumerate()
            .filter(|(_, (_, k))| k.is_none())
            .map(|(j, (vb, _))| (j, *vb))
            .collect();
        self.settle(&keyless_a, &keyless_b, frame)?;
        for (j, (vb, k)) in elems_b.iter().enumerate() {
            if k.is_some() && used.get(j) == Some(&false) {
                let vb = *vb;
                self.elem(j, frame, |w, cf, fl| {
                    w.report(Kind::Extra, None, Some(vb), cf, fl.redacted)
                })?;
            }
        }
        Continue(())
    }

    /// Pairs leftover elements in order of appearance; reports the surplus.
    fn settle(
        &mut self,
        left_a: &[(usize, usize)],
        left_b: &[(usize, usize)],
        frame: Frame,
    ) -> Flow {
        for (&(i, va), &(_, vb)) in left_a.iter().zip(left_b) {
            self.elem(i, frame, |w, cf, fl| w.walk(va, vb, cf, fl))?;
        }
        for &(i, va) in left_a.iter().skip(left_b.len()) {
            self.elem(i, frame, |w, cf, fl| {
                w.report(Kind::Missing, Some(va), None, cf, fl.redacted)
            })?;
        }
        for &(j, vb) in left_b.iter().skip(left_a.len()) {
            self.elem(j, frame, |w, cf, fl| {
                w.report(Kind::Extra, None, Some(vb), cf, fl.redacted)
            })?;
        }
        Continue(())
    }

    /// Descends into an element of an unordered or keyed array.
    fn elem(
        &mut self,
        i: usize,
        frame: Frame,
        f: impl FnOnce(&mut Self, Frame, Flags) -> Flow,
    ) -> Flow {
        self.child(PathSeg::Index(i), Step::AnyIndex, frame, f)
    }

    /// Matches equal elements of arrays `a` and `b`; returns the unmatched ones of each side,
    /// in order.
    fn match_multiset(&mut self, a: usize, b: usize, frame: Frame) -> (Elems, Elems) {
        let (ta, tb) = (self.ta, self.tb);
        let all = |t: &Tape<'_>, arr: usize| -> Elems { t.items(arr).enumerate().collect() };
        let depth = self.path.len();
        let mark = self.arena.len();
        let (ef, eflags) = self
            .rules
            .patterns
            .step(&mut self.arena, frame, depth, Step::AnyIndex);
        if eflags.ignored {
            // Every element is ignored: nothing to match, nothing to report.
            self.arena.truncate(mark);
            return (Vec::new(), Vec::new());
        }
        if self.budget == 0 {
            self.arena.truncate(mark);
            return (all(ta, a), all(tb, b));
        }
        let mut hashed_b: Vec<(u64, usize, usize)> = Vec::with_capacity(tb.len(b));
        for (j, vb) in tb.items(b).enumerate() {
            hashed_b.push((self.hash(Side::Shadow, vb, ef, eflags, depth + 1), j, vb));
        }
        hashed_b.sort_unstable();
        let mut used = vec![false; hashed_b.len()];
        let mut left_a = Vec::new();
        for (i, va) in ta.items(a).enumerate() {
            let h = self.hash(Side::Primary, va, ef, eflags, depth + 1);
            let start = hashed_b.partition_point(|(hb, _, _)| *hb < h);
            let mut matched = false;
            for &(hb, j, vb) in hashed_b.get(start..).unwrap_or_default() {
                // A spent budget ends matching: the rest is paired by position.
                if hb != h || self.budget == 0 {
                    break;
                }
                if used.get(j) != Some(&false) {
                    continue;
                }
                let equal = self.probe(|w| {
                    w.path.push(PathSeg::Index(i));
                    let flow = w.walk(va, vb, ef, eflags);
                    w.path.pop();
                    flow
                });
                if equal {
                    if let Some(u) = used.get_mut(j) {
                        *u = true;
                    }
                    matched = true;
                    break;
                }
            }
            if !matched {
                left_a.push((i, va));
            }
        }
        self.arena.truncate(mark);
        let left_b = tb
            .items(b)
            .enumerate()
            .filter(|(j, _)| used.get(*j) == Some(&false))
            .collect();
        (left_a, left_b)
    }

    /// A structural hash consistent with equality under the rules: values the walk finds equal
    /// hash alike.
    fn hash(&mut self, side: Side, v: usize, frame: Frame, flags: Flags, depth: usize) -> u64 {
        self.budget = self.budget.saturating_sub(1);
        let t = match side {
            Side::Primary => self.ta,
            Side::Shadow => self.tb,
        };
        let set = flags.unordered || flags.keyed.is_some();
        match t.tag(v) {
            Tag::Null => TAG_NULL,
            Tag::True => TAG_TRUE,
            Tag::False => TAG_FALSE,
            Tag::Int | Tag::Uint | Tag::Float => {
                if self.rules.tolerance.is_some() {
                    TAG_NUMBER
                } else {
                    mix(TAG_NUMBER ^ t.num(v).hash_bits())
                }
            }
            Tag::Str => hash_str(t.str(v)),
            _ if depth >= MAX_DEPTH => TAG_DEEP,
            // `subset` lets the shadow carry more members and more set elements.
            Tag::Obj if self.rules.subset => TAG_OBJECT,
            Tag::Arr if self.rules.subset && set => TAG_SET,
            Tag::Obj => {
                let mut h = TAG_OBJECT;
                for (k, item) in t.entries(v) {
                    if let Some(hv) = self.hash_child(side, item, frame, depth, Step::Key(k)) {
                        h = h.wrapping_add(mix(hash_str(k) ^ hv.rotate_left(29)));
                    }
                }
                mix(h)
            }
            Tag::Arr if set => {
                let mut h = TAG_SET;
                for item in t.items(v) {
                    if let Some(hv) = self.hash_child(side, item, frame, depth, Step::AnyIndex) {
                        h = h.wrapping_add(mix(hv));
                    }
                }
                mix(h)
            }
            Tag::Arr => {
                let mut h = TAG_ARRAY ^ t.len(v) as u64;
                for (i, item) in t.items(v).enumerate() {
                    if let Some(hv) = self.hash_child(side, item, frame, depth, Step::Index(i)) {
                        h = mix(h ^ hv);
                    }
                }
                h
            }
        }
    }

    fn hash_child(
        &mut self,
        side: Side,
        item: usize,
        frame: Frame,
        depth: usize,
        step: Step<'_>,
    ) -> Option<u64> {
        let mark = self.arena.len();
        let (cf, flags) = self
            .rules
            .patterns
            .step(&mut self.arena, frame, depth, step);
        let h = (!flags.ignored).then(|| self.hash(side, item, cf, flags, depth + 1));
        self.arena.truncate(mark);
        h
    }
}

fn key_of<'v>(t: &'v Tape<'v>, v: usize, field: &KeyField) -> Option<KeyRepr<'v>> {
    let k = match field {
        KeyField::Field(name) if t.tag(v) == Tag::Obj => t.get(v, name)?,
        KeyField::Field(_) => return None,
        KeyField::Pointer(p) => t.pointer(v, p)?,
    };
    match t.tag(k) {
        Tag::True => Some(KeyRepr::Bool(true)),
        Tag::False => Some(KeyRepr::Bool(false)),
        Tag::Int | Tag::Uint | Tag::Float => Some(match t.num(k) {
            Num::Int(i) => KeyRepr::Int(i),
            Num::Float(f) => KeyRepr::Float(f.to_bits()),
        }),
        Tag::Str => Some(KeyRepr::Str(t.str(k))),
        // A null, object or array key identifies nothing: such elements count as keyless.
        Tag::Null | Tag::Arr | Tag::Obj => None,
    }
}

/// SplitMix64 finaliser: spreads bits so sums of hashes stay well distributed.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash_str(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut h = 0x7374_7269_6e67_u64 ^ (bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    if let Some(dst) = tail.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(0x517c_c1b7_2722_0a95);
    mix(h)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_hash_depends_on_every_byte_and_length() {
        assert_ne!(hash_str(""), hash_str("\0"));
        assert_ne!(hash_str("abcdefgh1"), hash_str("abcdefgh2"));
        assert_ne!(hash_str("abcdefgh"), hash_str("abcdefgi"));
        assert_eq!(hash_str("same"), hash_str("same"));
    }

    #[test]
    fn key_repr_unifies_integral_numbers() {
        let f = KeyField::Field("id".into());
        let t = Tape::from_value(&json!([{"id": 1}, {"id": 1.0}, {"id": "1"}, {"id": null}, 5]))
            .unwrap();
        let items: Vec<usize> = t.items(0).collect();
        let k = |i: usize| key_of(&t, items[i], &f);
        assert_eq!(k(0), k(1));
        assert_ne!(k(0), k(2));
        assert_eq!(k(3), None);
        assert_eq!(k(4), None);
        let p = KeyField::Pointer("/ref/id".into());
        let t = Tape::from_value(&json!({"ref": {"id": "x"}})).unwrap();
        assert_eq!(key_of(&t, 0, &p), Some(KeyRepr::Str("x")));
    }
}
