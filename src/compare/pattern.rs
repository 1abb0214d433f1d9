//! JSON Pointer patterns (`/items/*/price`) and the cheap incremental matcher the walkers use.
//!
//! A pattern is an RFC 6901 JSON Pointer whose segments may be `*`, which matches exactly one
//! segment (an object key or an array index). `~0` and `~1` unescape to `~` and `/`; a segment
//! that is exactly `*` is always the wildcard (RFC 6901 has no escape for it, and a key named
//! `*` is still matched by it). A literal segment such as `0` matches the object key `"0"` and
//! the array index 0.
//!
//! Matching is incremental so that walking a document costs nothing per node when no pattern is
//! alive: every node carries a [`Frame`], the ids of the patterns whose first `depth` segments
//! matched the path so far, stored in a shared arena (`Vec<u16>`) that the walkers use as a
//! stack. Stepping to a child keeps the patterns whose next segment matches and reports, as
//! [`Flags`], the roles of the patterns that end exactly at the child.

use std::fmt::Write as _;

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatSeg {
    /// `*`: any one key or index.
    Any,
    /// A literal key; `index` is set when the key is also a canonical array index.
    Lit { key: Box<str>, index: Option<usize> },
}

/// What a pattern does when it ends at a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The node and everything below it are not compared.
    Ignore,
    /// The array at the node is compared as a multiset.
    Unordered,
    /// The array at the node is matched by the key field with this index in `key_fields`.
    Keyed(u16),
    /// The node's value is replaced by a keyed hash before anything is stored or rendered.
    Redact,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub(crate) segs: Vec<PatSeg>,
    pub(crate) role: Role,
}

/// All JSON patterns of a rule set, each with its role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PatternSet {
    pats: Vec<Pattern>,
}

/// The ids of the patterns still alive at a node: `arena[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    start: u32,
    end: u32,
}

/// Roles of the patterns that end exactly at a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub(crate) ignored: bool,
    pub(crate) redacted: bool,
    pub(crate) unordered: bool,
    pub(crate) keyed: Option<u16>,
}

/// The segment used to step from a node to one of its children.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
    /// An element of an unordered or keyed array: its position is meaningless, so only `*`
    /// matches it (keeps hashing and equality of elements independent of where they sit).
    AnyIndex,
}

/// One segment of a concrete path, kept borrowed while walking; rendered only for a difference.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PathSeg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Why a pointer pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    #[error("must start with \"/\"")]
    NoLeadingSlash,
    #[error("has an invalid escape (only ~0 and ~1 are allowed after ~)")]
    BadEscape,
    #[error("is deeper than {MAX_PATTERN_SEGMENTS} segments")]
    TooDeep,
}

/// Patterns longer than this could never match a document the walkers descend into.
pub(crate) const MAX_PATTERN_SEGMENTS: usize = 128;

// === impl Pattern ===

/// Parses a JSON Pointer pattern (`/a/*/b~1c`) into segments.
pub(crate) fn parse_pointer(text: &str) -> Result<Vec<PatSeg>, PatternError> {
    let rest = text.strip_prefix('/').ok_or(PatternError::NoLeadingSlash)?;
    let mut segs = Vec::new();
    for raw in rest.split('/') {
        if segs.len() >= MAX_PATTERN_SEGMENTS {
            return Err(PatternError::TooDeep);
        }
        if raw == "*" {
            segs.push(PatSeg::Any);
            continue;
        }
        let key = unescape(raw).ok_or(PatternError::BadEscape)?;
        let index = array_index(&key);
        segs.push(PatSeg::Lit {
            key: key.into_boxed_str(),
            index,
        });
    }
    Ok(segs)
}

