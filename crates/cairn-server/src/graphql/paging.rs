//! Pure helpers of the read path: cursors, sampling, LIKE patterns, lenient JSON lines and
//! console-line parsing. No IO.

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::{Map, Value};

/// An opaque cursor for position `n` of a listing.
pub(super) fn cursor(n: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("cursor:{n}"))
}

/// The position inside a cursor made by [`cursor`]; `None` for a missing or foreign one.
pub(super) fn decode_cursor(cursor: Option<&str>) -> Option<i64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor?)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("cursor:")?
        .parse()
        .ok()
}

/// At most `samples` indices spread evenly over `0..n`, first and last included.
pub(super) fn sample_indices(n: usize, samples: usize) -> Vec<usize> {
    if n <= samples {
        return (0..n).collect();
    }
    if samples == 0 {
        return Vec::new();
    }
    if samples == 1 {
        return vec![n - 1];
    }
    let mut out: Vec<usize> = (0..samples).map(|i| i * (n - 1) / (samples - 1)).collect();
    out.dedup();
    out
}

/// SQL `LIKE` matching (`%` any run, `_` one character, `\` escapes), case-sensitive.
pub(super) fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // dp[j]: pattern prefix p[..i] matches text prefix t[..j].
    let mut dp = vec![false; t.len() + 1];
    dp[0] = true;
    let mut i = 0;
    while i < p.len() {
        let (token, literal) = match p[i] {
            '\\' if i + 1 < p.len() => {
                i += 1;
                (p[i], true)
            }
            c => (c, false),
        };
        i += 1;
        let mut next = vec![false; t.len() + 1];
        if token == '%' && !literal {
            let mut any = false;
            for j in 0..=t.len() {
                any |= dp[j];
                next[j] = any;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = dp[j - 1] && ((token == '_' && !literal) || t[j - 1] == token);
            }
        }
        dp = next;
    }
    dp[t.len()]
}

/// A history or events line as a JSON object. W&B's lines may hold `NaN`, `Infinity` and
/// `-Infinity`, which JSON lacks: those become the strings `"NaN"`, `"Infinity"`,
/// `"-Infinity"`.
pub(super) fn parse_line(text: &str) -> Option<Map<String, Value>> {
    match cairn_proto::value::to_serde_json(text)? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A console line as the filestream stores it, split for `logLines`.
#[derive(Debug, PartialEq)]
pub(super) struct ConsoleLine<'a> {
    pub timestamp: Cow<'a, str>,
    pub level: Cow<'a, str>,
    pub text: Cow<'a, str>,
}

/// Splits a stored console line into parts. W&B's plain format is `"<ts> text"`, or
/// `"ERROR <ts> text"` for stderr; with `STRUCTURED_CONSOLE_LOGS` a line is the JSON
/// object `{"ts": …, "content": …, "level": "error"?}`. A line in another shape is all
/// text.
pub(super) fn console_line(stored: &str) -> ConsoleLine<'_> {
    if stored.starts_with('{')
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(stored)
        && let Some(Value::String(content)) = map.get("content")
    {
        let field = |key: &str| {
            Cow::Owned(
                map.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        };
        return ConsoleLine {
            timestamp: field("ts"),
            level: field("level"),
            text: Cow::Owned(content.clone()),
        };
    }
    let (level, rest) = match stored.strip_prefix("ERROR ") {
        Some(rest) => ("error", rest),
        None => ("", stored),
    };
    let (first, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let looks_like_time = first.len() >= 19
        && first.as_bytes()[0].is_ascii_digit()
        && first.as_bytes().get(10) == Some(&b'T');
    let (timestamp, text) = if looks_like_time {
        (first, text)
    } else {
        ("", rest)
    };
    ConsoleLine {
        timestamp: Cow::Borrowed(timestamp),
        level: Cow::Borrowed(level),
        text: Cow::Borrowed(text),
    }
}

/// A file's MIME type from its extension.
pub(super) fn mimetype(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .as_deref()
    {
        Some("json") => "application/json",
        Some("yaml" | "yml") => "application/x-yaml",
        Some("txt" | "log") => "text/plain",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(Some(&cursor(41))), Some(41));
        assert_eq!(decode_cursor(Some("garbage!")), None);
        assert_eq!(decode_cursor(None), None);
    }

    #[test]
    fn samples_keep_ends() {
        assert_eq!(sample_indices(3, 5), vec![0, 1, 2]);
        assert_eq!(sample_indices(50, 5), vec![0, 12, 24, 36, 49]);
        assert_eq!(sample_indices(10, 1), vec![9]);
        assert_eq!(sample_indices(10, 0), Vec::<usize>::new());
        assert_eq!(sample_indices(100_000, 500).len(), 500);
    }

    #[test]
    fn like_patterns() {
        for (p, t, m) in [
            ("%.json", "wandb-metadata.json", true),
            ("%.json", "output.log", false),
            ("out_ut.log", "output.log", true),
            ("media/%", "media/images/a.png", true),
            ("a\\%", "a%", true),
            ("a\\%", "ab", false),
            ("%", "", true),
            ("", "", true),
            ("_", "", false),
        ] {
            assert_eq!(like(p, t), m, "{p} {t}");
        }
    }

    #[test]
    fn lines_with_nan_parse() {
        let map = parse_line(
            r#"{"loss":NaN,"x":-Infinity,"s":"NaN in text","_step":1,"loss_NaN_count":3,"deep":{"a":[Infinity]}}"#,
        )
        .unwrap();
        assert_eq!(map["loss"], "NaN");
        assert_eq!(map["x"], "-Infinity");
        assert_eq!(map["s"], "NaN in text");
        assert_eq!(map["_step"], 1);
        assert_eq!(map["loss_NaN_count"], 3);
        assert_eq!(map["deep"], serde_json::json!({"a": ["Infinity"]}));
        assert!(parse_line("[1]").is_none());
        assert!(parse_line("{").is_none());
    }

    #[test]
    fn console_lines_split() {
        let parts = |line| {
            let c = console_line(line);
            (
                c.timestamp.into_owned(),
                c.level.into_owned(),
                c.text.into_owned(),
            )
        };
        let owned = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            parts("2026-11-22T06:39:52.201263 hello world"),
            owned("2026-11-22T06:39:52.201263", "", "hello world")
        );
        assert_eq!(
            parts("ERROR 2026-11-22T06:39:52.201500 bad"),
            owned("2026-11-22T06:39:52.201500", "error", "bad")
        );
        assert_eq!(parts("plain"), owned("", "", "plain"));
        assert_eq!(
            parts(r#"{"ts":"2026-11-21T23:43:54.816169","content":"text","level":"error"}"#),
            owned("2026-11-21T23:43:54.816169", "error", "text")
        );
        assert_eq!(
            parts(r#"{"ts":"2026-11-21T23:43:54.816169","content":"ok"}"#),
            owned("2026-11-21T23:43:54.816169", "", "ok")
        );
        assert_eq!(parts("{not json"), owned("", "", "{not json"));
    }
}
