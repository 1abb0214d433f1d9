//! A compact, read-only JSON document: one flat vector of 16-byte nodes in document order
//! (a "tape"), strings borrowed from the body wherever they carry no escapes.
//!
//! Parsing a body into `serde_json::Value` allocates a `String` per string and a B-tree per
//! object and costs several times the comparison itself; the tape costs one vector. A container
//! node records its child count and the index just past its subtree, so siblings are reached
//! in O(1) and equal subtrees are walked without touching the allocator. Object members are a
//! key node (a string) followed by the value's subtree; keys keep document order and duplicates.
//!
//! [`Tape::from_value`] builds the same shape from a `serde_json::Value` (for `diff_json` and
//! redaction), iteratively, so values of any depth convert.

use serde_json::Value;

use super::value::Num;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    Null,
    True,
    False,
    /// A negative integer that fits i64 (as serde_json reads it).
    Int,
    /// A non-negative integer that fits u64.
    Uint,
    Float,
    Str,
    Arr,
    Obj,
}

/// `a`: string length or child count. `b`: string offset (top bit: in the escape buffer),
/// number bits, or for containers the index just past the subtree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub(crate) tag: Tag,
    pub(crate) a: u32,
    pub(crate) b: u64,
}

pub(crate) const IN_ESCAPES: u64 = 1 << 63;

#[derive(Debug, Default)]
pub(crate) struct Tape<'a> {
    pub(crate) src: &'a str,
    /// Decoded strings that had escapes (or all strings, for a tape built from a `Value`).
    pub(crate) esc: String,
    pub(crate) nodes: Vec<Node>,
}

/// Tapes hold at most u32::MAX nodes; bodies are capped far below that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("document too large")]
pub(crate) struct TooLarge;

// === impl Tape ===

impl<'a> Tape<'a> {
    #[inline]
    pub(crate) fn tag(&self, i: usize) -> Tag {
        self.nodes.get(i).map_or(Tag::Null, |n| n.tag)
    }

    /// The string of a `Str` node (object keys included).
    #[inline]
    pub(crate) fn str(&self, i: usize) -> &str {
        let Some(n) = self.nodes.get(i) else {
            return "";
        };
        let len = n.a as usize;
        let (buf, off) = if n.b & IN_ESCAPES != 0 {
            (self.esc.as_str(), (n.b & !IN_ESCAPES) as usize)
        } else {
            (self.src, n.b as usize)
        };
        buf.get(off..off + len).unwrap_or_default()
    }

    /// The value of a number node.
    #[inline]
    pub(crate) fn num(&self, i: usize) -> Num {
        match self.nodes.get(i) {
            Some(Node {
                tag: Tag::Int, b, ..
            }) => Num::Int(i128::from(*b as i64)),
            Some(Node {
                tag: Tag::Uint, b, ..
            }) => Num::Int(i128::from(*b)),
            Some(Node {
                tag: Tag::Float, b, ..
            }) => Num::from_f64(f64::from_bits(*b)),
            _ => Num::Float(f64::NAN),
        }
    }

    /// Children of a container: elements, or members (a key node and a value each).
    #[inline]
    pub(crate) fn len(&self, i: usize) -> usize {
        self.nodes.get(i).map_or(0, |n| n.a as usize)
    }

    /// The index just past the subtree rooted at `i`.
    #[inline]
    pub(crate) fn end(&self, i: usize) -> usize {
        match self.nodes.get(i) {
            Some(Node {
                tag: Tag::Arr | Tag::Obj,
                b,
                ..
            }) => *b as usize,
            _ => i + 1,
        }
    }

    /// Element indices of an array.
    pub(crate) fn items(&self, arr: usize) -> Items<'_, 'a> {
        Items {
            tape: self,
            at: arr + 1,
            end: self.end(arr),
        }
    }

    /// `(key, value index)` of an object, in document order.
    pub(crate) fn entries(&self, obj: usize) -> Entries<'_, 'a> {
        Entries {
            tape: self,
            at: obj + 1,
            end: self.end(obj),
        }
    }