fn unescape(raw: &str) -> Option<String> {
    if !raw.contains('~') {
        return Some(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// RFC 6901 array index: `0` or a decimal number without leading zeros.
fn array_index(key: &str) -> Option<usize> {
    let bytes = key.as_bytes();
    let canonical = match bytes {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && bytes.iter().all(u8::is_ascii_digit),
    };
    if canonical { key.parse().ok() } else { None }
}

impl PatSeg {
    #[inline]
    fn matches(&self, step: Step<'_>) -> bool {
        match (self, step) {
            (PatSeg::Any, _) => true,
            (PatSeg::Lit { key, .. }, Step::Key(k)) => **key == *k,
            (PatSeg::Lit { index, .. }, Step::Index(i)) => *index == Some(i),
            (PatSeg::Lit { .. }, Step::AnyIndex) => false,
        }
    }
}

// === impl PatternSet ===

impl PatternSet {
    pub(crate) fn push(&mut self, segs: Vec<PatSeg>, role: Role) {
        self.pats.push(Pattern { segs, role });
    }

    pub(crate) fn len(&self) -> usize {
        self.pats.len()
    }

    pub(crate) fn has_role(&self, wanted: impl Fn(Role) -> bool) -> bool {
        self.pats.iter().any(|p| wanted(p.role))
    }

    /// The frame of the document root: every pattern is alive, none has matched a segment.
    pub(crate) fn root(&self, arena: &mut Vec<u16>) -> Frame {
        let start = arena_len(arena);
        // Compile caps the number of patterns far below u16::MAX, so ids fit.
        arena.extend((0..self.pats.len()).filter_map(|i| u16::try_from(i).ok()));
        Frame {
            start,
            end: arena_len(arena),
        }
    }

    /// Steps from a node at `depth` (segments from the root) to its child `step`. The child's
    /// frame is appended to the arena; the caller truncates the arena back when it is done with
    /// the child.
    #[inline]
    pub(crate) fn step(
        &self,
        arena: &mut Vec<u16>,
        parent: Frame,
        depth: usize,
        step: Step<'_>,
    ) -> (Frame, Flags) {
        let start = arena_len(arena);
        let mut flags = Flags::default();
        if parent.start == parent.end {
            return (Frame { start, end: start }, flags);
        }
        for slot in parent.start..parent.end {
            let Some(&id) = arena.get(slot as usize) else {
                continue;
            };
            let Some(pat) = self.pats.get(usize::from(id)) else {
                continue;
            };
            let Some(seg) = pat.segs.get(depth) else {
                continue;
            };
            if !seg.matches(step) {
                continue;
            }
            if pat.segs.len() == depth + 1 {
                match pat.role {
                    Role::Ignore => flags.ignored = true,
                    Role::Redact => flags.redacted = true,
                    Role::Unordered => flags.unordered = true,
                    Role::Keyed(k) => {
                        flags.keyed.get_or_insert(k);
                    }
                }
            } else {
                arena.push(id);
            }
        }
        (
            Frame {
                start,
                end: arena_len(arena),
            },
            flags,
        )
    }
}

impl PatternSet {
    /// Whether an `ignore` pattern covers every node a difference pattern (`/items/*/price`,
    /// as rendered by [`render_pattern`]) can stand for. Its `*` segments are array positions,
    /// so only a `*` in an ignore pattern covers them: `/items/0/price` ignores one element,
    /// not the pattern.
    pub(crate) fn ignores(&self, pattern: &str) -> bool {
        let Some(rest) = pattern.strip_prefix('/') else {
            return false;
        };
        let mut arena = Vec::new();
        let mut frame = self.root(&mut arena);
        for (depth, raw) in rest.split('/').enumerate() {
            if frame.is_empty() {
                return false;
            }
            let key;
            let step = if raw == "*" {
                Step::AnyIndex
            } else {
                let Some(k) = unescape(raw) else {
                    return false;
                };
                key = k;
                Step::Key(&key)
            };
            let (next, flags) = self.step(&mut arena, frame, depth, step);
            if flags.ignored {
                return true;
            }
            frame = next;
        }
        false
    }
}

impl Frame {
    /// True when no pattern can match anything below this node.
    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.start == self.end
    }
}

fn arena_len(arena: &[u16]) -> u32 {
    // The arena holds at most (patterns × depth) ids, both bounded at compile time.
    u32::try_from(arena.len()).unwrap_or(u32::MAX)
}

// === rendering of paths ===

/// Appends `key` as one RFC 6901 segment (`~` → `~0`, `/` → `~1`).
pub(crate) fn push_escaped(out: &mut String, key: &str) {
    if !key.contains(['~', '/']) {
        out.push_str(key);
        return;
    }
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// The exact JSON Pointer of a path (`""` is the document root).
pub(crate) fn render_pointer(path: &[PathSeg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        out.push('/');
        match seg {
            PathSeg::Key(k) => push_escaped(&mut out, k),
            PathSeg::Index(i) => {
                let _ = write!(out, "{i}");
            }
        }
    }
    out
}

/// The pointer with array indices collapsed to `*`, for aggregating differences.
pub(crate) fn render_pattern(path: &[PathSeg<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        out.push('/');
        match seg {
            PathSeg::Key(k) => push_escaped(&mut out, k),
            PathSeg::Index(_) => out.push('*'),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn lit(k: &str) -> PatSeg {
        PatSeg::Lit {
            key: k.into(),
            index: array_index(k),
        }
    }

    #[test]
    fn parses_escapes_and_wildcards() {
        assert_eq!(
            parse_pointer("/a~1b/*/c~0d/0/01").unwrap(),
            vec![lit("a/b"), PatSeg::Any, lit("c~d"), lit("0"), lit("01")]
        );
        assert_eq!(parse_pointer("/"), Ok(vec![lit("")]));
        assert_eq!(parse_pointer("a"), Err(PatternError::NoLeadingSlash));
        assert_eq!(parse_pointer(""), Err(PatternError::NoLeadingSlash));
        assert_eq!(parse_pointer("/a~2"), Err(PatternError::BadEscape));
        assert_eq!(parse_pointer("/a~"), Err(PatternError::BadEscape));
        let deep = "/x".repeat(MAX_PATTERN_SEGMENTS + 1);
        assert_eq!(parse_pointer(&deep), Err(PatternError::TooDeep));
    }

    #[test]
    fn canonical_array_indices_only() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("17"), Some(17));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index(""), None);
        assert_eq!(array_index("99999999999999999999999"), None);
    }

    #[test]
    fn renders_pointer_and_pattern() {
        let path = [
            PathSeg::Key("items"),
            PathSeg::Index(3),
            PathSeg::Key("a/b~c"),
        ];
        assert_eq!(render_pointer(&path), "/items/3/a~1b~0c");
        assert_eq!(render_pattern(&path), "/items/*/a~1b~0c");
        assert_eq!(render_pointer(&[]), "");
    }

    #[test]
    fn ignore_coverage_of_difference_patterns() {
        let mut set = PatternSet::default();
        set.push(parse_pointer("/meta").unwrap(), Role::Ignore);
        set.push(parse_pointer("/items/*/at").unwrap(), Role::Ignore);
        set.push(parse_pointer("/rows/0/x").unwrap(), Role::Ignore);
        set.push(parse_pointer("/a~1b").unwrap(), Role::Ignore);
        set.push(parse_pointer("/owner").unwrap(), Role::Redact);
        for covered in [
            "/meta",
            "/meta/request_id",
            "/items/*/at",
            "/items/*/at/ms",
            "/a~1b",
        ] {
            assert!(set.ignores(covered), "{covered}");
        }
        for kept in [
            "",
            "/items/*/price",
            "/items",
            "/rows/*/x",
            "/owner/email",
            "/metadata",
            "header:date",
            "/a~2",
        ] {
            assert!(!set.ignores(kept), "{kept}");
        }
    }

    #[test]
    fn steps_track_prefixes_and_roles() {
        let mut set = PatternSet::default();
        set.push(parse_pointer("/meta").unwrap(), Role::Ignore);
        set.push(parse_pointer("/items/*/price").unwrap(), Role::Redact);
        set.push(parse_pointer("/items/0").unwrap(), Role::Ignore);
        let mut arena = Vec::new();
        let root = set.root(&mut arena);

        let (_, f) = set.step(&mut arena, root, 0, Step::Key("meta"));
        assert!(f.ignored);
        let (items, f) = set.step(&mut arena, root, 0, Step::Key("items"));
        assert_eq!(f, Flags::default());
        let (_, f0) = set.step(&mut arena, items, 1, Step::Index(0));
        assert!(f0.ignored);
        let (any, fa) = set.step(&mut arena, items, 1, Step::AnyIndex);
        assert!(
            !fa.ignored,
            "a literal index never matches an unordered element"
        );
        let (_, fp) = set.step(&mut arena, any, 2, Step::Key("price"));
        assert!(fp.redacted);
        let (other, _) = set.step(&mut arena, root, 0, Step::Key("other"));
        assert!(other.is_empty());
    }
}
