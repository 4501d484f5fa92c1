//! Logged values and their JSON text as W&B stores it in `value_json`.
//!
//! A [`Value`] is what a user logs, keeps in the summary or puts in the config: scalars,
//! strings, lists and nested maps. It stays native in memory (the SDK builds it in
//! nanoseconds; the handler encodes it off the user's thread) and becomes JSON text only
//! when it enters a record.
//!
//! The JSON follows W&B's conventions, not strict JSON: non-finite floats are the bare
//! tokens `NaN`, `Infinity` and `-Infinity` (what W&B's core writes and reads), floats
//! print in their shortest round-trip form, and floats with an integral value print
//! without a fraction (`1`, as W&B's core prints `1.0`). Integers keep all 64 bits.
//!
//! Reading that JSON — wherever cairn meets it: `value_json`, history and events lines,
//! summaries — goes through one reader (`read.rs`): [`Value::from_json`] builds a
//! [`Value`], [`to_serde_json`] a `serde_json::Value`, [`members`] and [`member`] pick an
//! object's top-level values without building them, and [`read`] reports the parts of a
//! text to any [`Visit`]or.

use std::fmt::Write as _;

mod collect;
mod read;
#[cfg(test)]
mod tests;

pub use collect::{member, members, to_serde_json};
pub use read::{MAX_DEPTH, NotJson, Number, Scalar, Visit, read};

/// A logged value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`/`null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A float (NaN and infinities allowed).
    Float(f64),
    /// A string.
    Str(String),
    /// A list of values (kept as one JSON array in history and summary).
    List(Vec<Value>),
    /// A map; in history and summary its entries become nested keys.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The value as a number, if it is one (booleans are not).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The value as a whole number: an `Int`, or a `Float` without a fraction small enough
    /// (below 9e15) to be exact — W&B's server may write a step `10` as `10.0`.
    pub fn as_whole(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
            _ => None,
        }
    }

    /// The value as W&B's `value_json` text.
    pub fn to_json(&self) -> String {
        // Sized for any scalar, so a number is formatted without reallocating.
        let mut out = String::with_capacity(24);
        self.write_json(&mut out);
        out
    }

    /// Appends the value as W&B's `value_json` text.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
            Value::Float(f) => write_float(*f, out),
            Value::Str(s) => write_string(s, out),
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

/// Floats as W&B's core prints them: shortest round-trip digits, integral values without
/// a fraction, non-finite values as bare tokens.
fn write_float(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str(non_finite_token(f));
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(f as i64));
    } else {
        // The shortest digits that read back exactly (exponent form for very large and
        // very small magnitudes), as every JSON reader accepts.
        out.push_str(ryu::Buffer::new().format_finite(f));
    }
}

/// W&B's bare token for a non-finite float: `NaN`, `Infinity` or `-Infinity`.
fn non_finite_token(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Appends `s` as a JSON string: quotes, backslashes and control characters escaped, the
/// rest as it is.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(f)) => Value::Float(f),
                (None, None) => Value::Null,
            },
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(items) => {
                Value::List(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => {
                Value::Map(map.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(i64::from(v))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or(Value::Float(v as f64), Value::Int)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::from(v as u64)
    }
}

impl From<isize> for Value {
    fn from(v: isize) -> Self {
        Value::Int(v as i64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        // Through the shortest decimal form, so 0.1f32 logs as 0.1, not 0.10000000149.
        Value::Float(v.to_string().parse().unwrap_or(f64::from(v)))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
