//! The structural JSON walker.
//!
//! One recursive walk over both documents (as [`Tape`]s) at once. The current path is a stack
//! of borrowed segments; pointer strings are built only when a difference is reported, so
//! equal subtrees cost no allocation. Pattern state travels as [`Frame`]s in a shared arena
//! (see `pattern`).
//!
//! The same walk doubles as an equality test (**probe** mode): reporting then just records that
//! something differs and breaks out. Probes decide whether an ordered array is merely permuted
//! and which elements of unordered arrays match. Work done in probe mode and in element hashing
//! is charged to a budget ([`PROBE_BUDGET`]); once spent, probes answer "different" at once,
//! which keeps adversarial bodies (huge unordered arrays of near-identical elements) from
//! turning matching quadratic — at worst, elements are then paired by position.

use std::ops::ControlFlow::{self, Break, Continue};

use super::pattern::{Flags, Frame, PathSeg, Step, render_pattern, render_pointer};
use super::render::Renderer;
use super::tape::{Entries, Tag, Tape};
use super::value::{deep_equal, num_eq};
use super::{CompareRules, Difference, Kind, MAX_DEPTH, Sink};

pub(crate) type Flow = ControlFlow<()>;

/// Nodes visited in probe mode or hashed, per comparison, before probes give up. About a
/// hundred times the node count of a 100 KiB document.
pub(crate) const PROBE_BUDGET: u64 = 2_000_000;

/// Objects with more members than this get a sorted index for lookups when their keys differ.
const LINEAR_LOOKUP: usize = 8;

pub(crate) struct Walker<'r, 'v> {
    pub(super) rules: &'r CompareRules,
    sink: &'r mut Sink,
    /// The primary's document; `a` indices point into it.
    pub(super) ta: &'v Tape<'v>,
    /// The shadow's document; `b` indices point into it.
    pub(super) tb: &'v Tape<'v>,
    pub(super) path: Vec<PathSeg<'v>>,
    pub(super) arena: Vec<u16>,
    /// Nesting of probe mode; 0 means differences are collected.
    probing: u32,
    /// Set by a report in probe mode.
    found: bool,
    pub(super) budget: u64,
}

/// Compares two documents into `sink`.
pub(crate) fn diff_tapes<'v>(
    ta: &'v Tape<'v>,
    tb: &'v Tape<'v>,
    rules: &CompareRules,
    sink: &mut Sink,
) -> Flow {
    if ta.nodes.is_empty() || tb.nodes.is_empty() {
        return Continue(());
    }
    let mut walker = Walker {
        rules,
        sink,
        ta,
        tb,
        path: Vec::with_capacity(16),
        arena: Vec::new(),
        probing: 0,
        found: false,
        budget: PROBE_BUDGET,
    };
    let root = rules.patterns.root(&mut walker.arena);
    walker.walk(0, 0, root, Flags::default())
}

// === impl Walker ===

