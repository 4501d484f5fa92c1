//! What the reader's parts (`read.rs`) are collected into: trees — [`Value`] and
//! `serde_json::Value` — and the top-level members of an object, each with its value's
//! text as written.
//!
//! Maps keep their order, and a repeated key its last value, as a JSON object means it
//! (`serde_json`'s maps sort their keys). `serde_json::Value` has no non-finite numbers:
//! there they become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, as in the
//! canonical protobuf JSON mapping ([`crate::json`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use super::read::{Scalar, Visit, read};
use super::{Value, non_finite_token};

/// A tree of parsed values.
trait Node: Sized {
    fn scalar(scalar: Scalar<'_>) -> Self;
    fn list(items: Vec<Self>) -> Self;
    fn map(entries: Vec<(String, Self)>) -> Self;
}

impl Node for Value {
    fn scalar(scalar: Scalar<'_>) -> Self {
        match scalar {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Number(n) => n
                .to_i64()
                .map_or_else(|| Value::Float(n.to_f64()), Value::Int),
            Scalar::NonFinite(f) => Value::Float(f),
            Scalar::Str(s) => Value::Str(s.into_owned()),
        }
    }
    fn list(items: Vec<Self>) -> Self {
        Value::List(items)
    }
    fn map(entries: Vec<(String, Self)>) -> Self {
        Value::Map(last_of_each_key(entries))
    }
}

impl Node for serde_json::Value {
    fn scalar(scalar: Scalar<'_>) -> Self {
        let non_finite = |f: f64| serde_json::Value::String(non_finite_token(f).to_owned());
        match scalar {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Bool(b) => serde_json::Value::Bool(b),
            // As `serde_json` reads numbers (`u64` beyond `i64`, `-0` a float); beyond the
            // range of `f64` as ±Infinity.
            Scalar::Number(n) => n
                .text()
                .parse()
                .map_or_else(|_| non_finite(n.to_f64()), serde_json::Value::Number),
            Scalar::NonFinite(f) => non_finite(f),
            Scalar::Str(s) => serde_json::Value::String(s.into_owned()),
        }
    }
    fn list(items: Vec<Self>) -> Self {
        serde_json::Value::Array(items)
    }
    fn map(entries: Vec<(String, Self)>) -> Self {
        serde_json::Value::Object(entries.into_iter().collect())
    }
}

/// A list or map still being read, with the key its next value goes under.
enum Open<N> {
    List(Vec<N>),
    Map(Vec<(String, N)>, String),
}

/// Builds a tree from the reader's parts.
struct Tree<N> {
    open: Vec<Open<N>>,
    done: Option<N>,
}

impl<N: Node> Tree<N> {
    fn put(&mut self, node: N) {
        match self.open.last_mut() {
            None => self.done = Some(node),
            Some(Open::List(items)) => items.push(node),
            Some(Open::Map(entries, key)) => entries.push((std::mem::take(key), node)),
        }
    }
}

impl<N: Node> Visit<'_> for Tree<N> {
    fn scalar(&mut self, scalar: Scalar<'_>) {
        self.put(N::scalar(scalar));
    }
    fn begin_list(&mut self) {
        self.open.push(Open::List(Vec::new()));
    }
    fn end_list(&mut self) {
        if let Some(Open::List(items)) = self.open.pop() {
            self.put(N::list(items));
        }
    }
    fn begin_map(&mut self) {
        self.open.push(Open::Map(Vec::new(), String::new()));
    }
    fn key(&mut self, key: Cow<'_, str>) {
        if let Some(Open::Map(_, next)) = self.open.last_mut() {
            *next = key.into_owned();
        }
    }
    fn end_map(&mut self) {
        if let Some(Open::Map(entries, _)) = self.open.pop() {
            self.put(N::map(entries));
        }
    }
}

fn tree<N: Node>(text: &str) -> Option<N> {
    let mut tree = Tree {
        open: Vec::new(),
        done: None,
    };
    read(text, &mut tree).ok()?;
    tree.done
}