    /// The value of `key` in an object (the first, if the body repeats it).
    pub(crate) fn get(&self, obj: usize, key: &str) -> Option<usize> {
        self.entries(obj).find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Resolves an RFC 6901 pointer below node `i`.
    pub(crate) fn pointer(&self, i: usize, pointer: &str) -> Option<usize> {
        let rest = pointer.strip_prefix('/')?;
        let mut at = i;
        for raw in rest.split('/') {
            let seg = raw.replace("~1", "/").replace("~0", "~");
            at = match self.tag(at) {
                Tag::Obj => self.get(at, &seg)?,
                Tag::Arr => {
                    let n: usize = seg.parse().ok()?;
                    self.items(at).nth(n)?
                }
                _ => return None,
            };
        }
        Some(at)
    }

    pub(crate) fn push(&mut self, tag: Tag, a: u32, b: u64) -> Result<usize, TooLarge> {
        let at = self.nodes.len();
        if at >= u32::MAX as usize {
            return Err(TooLarge);
        }
        self.nodes.push(Node { tag, a, b });
        Ok(at)
    }

    /// Patches a container once its children are on the tape.
    pub(crate) fn close(&mut self, at: usize, count: u32) {
        let end = self.nodes.len() as u64;
        if let Some(n) = self.nodes.get_mut(at) {
            n.a = count;
            n.b = end;
        }
    }
}

impl Tape<'static> {
    /// The tape of a `serde_json::Value` (strings copied once into the escape buffer).
    pub(crate) fn from_value(v: &Value) -> Result<Tape<'static>, TooLarge> {
        enum Open<'v> {
            Arr(usize, u32, std::slice::Iter<'v, Value>),
            Obj(usize, u32, serde_json::map::Iter<'v>),
        }
        let mut t = Tape::default();
        let mut stack: Vec<Open<'_>> = Vec::new();
        let mut next = Some(v);
        loop {
            if let Some(v) = next.take() {
                match v {
                    Value::Array(items) => {
                        let at = t.push(Tag::Arr, 0, 0)?;
                        stack.push(Open::Arr(at, 0, items.iter()));
                    }
                    Value::Object(map) => {
                        let at = t.push(Tag::Obj, 0, 0)?;
                        stack.push(Open::Obj(at, 0, map.iter()));
                    }
                    scalar => t.push_scalar(scalar)?,
                }
            }
            let Some(top) = stack.last_mut() else {
                return Ok(t);
            };
            match top {
                Open::Arr(at, count, iter) => match iter.next() {
                    Some(item) => {
                        *count += 1;
                        next = Some(item);
                    }
                    None => {
                        let (at, count) = (*at, *count);
                        t.close(at, count);
                        stack.pop();
                    }
                },
                Open::Obj(at, count, iter) => match iter.next() {
                    Some((k, item)) => {
                        *count += 1;
                        t.push_owned_str(k)?;
                        next = Some(item);
                    }
                    None => {
                        let (at, count) = (*at, *count);
                        t.close(at, count);
                        stack.pop();
                    }
                },
            }
        }
    }

    fn push_scalar(&mut self, v: &Value) -> Result<(), TooLarge> {
        match v {
            Value::Null => self.push(Tag::Null, 0, 0)?,
            Value::Bool(true) => self.push(Tag::True, 0, 0)?,
            Value::Bool(false) => self.push(Tag::False, 0, 0)?,
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    self.push(Tag::Uint, 0, u)?
                } else if let Some(i) = n.as_i64() {
                    self.push(Tag::Int, 0, i as u64)?
                } else {
                    self.push(Tag::Float, 0, n.as_f64().unwrap_or(f64::NAN).to_bits())?
                }
            }
            Value::String(s) => self.push_owned_str(s)?,
            Value::Array(_) | Value::Object(_) => return Ok(()),
        };
        Ok(())
    }
}

impl Tape<'_> {
    /// Appends a string node whose text goes to the escape buffer.
    pub(crate) fn push_owned_str(&mut self, s: &str) -> Result<usize, TooLarge> {
        let off = self.esc.len() as u64;
        let len = u32::try_from(s.len()).map_err(|_| TooLarge)?;
        self.esc.push_str(s);
        self.push(Tag::Str, len, off | IN_ESCAPES)
    }
}

#[derive(Clone)]
pub(crate) struct Items<'t, 'a> {
    tape: &'t Tape<'a>,
    at: usize,
    end: usize,
}

impl Iterator for Items<'_, '_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.at >= self.end {
            return None;
        }
        let item = self.at;
        self.at = self.tape.end(item);
        Some(item)
    }
}

#[derive(Clone)]
pub(crate) struct Entries<'t, 'a> {
    tape: &'t Tape<'a>,
    at: usize,
    end: usize,
}

impl<'t> Iterator for Entries<'t, '_> {
    type Item = (&'t str, usize);

    #[inline]
    fn next(&mut self) -> Option<(&'t str, usize)> {
        if self.at + 1 >= self.end {
            return None;
        }
        let key = self.tape.str(self.at);
        let value = self.at + 1;
        self.at = self.tape.end(value);
        Some((key, value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_value_lays_out_subtrees() {
        let v = json!({"a": [1, -2, 2.5, "s"], "b": {"c": null}, "d": true});
        let t = Tape::from_value(&v).unwrap();
        assert_eq!(t.tag(0), Tag::Obj);
        assert_eq!(t.len(0), 3);
        assert_eq!(t.end(0), t.nodes.len());
        let keys: Vec<&str> = t.entries(0).map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "d"]);
        let a = t.get(0, "a").unwrap();
        let items: Vec<Tag> = t.items(a).map(|i| t.tag(i)).collect();
        assert_eq!(items, [Tag::Uint, Tag::Int, Tag::Float, Tag::Str]);
        assert_eq!(t.num(t.items(a).nth(1).unwrap()), Num::Int(-2));
        assert_eq!(t.str(t.items(a).nth(3).unwrap()), "s");
        assert_eq!(t.pointer(0, "/b/c").map(|i| t.tag(i)), Some(Tag::Null));
        assert_eq!(
            t.pointer(0, "/a/2").map(|i| t.num(i)),
            Some(Num::Float(2.5))
        );
        assert_eq!(t.pointer(0, "/a/9"), None);
    }

    #[test]
    fn from_value_handles_any_depth() {
        let mut v = json!(1);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        let t = Tape::from_value(&v).unwrap();
        assert_eq!(t.nodes.len(), 100_001);
        assert_eq!(t.end(0), 100_001);
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            if let Value::Array(items) = v {
                stack.extend(items);
            }
        }
    }
}