impl<'v> Walker<'_, 'v> {
    /// Compares node `a` of the primary with node `b` of the shadow, found at the current path
    /// with pattern `frame` and `flags`.
    pub(super) fn walk(&mut self, a: usize, b: usize, frame: Frame, flags: Flags) -> Flow {
        if self.probing > 0 {
            if self.budget == 0 {
                self.found = true;
                return Break(());
            }
            self.budget -= 1;
        } else if flags.redacted {
            // A redacted node is one opaque value: compare it whole, report it hashed.
            let inner = Flags {
                redacted: false,
                ..flags
            };
            if self.probe(|w| w.walk(a, b, frame, inner)) {
                return Continue(());
            }
            return self.report(Kind::Value, Some(a), Some(b), frame, true);
        }
        let (ta, tb) = (self.ta, self.tb);
        match (ta.tag(a), tb.tag(b)) {
            (Tag::Null, Tag::Null) | (Tag::True, Tag::True) | (Tag::False, Tag::False) => {
                Continue(())
            }
            (Tag::True | Tag::False, Tag::True | Tag::False) => {
                self.report(Kind::Value, Some(a), Some(b), frame, false)
            }
            (Tag::Int | Tag::Uint | Tag::Float, Tag::Int | Tag::Uint | Tag::Float) => {
                let equal = num_eq(ta.num(a), tb.num(b), self.rules.tolerance);
                self.scalar(equal, a, b, frame)
            }
            (Tag::Str, Tag::Str) => self.scalar(ta.str(a) == tb.str(b), a, b, frame),
            (Tag::Arr, Tag::Arr) => {
                if self.path.len() >= MAX_DEPTH {
                    return self.too_deep(a, b, frame);
                }
                self.walk_array(a, b, frame, flags)
            }
            (Tag::Obj, Tag::Obj) => {
                if self.path.len() >= MAX_DEPTH {
                    return self.too_deep(a, b, frame);
                }
                self.walk_object(a, b, frame)
            }
            _ => self.report(Kind::Type, Some(a), Some(b), frame, false),
        }
    }

    fn scalar(&mut self, equal: bool, a: usize, b: usize, frame: Frame) -> Flow {
        if equal {
            Continue(())
        } else {
            self.report(Kind::Value, Some(a), Some(b), frame, false)
        }
    }

    /// Beyond the depth limit the walk stops recursing: the subtrees are compared whole, without
    /// rules, by an iterative equality, and reported once if they differ.
    fn too_deep(&mut self, a: usize, b: usize, frame: Frame) -> Flow {
        if deep_equal(self.ta, a, self.tb, b, self.rules.tolerance) {
            Continue(())
        } else {
            self.report(Kind::Body, Some(a), Some(b), frame, false)
        }
    }

    fn walk_object(&mut self, a: usize, b: usize, frame: Frame) -> Flow {
        let (ta, tb) = (self.ta, self.tb);
        // Same schema is the common case: members line up key by key, and no lookup is needed.
        // From the first member that does not line up, the rest are matched by key.
        let (mut ea, mut eb) = (ta.entries(a), tb.entries(b));
        loop {
            let (rest_a, rest_b) = (ea.clone(), eb.clone());
            match (ea.next(), eb.next()) {
                (Some((k, va)), Some((kb, vb))) if k == kb => {
                    self.child(PathSeg::Key(k), Step::Key(k), frame, |w, cf, fl| {
                        w.walk(va, vb, cf, fl)
                    })?;
                }
                (None, None) => return Continue(()),
                _ => {
                    (ea, eb) = (rest_a, rest_b);
                    break;
                }
            }
        }
        // The n-th occurrence of a key meets the n-th on the other side, so repeated keys (which
        // RFC 8259 leaves undefined) still compare symmetrically.
        let mut members_b = Members::of(eb);
        for (k, va) in ea {
            let seg = PathSeg::Key(k);
            match members_b.take(k) {
                Some(vb) => {
                    self.child(seg, Step::Key(k), frame, |w, cf, fl| w.walk(va, vb, cf, fl))?
                }
                None => self.child(seg, Step::Key(k), frame, |w, cf, fl| {
                    w.report(Kind::Missing, Some(va), None, cf, fl.redacted)
                })?,
            }
        }
        if self.rules.subset {
            return Continue(());
        }
        for (k, vb) in members_b.unmatched() {
            self.child(PathSeg::Key(k), Step::Key(k), frame, |w, cf, fl| {
                w.report(Kind::Extra, None, Some(vb), cf, fl.redacted)
            })?;
        }
        Continue(())
    }

    fn walk_array(&mut self, a: usize, b: usize, frame: Frame, flags: Flags) -> Flow {
        if let Some(k) = flags.keyed {
            return self.walk_keyed(a, b, frame, k);
        }
        if flags.unordered {
            return self.walk_unordered(a, b, frame);
        }
        let (len_a, len_b) = (self.ta.len(a), self.tb.len(b));
        if len_a != len_b {
            self.report_size(len_a, len_b)?;
        } else if self.probing == 0 && len_a > 1 {
            // Equal length: a permutation is one `order` difference, not one per element.
            if self.probe(|w| w.pairs(a, b, frame)) {
                return Continue(());
            }
            if self.is_permutation(a, b, frame) {
                return self.report(Kind::Order, Some(a), Some(b), frame, false);
            }
        }
        self.pairs(a, b, frame)
    }

    /// Compares elements position by position (over the shorter length).
    fn pairs(&mut self, a: usize, b: usize, frame: Frame) -> Flow {
        let (ta, tb) = (self.ta, self.tb);
        for (i, (va, vb)) in ta.items(a).zip(tb.items(b)).enumerate() {
            self.child(PathSeg::Index(i), Step::Index(i), frame, |w, cf, fl| {
                w.walk(va, vb, cf, fl)
            })?;
        }
        Continue(())
    }

    /// Descends into one child: steps the patterns, skips ignored children, keeps the path.
    #[inline]
    pub(super) fn child(
        &mut self,
        seg: PathSeg<'v>,
        step: Step<'_>,
        frame: Frame,
        f: impl FnOnce(&mut Self, Frame, Flags) -> Flow,
    ) -> Flow {
        let mark = self.arena.len();
        let (cf, flags) = self
            .rules
            .patterns
            .step(&mut self.arena, frame, self.path.len(), step);
        let flow = if flags.ignored {
            Continue(())
        } else {
            self.path.push(seg);
            let flow = f(self, cf, flags);
            self.path.pop();
            flow
        };
        self.arena.truncate(mark);
        flow
    }

    /// Runs `f` in probe mode: true when it found no difference (and the budget lasted).
    pub(super) fn probe(&mut self, f: impl FnOnce(&mut Self) -> Flow) -> bool {
        if self.budget == 0 {
            return false;
        }
        let outer = self.found;
        self.found = false;
        self.probing += 1;
        let _ = f(self);
        self.probing -= 1;
        let equal = !self.found;
        self.found = outer;
        equal
    }

    /// Reports a difference at the current path: `a` is a primary node, `b` a shadow node.
    /// `frame` and `redacted` describe where the values sit, for rendering.
    pub(super) fn report(
        &mut self,
        kind: Kind,
        a: Option<usize>,
        b: Option<usize>,
        frame: Frame,
        redacted: bool,
    ) -> Flow {
        if kind == Kind::Extra && self.rules.subset {
            return Continue(());
        }
        if self.probing > 0 {
            self.found = true;
            return Break(());
        }
        let renderer = Renderer {
            patterns: &self.rules.patterns,
            key: &self.rules.key,
        };
        let depth = self.path.len();
        let primary =
            a.map(|v| renderer.render(&mut self.arena, self.ta, v, frame, depth, redacted));
        let shadow =
            b.map(|v| renderer.render(&mut self.arena, self.tb, v, frame, depth, redacted));
        self.push(kind, primary, shadow)
    }

    fn report_size(&mut self, len_a: usize, len_b: usize) -> Flow {
        if self.probing > 0 {
            self.found = true;
            return Break(());
        }
        self.push(
            Kind::Size,
            Some(format!("{len_a} items")),
            Some(format!("{len_b} items")),
        )
    }

    fn push(&mut self, kind: Kind, primary: Option<String>, shadow: Option<String>) -> Flow {
        self.sink.push(Difference {
            kind,
            path: render_pointer(&self.path),
            pattern: render_pattern(&self.path),
            primary,
            shadow,
        })
    }
}

