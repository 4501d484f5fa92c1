//! Records of the transaction log as the lines W&B's filestream carries.
//!
//! Pure functions: a history record becomes one `wandb-history.jsonl` line, a stats record
//! one `wandb-events.jsonl` line, console output `output.log` lines in W&B's plain format.
//! Values are copied as the `value_json` text the record holds, never re-parsed, so what
//! the server stores is byte for byte what the handler wrote (bare `NaN` included).

use std::time::SystemTime;

use cairn_proto::{HistoryRecord, StatsRecord};

use crate::clock::Utc;
use crate::console::Stream;
use crate::value::write_string;

/// A JSON object under construction from `(path, raw JSON)` entries.
#[derive(Debug, Default)]
struct Tree {
    entries: Vec<(String, Node)>,
}

#[derive(Debug)]
enum Node {
    Raw(String),
    Map(Tree),
}

impl Tree {
    fn set(&mut self, path: &[String], raw: &str) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let index = match self.entries.iter().position(|(k, _)| k == first) {
            Some(i) => i,
            None => {
                self.entries
                    .push((first.clone(), Node::Map(Tree::default())));
                self.entries.len() - 1
            }
        };
        let node = &mut self.entries[index].1;
        if rest.is_empty() {
            *node = Node::Raw(raw.to_owned());
            return;
        }
        if !matches!(node, Node::Map(_)) {
            *node = Node::Map(Tree::default());
        }
        if let Node::Map(tree) = node {
            tree.set(rest, raw);
        }
    }

    fn write(&self, out: &mut String) {
        out.push('{');
        for (i, (key, node)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(key, out);
            out.push(':');
            match node {
                Node::Raw(raw) => out.push_str(raw),
                Node::Map(tree) => tree.write(out),
            }
        }
        out.push('}');
    }
}

fn raw_or_null(value_json: &str) -> &str {
    if value_json.trim().is_empty() {
        "null"
    } else {
        value_json
    }
}

/// One `wandb-history.jsonl` line: the record's items as a JSON object, nested keys as
/// nested objects.
pub(crate) fn history_line(record: &HistoryRecord) -> String {
    let flat = record.item.iter().all(|item| item.nested_key.is_empty());
    let mut out = String::with_capacity(16 + record.item.len() * 24);
    if flat {
        out.push('{');
        for (i, item) in record.item.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(&item.key, &mut out);
            out.push(':');
            out.push_str(raw_or_null(&item.value_json));
        }
        out.push('}');
        return out;
    }
    let mut tree = Tree::default();
    for item in &record.item {
        let path = crate::input::key_path(&item.key, &item.nested_key);
        tree.set(&path, raw_or_null(&item.value_json));
    }
    tree.write(&mut out);
    out
}

/// Seconds since the Unix epoch of a protobuf timestamp.
pub(crate) fn seconds(timestamp: Option<&prost_types::Timestamp>) -> Option<f64> {
    timestamp.map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
}

/// One `wandb-events.jsonl` line: `system.<key>` for each item, then `_wandb`,
/// `_timestamp` and `_runtime` (seconds since `start`, the run's start time).
pub(crate) fn stats_line(record: &StatsRecord, start: Option<f64>) -> String {
    let mut out = String::with_capacity(64 + record.item.len() * 32);
    out.push('{');
    for item in &record.item {
        if item.key.starts_with("system.") {
            write_string(&item.key, &mut out);
        } else {
            let mut key = String::with_capacity(item.key.len() + 7);
            key.push_str("system.");
            key.push_str(&item.key);
            write_string(&key, &mut out);
        }
        out.push(':');
        out.push_str(raw_or_null(&item.value_json));
        out.push(',');
    }
    out.push_str("\"_wandb\":true");
    if let Some(ts) = seconds(record.timestamp.as_ref()) {
        out.push_str(",\"_timestamp\":");
        out.push_str(ryu::Buffer::new().format(ts));
        if let Some(start) = start {
            out.push_str(",\"_runtime\":");
            out.push_str(ryu::Buffer::new().format((ts - start).max(0.0)));
        }
    }
    out.push('}');
    out
}

/// An `output.log` line in W&B's plain format: `<UTC time with µs> <text>`, with
/// `ERROR ` before it for stderr.
pub(crate) fn console_line(stream: Stream, at: SystemTime, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 34);
    if stream == Stream::Stderr {
        out.push_str("ERROR ");
    }
    out.push_str(&utc_micros(at));
    out.push(' ');
    out.push_str(text);
    out
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC.
pub(crate) fn utc_micros(at: SystemTime) -> String {
    let t = Utc::of(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use cairn_proto::{HistoryItem, StatsItem};

    use super::*;

    fn item(key: &str, nested: &[&str], value: &str) -> HistoryItem {
        HistoryItem {
            key: key.to_owned(),
            nested_key: nested.iter().map(|s| (*s).to_owned()).collect(),
            value_json: value.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn history_lines_keep_the_value_text() {
        let record = HistoryRecord {
            item: vec![
                item("loss", &[], "NaN"),
                item("_step", &[], "3"),
                item("na\"me", &[], "\"x\""),
            ],
            ..Default::default()
        };
        assert_eq!(
            history_line(&record),
            r#"{"loss":NaN,"_step":3,"na\"me":"x"}"#
        );
    }

    #[test]
    fn nested_keys_nest() {
        let record = HistoryRecord {
            item: vec![
                item("", &["train", "loss"], "0.5"),
                item("", &["train", "acc"], "1"),
                item("_step", &[], "0"),
                item("empty", &[], ""),
            ],
            ..Default::default()
        };
        assert_eq!(
            history_line(&record),
            r#"{"train":{"loss":0.5,"acc":1},"_step":0,"empty":null}"#
        );
    }

    #[test]
    fn stats_lines_are_system_metrics() {
        let record = StatsRecord {
            item: vec![
                StatsItem {
                    key: "cpu".to_owned(),
                    value_json: "12.5".to_owned(),
                },
                StatsItem {
                    key: "system.disk".to_owned(),
                    value_json: "1".to_owned(),
                },
            ],
            timestamp: Some(prost_types::Timestamp {
                seconds: 100,
                nanos: 500_000_000,
            }),
            ..Default::default()
        };
        assert_eq!(
            stats_line(&record, Some(90.0)),
            r#"{"system.cpu":12.5,"system.disk":1,"_wandb":true,"_timestamp":100.5,"_runtime":10.5}"#
        );
    }

    #[test]
    fn console_lines_in_w_and_b_format() {
        let at = UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
        assert_eq!(
            console_line(Stream::Stdout, at, "hello"),
            "2026-11-18T11:06:40.123456 hello"
        );
        assert_eq!(
            console_line(Stream::Stderr, at, "bad"),
            "ERROR 2026-11-18T11:06:40.123456 bad"
        );
        assert_eq!(utc_micros(UNIX_EPOCH), "1970-01-01T00:00:00.000000");
    }
}
