//! Tests of the reader and writer of W&B's JSON: values written as W&B writes them read
//! back equal, strict JSON agrees with serde_json, and no cut of valid input panics.

use std::borrow::Cow;

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

/// `v` with every map's entries sorted by key, as `serde_json`'s maps are.
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

#[test]
fn strict_json_reads_as_serde_json_reads_it() {
    for text in [
        r#"{"_type":"histogram","values":[1,2,3],"bins":[0.1,0.2,0.30000000000000004,0.4]}"#,
        r#"[1e300,-1e-300,123456789012345678,1.7976931348623157e308]"#,
        r#"{"nested":{"deep":{"x":[true,false,null,"s"]}}}"#,
    ] {
        // serde_json's maps are sorted; ours keep the text's order.
        let ours = sorted(Value::from_json(text).unwrap());
        let theirs = Value::from(serde_json::from_str::<serde_json::Value>(text).unwrap());
        assert_eq!(ours, theirs, "{text}");
    }
}

#[test]
fn whole_numbers_are_ints_and_integral_floats() {
    let whole = |text: &str| Value::from_json(text).and_then(|v| v.as_whole());
    assert_eq!(whole("10"), Some(10));
    assert_eq!(whole("10.0"), Some(10));
    assert_eq!(whole("1e2"), Some(100));
    assert_eq!(whole("-3"), Some(-3));
    assert_eq!(whole("9223372036854775807"), Some(i64::MAX));
    for text in ["1.5", "NaN", "Infinity", "1e16", "\"3\"", "null", "[1]"] {
        assert_eq!(whole(text), None, "{text}");
    }
}