/// The members of one side's object that did not line up with the other side's, taken by key.
struct Members<'t> {
    /// `(key, value)` in document order.
    list: Vec<(&'t str, usize)>,
    used: Vec<bool>,
    /// Positions in `list` sorted by key (stable, so repeats stay in document order); empty
    /// for small objects, which are scanned.
    sorted: Vec<usize>,
}

impl<'t> Members<'t> {
    fn of(members: Entries<'t, '_>) -> Members<'t> {
        let list: Vec<(&'t str, usize)> = members.collect();
        let mut sorted = Vec::new();
        if list.len() > LINEAR_LOOKUP {
            sorted = (0..list.len()).collect();
            sorted.sort_by_key(|&i| list.get(i).map(|m| m.0));
        }
        Members {
            used: vec![false; list.len()],
            list,
            sorted,
        }
    }

    /// The value of the first member with `key` not taken yet; takes it.
    fn take(&mut self, key: &str) -> Option<usize> {
        let Members { list, used, sorted } = self;
        let unused = |i: &usize| used.get(*i) == Some(&false);
        let found = if sorted.is_empty() {
            (0..list.len()).find(|i| unused(i) && list.get(*i).is_some_and(|m| m.0 == key))
        } else {
            let start = sorted.partition_point(|&i| list.get(i).is_some_and(|m| m.0 < key));
            sorted
                .get(start..)
                .unwrap_or_default()
                .iter()
                .copied()
                .take_while(|&i| list.get(i).is_some_and(|m| m.0 == key))
                .find(unused)
        }?;
        if let Some(u) = used.get_mut(found) {
            *u = true;
        }
        list.get(found).map(|m| m.1)
    }

    /// Members never taken, in document order.
    fn unmatched(&self) -> impl Iterator<Item = (&'t str, usize)> + '_ {
        self.list
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(m, _)| *m)
    }
}
