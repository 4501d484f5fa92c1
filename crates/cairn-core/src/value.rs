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

use std::fmt::Write as _;

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

    /// Parses W&B's `value_json` text: JSON plus the bare tokens `NaN`, `Infinity` and
    /// `-Infinity` anywhere a number may stand (`[1,NaN]` as well as `NaN`), objects in
    /// their order (a repeated key keeps its last value). `None` for text that is not such
    /// a value or nests deeper than [`MAX_DEPTH`].
    pub fn from_json(text: &str) -> Option<Value> {
        let mut parser = Parser {
            text: text.as_bytes(),
            at: 0,
        };
        let value = parser.value(0)?;
        parser.space();
        (parser.at == text.len()).then_some(value)
    }
}

/// How deeply lists and maps may nest in parsed `value_json` (a guard for the stack).
pub const MAX_DEPTH: usize = 512;

/// A recursive-descent reader of `value_json` text (see [`Value::from_json`]).
struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    /// Consumes `word` if the text continues with it.
    fn eat(&mut self, word: &str) -> bool {
        let found = self.text[self.at..].starts_with(word.as_bytes());
        if found {
            self.at += word.len();
        }
        found
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.space();
        match *self.text.get(self.at)? {
            b'{' => {
                self.at += 1;
                let mut entries: Vec<(String, Value)> = Vec::new();
                self.space();
                if self.eat("}") {
                    return Some(Value::Map(entries));
                }
                loop {
                    self.space();
                    let key = self.string()?;
                    self.space();
                    if !self.eat(":") {
                        return None;
                    }
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    self.space();
                    if self.eat("}") {
                        return Some(Value::Map(last_of_each_key(entries)));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.space();
                if self.eat("]") {
                    return Some(Value::List(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.space();
                    if self.eat("]") {
                        return Some(Value::List(items));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Value::Str),
            _ if self.eat("null") => Some(Value::Null),
            _ if self.eat("true") => Some(Value::Bool(true)),
            _ if self.eat("false") => Some(Value::Bool(false)),
            _ if self.eat("NaN") => Some(Value::Float(f64::NAN)),
            _ if self.eat("Infinity") => Some(Value::Float(f64::INFINITY)),
            _ if self.eat("-Infinity") => Some(Value::Float(f64::NEG_INFINITY)),
            _ => self.number(),
        }
    }

    /// A JSON number: an `Int` when it has no fraction or exponent and fits 64 bits, a
    /// `Float` otherwise (correctly rounded).
    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.text.get(p.at).is_some_and(u8::is_ascii_digit) {
                p.at += 1;
            }
            p.at > from
        };
        self.eat("-");
        if !self.eat("0") && !digits(self) {
            return None;
        }
        let mut integral = true;
        if self.eat(".") {
            integral = false;
            if !digits(self) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.text.get(self.at) {
            integral = false;
            self.at += 1;
            if let Some(b'+' | b'-') = self.text.get(self.at) {
                self.at += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        // Only ASCII digits, signs, '.' and 'e' were consumed.
        let text = std::str::from_utf8(&self.text[start..self.at]).ok()?;
        if integral && let Ok(i) = text.parse::<i64>() {
            return Some(Value::Int(i));
        }
        text.parse::<f64>().ok().map(Value::Float)
    }

    /// A JSON string; escapes decoded, an unpaired surrogate escape read as U+FFFD.
    fn string(&mut self) -> Option<String> {
        if !self.eat("\"") {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let run = self.at;
            while let Some(&b) = self.text.get(self.at) {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.at += 1;
            }
            out.extend_from_slice(&self.text[run..self.at]);
            if *self.text.get(self.at)? == b'"' {
                self.at += 1;
                // The input is a `&str` and escapes add whole characters.
                return String::from_utf8(out).ok();
            }
            let escape = *self.text.get(self.at + 1)?;
            self.at += 2;
            let c = match escape {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode()?,
                _ => return None,
            };
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }

    /// The character of a `\\u` escape whose four hex digits start at `at` (with the low
    /// half that must follow a high surrogate); U+FFFD for an unpaired surrogate.
    fn unicode(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return Some(char::from_u32(high).unwrap_or('\u{FFFD}'));
        }
        let before = self.at;
        if self.eat("\\u")
            && let Some(low @ 0xDC00..0xE000) = self.hex4()
        {
            return char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
        self.at = before;
        Some('\u{FFFD}')
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }
}

/// `entries` with each repeated key kept once, at its first place, with its last value
/// (as a JSON object means it).
fn last_of_each_key(entries: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let repeats = if entries.len() <= 16 {
        (1..entries.len()).any(|i| entries[..i].iter().any(|(k, _)| *k == entries[i].0))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        !entries.iter().all(|(k, _)| seen.insert(k.as_str()))
    };
    if !repeats {
        return entries;
    }
    let mut index: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(entries.len());
    let mut kept: Vec<(String, Value)> = Vec::with_capacity(entries.len());
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

/// Floats as W&B's core prints them: shortest round-trip digits, integral values without
/// a fraction, non-finite values as bare tokens.
fn write_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(f as i64));
    } else {
        // The shortest digits that read back exactly (exponent form for very large and
        // very small magnitudes), as every JSON reader accepts.
        out.push_str(ryu::Buffer::new().format_finite(f));
    }
}

pub(crate) fn write_string(s: &str, out: &mut String) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: impl Into<Value>, expect: &str) {
        assert_eq!(v.into().to_json(), expect);
    }

    #[test]
    fn json_text_as_w_and_b_writes_it() {
        check(1.0, "1");
        check(0.5, "0.5");
        check(0.0003, "0.0003");
        check(-0.0, "0");
        check(f64::NAN, "NaN");
        check(f64::INFINITY, "Infinity");
        check(f64::NEG_INFINITY, "-Infinity");
        check(1e300, "1e300");
        check(1.5e-9, "1.5e-9");
        check(0.1f32, "0.1");
        check(9_007_199_254_740_993i64, "9007199254740993");
        check(u64::MAX, "1.8446744073709552e19");
        check(true, "true");
        check(Option::<i32>::None, "null");
        check("he said \"hi\"\n", r#""he said \"hi\"\n""#);
        check("\u{1}", r#""\u0001""#);
        check("テスト🚀", "\"テスト🚀\"");
        check(vec![vec![1, 2], vec![3, 4]], "[[1,2],[3,4]]");
        check(
            Value::Map(vec![("a".into(), 1.into()), ("b".into(), Value::Null)]),
            r#"{"a":1,"b":null}"#,
        );
    }

    #[test]
    fn json_text_reads_back() {
        for v in [
            Value::Float(0.1),
            Value::Float(1e-300),
            Value::Float(f64::INFINITY),
            Value::Int(i64::MIN),
            Value::Str("x\"y".into()),
            Value::List(vec![Value::Bool(false), Value::Null]),
        ] {
            assert_eq!(Value::from_json(&v.to_json()), Some(v.clone()), "{v:?}");
        }
        assert!(matches!(Value::from_json("NaN"), Some(Value::Float(f)) if f.is_nan()));
        assert_eq!(Value::from_json("{"), None);
    }

    /// The SDK sends `[1, 2, NaN]` for a list with a NaN in it: strict JSON readers refuse
    /// it, and the value was lost.
    #[test]
    fn non_finite_tokens_read_back_anywhere() {
        for text in [
            "[1,2,NaN]",
            r#"{"a":{"b":[Infinity,-Infinity]},"c":NaN}"#,
            "[[NaN],{\"x\":-Infinity}]",
        ] {
            let value = Value::from_json(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(value.to_json(), text);
        }
        let spaced = Value::from_json(" [ 1 , NaN ]\n").unwrap();
        assert_eq!(spaced.to_json(), "[1,NaN]");
    }

    #[test]
    fn maps_keep_their_order_and_the_last_of_a_repeated_key() {
        let map = |text: &str| match Value::from_json(text) {
            Some(Value::Map(entries)) => entries,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            map(r#"{"b":1,"a":2}"#),
            vec![("b".into(), Value::Int(1)), ("a".into(), Value::Int(2))]
        );
        assert_eq!(
            map(r#"{"a":1,"b":2,"a":3}"#),
            vec![("a".into(), Value::Int(3)), ("b".into(), Value::Int(2))]
        );
        let many: Vec<String> = (0..40).map(|i| format!("\"k{}\":{i}", i % 30)).collect();
        let entries = map(&format!("{{{}}}", many.join(",")));
        assert_eq!(entries.len(), 30);
        assert_eq!(entries[0], ("k0".into(), Value::Int(30)));
        assert_eq!(entries[29], ("k29".into(), Value::Int(29)));
        assert_eq!(map("{}"), vec![]);
    }

    #[test]
    fn numbers_strings_and_scalars_read_as_json_means_them() {
        let cases: &[(&str, Value)] = &[
            ("-0", Value::Int(0)),
            ("42", Value::Int(42)),
            ("1.0", Value::Float(1.0)),
            ("1e2", Value::Float(100.0)),
            ("-2.5E-3", Value::Float(-0.0025)),
            ("9223372036854775807", Value::Int(i64::MAX)),
            (
                "9223372036854775808",
                Value::Float(9_223_372_036_854_775_808.0),
            ),
            ("0.1", Value::Float(0.1)),
            ("true", Value::Bool(true)),
            ("false", Value::Bool(false)),
            ("null", Value::Null),
            (r#""""#, Value::Str(String::new())),
            (
                r#""a\"b\\c\/d\b\f\n\r\t""#,
                Value::Str("a\"b\\c/d\u{8}\u{c}\n\r\t".into()),
            ),
            (
                r#""\u00e9\ud83d\ude80 テスト""#,
                Value::Str("é🚀 テスト".into()),
            ),
            (r#""\ud800x""#, Value::Str("\u{FFFD}x".into())),
            (r#""\udc00""#, Value::Str("\u{FFFD}".into())),
            ("[]", Value::List(vec![])),
        ];
        for (text, expect) in cases {
            assert_eq!(Value::from_json(text).as_ref(), Some(expect), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_value_reads_as_none() {
        for text in [
            "",
            " ",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\":}",
            "{a:1}",
            "nul",
            "NaNx",
            "-NaN",
            "\"open",
            "\"bad \\x escape\"",
            "\"\\u12\"",
            "[1]]",
            "{\"a\":1,}",
        ] {
            assert_eq!(Value::from_json(text), None, "{text:?}");
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(Value::from_json(&deep(MAX_DEPTH)).is_some());
        assert_eq!(Value::from_json(&deep(MAX_DEPTH + 2)), None);
        // Nothing panics on any prefix of a valid text, however it is cut.
        let text = r#"{"a":[1,-2.5e3,NaN,"\u00e9\ud83d\ude80"],"b":{"c":null}}"#;
        for cut in 0..text.len() {
            if text.is_char_boundary(cut) {
                assert_eq!(Value::from_json(&text[..cut]), None, "{cut}");
            }
        }
    }

    #[test]
    fn strict_json_reads_as_serde_json_reads_it() {
        for text in [
            r#"{"_type":"histogram","values":[1,2,3],"bins":[0.1,0.2,0.30000000000000004,0.4]}"#,
            r#"[1e300,-1e-300,123456789012345678,1.7976931348623157e308]"#,
            r#"{"nested":{"deep":{"x":[true,false,null,"s"]}}}"#,
        ] {
            // serde_json's maps are sorted; ours keep the text's order.
            fn sorted(v: Value) -> Value {
                match v {
                    Value::Map(mut entries) => {
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                        Value::Map(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
                    }
                    Value::List(items) => Value::List(items.into_iter().map(sorted).collect()),
                    other => other,
                }
            }
            let ours = sorted(Value::from_json(text).unwrap());
            let theirs = Value::from(serde_json::from_str::<serde_json::Value>(text).unwrap());
            assert_eq!(ours, theirs, "{text}");
        }
    }
}