#[test]
fn members_are_top_level_values_as_written() {
    let text = r#"{"b": NaN, "a": {"x": [1, 2], "b": 9}, "s": "\"b\": 7", "b": 3.0 }"#;
    let found: Vec<(String, &str)> = members(text)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v))
        .collect();
    assert_eq!(
        found,
        [
            ("b".to_owned(), "3.0"),
            ("a".to_owned(), r#"{"x": [1, 2], "b": 9}"#),
            ("s".to_owned(), r#""\"b\": 7""#),
        ]
    );
    assert_eq!(members("{}"), Some(vec![]));
    assert_eq!(members(r#"{"k\u00e9":1}"#).unwrap()[0].0, "ké");
    for text in ["[1]", "1", "NaN", "\"{}\"", "{\"a\":1", "{\"a\":1}x", ""] {
        assert_eq!(members(text), None, "{text}");
    }
}

#[test]
fn member_reads_one_key_of_the_whole_text() {
    let cases: &[(&str, Option<&str>)] = &[
        (r#"{"_step":3,"a":1}"#, Some("3")),
        (r#"{"a":{"_step":9},"_step": 4}"#, Some("4")),
        (r#"{"a":"\"_step\":7","_step":5}"#, Some("5")),
        (r#"{"loss":NaN,"_step":12,"x":-Infinity}"#, Some("12")),
        (r#"{"_step":1,"_step":2}"#, Some("2")),
        (r#"{"_st\u0065p":6}"#, Some("6")),
        (r#"{"_step":NaN}"#, Some("NaN")),
        (r#"{"_step":{"a":[1]}}"#, Some(r#"{"a":[1]}"#)),
        (r#"{"a":[{"_step":1}]}"#, None),
        (r#"[{"_step":1}]"#, None),
        (r#"{"_step":1,"a":"#, None),
        (r#"{"_step":"#, None),
        ("", None),
    ];
    for (text, expect) in cases {
        assert_eq!(member(text, "_step"), *expect, "{text}");
    }
}

#[test]
fn serde_json_values_spell_non_finite_numbers_as_strings() {
    use serde_json::json;
    let cases = [
        (
            r#"{"a":NaN,"b":[Infinity,-Infinity],"s":"NaN","c":{"d":NaN}}"#,
            json!({"a":"NaN","b":["Infinity","-Infinity"],"s":"NaN","c":{"d":"NaN"}}),
        ),
        ("18446744073709551615", json!(u64::MAX)),
        ("-9223372036854775808", json!(i64::MIN)),
        ("-0", json!(-0.0)),
        ("1e400", json!("Infinity")),
        ("-1e400", json!("-Infinity")),
        (r#"{"a":1,"a":2}"#, json!({"a":2})),
    ];
    for (text, expect) in cases {
        assert_eq!(to_serde_json(text), Some(expect), "{text}");
    }
    assert_eq!(to_serde_json("{"), None);
}

/// Records what the reader reports.
#[derive(Default)]
struct Parts(Vec<String>);

impl<'a> Visit<'a> for Parts {
    fn scalar(&mut self, scalar: Scalar<'a>) {
        let borrowed = matches!(scalar, Scalar::Str(Cow::Borrowed(_)));
        self.0
            .push(format!("{scalar:?}{}", if borrowed { " lent" } else { "" }));
    }
    fn begin_list(&mut self) {
        self.0.push("[".into());
    }
    fn end_list(&mut self) {
        self.0.push("]".into());
    }
    fn begin_map(&mut self) {
        self.0.push("{".into());
    }
    fn key(&mut self, key: Cow<'a, str>) {
        self.0.push(format!("key {key}"));
    }
    fn end_map(&mut self) {
        self.0.push("}".into());
    }
    fn value_text(&mut self, text: &'a str) {
        self.0.push(format!("= {text}"));
    }
}

#[test]
fn the_reader_reports_parts_in_order() {
    let mut parts = Parts::default();
    read(r#" {"a": [1.5, "x\n"], "b":NaN} "#, &mut parts).unwrap();
    assert_eq!(
        parts.0,
        [
            "{",
            "key a",
            "[",
            r#"Number(Number("1.5"))"#,
            "= 1.5",
            r#"Str("x\n")"#,
            r#"= "x\n""#,
            "]",
            r#"= [1.5, "x\n"]"#,
            "key b",
            "NonFinite(NaN)",
            "= NaN",
            "}",
            r#"= {"a": [1.5, "x\n"], "b":NaN}"#,
        ]
    );
    let mut parts = Parts::default();
    read(r#""plain""#, &mut parts).unwrap();
    assert_eq!(parts.0[0], r#"Str("plain") lent"#);
    assert_eq!(read("[1,", &mut Parts::default()), Err(NotJson { at: 3 }));
}

/// Randomized checks: values written as W&B writes them read back equal, strict JSON reads
/// as `serde_json` reads it, and no cut or change of a valid text makes a reader panic.
mod random {
    use rand::rngs::StdRng;
    use rand::seq::IndexedRandom as _;
    use rand::{Rng as _, SeedableRng as _};

    use super::*;

    /// Pieces of strings: W&B's tokens, JSON's syntax, escapes, non-ASCII.
    const PIECES: &[&str] = &[
        "NaN",
        "Infinity",
        "-Infinity",
        "nan",
        "a",
        "loss_NaN_count",
        "\"",
        "\\",
        "\\u0000",
        "\n",
        "\r",
        "\t",
        "\u{1}",
        "\u{8}",
        "\u{c}",
        "\u{1f}",
        "\u{7f}",
        "/",
        " ",
        "é",
        "テ",
        "🚀",
        "\u{2028}",
        "\u{fffd}",
        "null",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "1e5",
    ];

    fn string(rng: &mut StdRng) -> String {
        let n = rng.random_range(0..5);
        (0..n).map(|_| *PIECES.choose(rng).unwrap()).collect()
    }

    fn float(rng: &mut StdRng, non_finite: bool) -> f64 {
        match rng.random_range(0..9) {
            0 if non_finite => f64::NAN,
            1 if non_finite => f64::INFINITY,
            2 if non_finite => f64::NEG_INFINITY,
            3 => f64::from(rng.random_range(-1000..1000)),
            4 => Some(f64::from_bits(rng.random()))
                .filter(|f| f.is_finite())
                .unwrap_or(0.5),
            5 => rng.random::<f64>() * 10f64.powi(rng.random_range(-320..308)),
            6 => {
                [0.1, -0.0, 1e-5, 1e16, 5e-324, f64::MAX, f64::MIN_POSITIVE][rng.random_range(0..7)]
            }
            _ => rng.random_range(-1e6..1e6),
        }
    }

    /// A random value (keys of a map distinct) of at most `depth` levels.
    fn value(rng: &mut StdRng, depth: u32, non_finite: bool) -> Value {
        let top = if depth == 0 { 5 } else { 10 };
        match rng.random_range(0..top) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => Value::Int(match rng.random_range(0..3) {
                0 => rng.random(),
                1 => [i64::MIN, i64::MAX, 0, -1][rng.random_range(0..4)],
                _ => rng.random_range(-100..100),
            }),
            3 => Value::Float(float(rng, non_finite)),
            4 => Value::Str(string(rng)),
            5..7 => Value::List(
                (0..rng.random_range(0..5))
                    .map(|_| value(rng, depth - 1, non_finite))
                    .collect(),
            ),
            _ => {
                let mut entries: Vec<(String, Value)> = Vec::new();
                for _ in 0..rng.random_range(0..6) {
                    let key = string(rng);
                    if entries.iter().all(|(k, _)| *k != key) {
                        entries.push((key, value(rng, depth - 1, non_finite)));
                    }
                }
                Value::Map(entries)
            }
        }
    }

    /// How a writer spells JSON: Python's `json.dumps` (spaced separators, `1.0`, `1e-05`,
    /// non-ASCII as `\u` escapes unless `ensure_ascii=False`) or compact.
    #[derive(Clone, Copy)]
    struct Style {
        spaced: bool,
        ascii: bool,
    }

    /// `value` as Python's `json.dumps` writes it, in `style`.
    fn dumps(value: &Value, style: Style, out: &mut String) {
        let (comma, colon) = if style.spaced {
            (", ", ": ")
        } else {
            (",", ":")
        };
        match value {
            Value::Float(f) => out.push_str(&python_float(*f)),
            Value::Str(s) => dumps_string(s, style, out),
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    dumps(item, style, out);
                }
                out.push(']');
            }
            Value::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(comma);
                    }
                    dumps_string(k, style, out);
                    out.push_str(colon);
                    dumps(v, style, out);
                }
                out.push('}');
            }
            other => other.write_json(out),
        }
    }

    /// Python's `repr` of a float, as `json.dumps` writes it.
    fn python_float(f: f64) -> String {
        if !f.is_finite() {
            return non_finite_token(f).to_owned();
        }
        if f == 0.0 || (1e-4..1e16).contains(&f.abs()) {
            let text = f.to_string();
            return if text.contains('.') {
                text
            } else {
                text + ".0"
            };
        }
        let exp = format!("{f:e}");
        let (mantissa, power) = exp.split_once('e').unwrap();
        let power: i32 = power.parse().unwrap();
        format!(
            "{mantissa}e{}{:02}",
            if power < 0 { '-' } else { '+' },
            power.abs()
        )
    }

    /// A string as Python's `json.dumps` writes it: a model of Python's writer, kept apart
    /// from cairn's own [`write_string`] on purpose (`\b`, `\f`, `ensure_ascii`).
    fn dumps_string(s: &str, style: Style, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (style.ascii && !c.is_ascii()) => {
                    let mut units = [0; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// Equal, with NaN equal to NaN.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
            (Value::List(xs), Value::List(ys)) => {
                xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
            }
            (Value::Map(xs), Value::Map(ys)) => {
                xs.len() == ys.len()
                    && xs
                        .iter()
                        .zip(ys)
                        .all(|((k, x), (l, y))| k == l && same(x, y))
            }
            _ => a == b,
        }
    }

    fn texts(seed: u64, count: usize, non_finite: bool) -> Vec<(Value, String)> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                let value = value(&mut rng, 4, non_finite);
                let style = Style {
                    spaced: rng.random(),
                    ascii: rng.random(),
                };
                let mut text = String::new();
                dumps(&value, style, &mut text);
                (value, text)
            })
            .collect()
    }

    #[test]
    fn values_written_as_w_and_b_writes_them_read_back_equal() {
        for (value, text) in texts(19, 3000, true) {
            let read = Value::from_json(&text).unwrap_or_else(|| panic!("{text}"));
            assert!(same(&read, &value), "{text}\n{read:?}\n{value:?}");
            // cairn's own writer too.
            let ours = value.to_json();
            let again = Value::from_json(&ours).unwrap_or_else(|| panic!("{ours}"));
            assert_eq!(again.to_json(), ours);
        }
    }

    #[test]
    fn huge_integers_read_as_the_nearest_float() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let digits: String = (0..rng.random_range(19..40))
                .map(|i| char::from(b'0' + rng.random_range(u8::from(i == 0)..10)))
                .collect();
            for text in [digits.clone(), format!("-{digits}")] {
                let expect = match text.parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Float(text.parse().unwrap()),
                };
                assert_eq!(Value::from_json(&text), Some(expect.clone()), "{text}");
                let row = format!(r#"{{"big": {text}, "x": NaN}}"#);
                let read = Value::from_json(&row).unwrap();
                let fields = vec![("big".into(), expect), ("x".into(), Value::Float(f64::NAN))];
                assert!(same(&read, &Value::Map(fields)), "{row}");
                assert_eq!(member(&row, "big"), Some(text.as_str()));
                let serde = serde_json::from_str::<serde_json::Value>(&text).unwrap();
                assert_eq!(to_serde_json(&text), Some(serde), "{text}");
            }
        }
    }

    #[test]
    fn strict_json_reads_as_serde_json_reads_it() {
        let mut rng = StdRng::seed_from_u64(23);
        for (_, mut text) in texts(23, 3000, false) {
            // Now and then a repeated key: both keep the last value.
            if text.starts_with("{\"") && rng.random_bool(0.2) {
                text = format!("{{\"k\":1,{},\"k\":2}}", &text[1..text.len() - 1]);
            }
            let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(to_serde_json(&text).as_ref(), Some(&theirs), "{text}");
            let ours = sorted(Value::from_json(&text).unwrap());
            assert!(same(&ours, &Value::from(theirs)), "{text}");
        }
    }

    #[test]
    fn no_cut_or_change_of_a_valid_text_panics() {
        let mut rng = StdRng::seed_from_u64(29);
        let every_reader = |text: &str| {
            let value = Value::from_json(text);
            let _ = (to_serde_json(text), members(text), member(text, "a"));
            value
        };
        for (_, text) in texts(29, 300, true) {
            let nested = text.starts_with(['[', '{']);
            for cut in (0..text.len()).filter(|&cut| text.is_char_boundary(cut)) {
                let value = every_reader(&text[..cut]);
                assert!(!nested || value.is_none(), "{cut} of {text}");
            }
            for _ in 0..20 {
                let mut changed: Vec<char> = text.chars().collect();
                if changed.is_empty() {
                    break;
                }
                let at = rng.random_range(0..changed.len());
                changed[at] = *['"', '\\', '{', ']', ',', 'N', '-', '9', 'u', 'é', ' ']
                    .choose(&mut rng)
                    .unwrap();
                every_reader(&changed.into_iter().collect::<String>());
            }
        }
    }
}