impl Value {
    /// Parses W&B's JSON text (`value_json`, a history row): JSON plus the bare tokens
    /// `NaN`, `Infinity` and `-Infinity` anywhere a number may stand (`[1,NaN]` as well as
    /// `NaN`), objects in their order (a repeated key keeps its last value). `None` for
    /// text that is not such a value or nests deeper than [`super::MAX_DEPTH`].
    pub fn from_json(text: &str) -> Option<Value> {
        tree(text)
    }
}

/// Parses W&B's JSON text (see [`Value::from_json`]) into a `serde_json::Value`: numbers as
/// `serde_json` reads them, non-finite ones as the strings `"NaN"`, `"Infinity"` and
/// `"-Infinity"`. `None` for text that is not such a value.
pub fn to_serde_json(text: &str) -> Option<serde_json::Value> {
    tree(text)
}

/// Reports each member of the object `text` to `each` (key, value's text), in order.
struct TopLevel<'a, F> {
    /// How many lists and maps are open.
    depth: usize,
    /// Whether the text is an object.
    object: bool,
    /// The key of the member being read.
    key: Cow<'a, str>,
    each: F,
}

impl<'a, F: FnMut(Cow<'a, str>, &'a str)> TopLevel<'a, F> {
    fn read(text: &'a str, each: F) -> Option<()> {
        let mut top = TopLevel {
            depth: 0,
            object: false,
            key: Cow::Borrowed(""),
            each,
        };
        read(text, &mut top).ok()?;
        top.object.then_some(())
    }
}

impl<'a, F: FnMut(Cow<'a, str>, &'a str)> Visit<'a> for TopLevel<'a, F> {
    fn begin_list(&mut self) {
        self.depth += 1;
    }
    fn end_list(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
    fn begin_map(&mut self) {
        self.object |= self.depth == 0;
        self.depth += 1;
    }
    fn end_map(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
    fn key(&mut self, key: Cow<'a, str>) {
        if self.depth == 1 {
            self.key = key;
        }
    }
    fn value_text(&mut self, text: &'a str) {
        if self.depth == 1 && self.object {
            (self.each)(std::mem::take(&mut self.key), text);
        }
    }
}

/// The members of the JSON object `text` (W&B's JSON, see [`Value::from_json`]), each key
/// with its value's text as written (`NaN`, `{"a": 1}`), in order; a repeated key once, at
/// its first place, with its last value. `None` when `text` is not such an object.
pub fn members(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    let mut found = Vec::new();
    TopLevel::read(text, |key, value| found.push((key, value)))?;
    Some(last_of_each_key(found))
}

/// The text of the value of top-level `key` in the JSON object `text` (the last, if the
/// key repeats), without building anything: one pass that checks the whole text. `None`
/// when the key is missing or `text` is not an object of W&B's JSON.
pub fn member<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut found = None;
    TopLevel::read(text, |k, value| {
        if k == key {
            found = Some(value);
        }
    })?;
    found
}

/// `entries` with each repeated key kept once, at its first place, with its last value
/// (as a JSON object means it).
fn last_of_each_key<K: Eq + Hash + Clone, V>(entries: Vec<(K, V)>) -> Vec<(K, V)> {
    let repeats = if entries.len() <= 16 {
        (1..entries.len()).any(|i| entries[..i].iter().any(|(k, _)| *k == entries[i].0))
    } else {
        let mut seen = HashSet::with_capacity(entries.len());
        !entries.iter().all(|(k, _)| seen.insert(k))
    };
    if !repeats {
        return entries;
    }
    let mut index: HashMap<K, usize> = HashMap::with_capacity(entries.len());
    let mut kept: Vec<(K, V)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        match index.get(&key) {
            Some(&i) => kept[i].1 = value,
            None => {
                index.insert(key.clone(), kept.len());
                kept.push((key, value));
            }
        }
    }
    kept
}
