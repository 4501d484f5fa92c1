//! `run.scan_history()` through the core: the 0.31 SDK pages a run's history with
//! `read_run_history_request`s on an API session — `scan_run_history_init` (the run and
//! the keys; answered with a scan id), one `scan_run_history{min_step, max_step}` per page
//! of steps as its iterator advances, and `scan_run_history_cleanup` when the iterator is
//! collected.
//!
//! Each page is one GraphQL query to the session's server: `history(minStep, maxStep)`
//! for a scan of every key, `sampledHistory` with a step range for a scan of some keys
//! (rows that hold all of them, projected onto them). Rows come back sorted by `_step`,
//! `_step` an integer, each value as JSON. Parquet exports are not consulted: cairn's
//! server keeps every row live. Open scans hold only their names; cleanup forgets them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use cairn_core::client::Connection;
use cairn_proto::{
    HistoryRow, ParquetHistoryItem, ReadRunHistoryRequest, ReadRunHistoryResponse,
    RunHistoryResponse, ScanRunHistory, ScanRunHistoryCleanupResponse, ScanRunHistoryInitResponse,
    read_run_history_request, read_run_history_response,
};

use crate::remote::{run_query, until};

const HISTORY_PAGE: &str = "query HistoryPage($entity: String!, $project: String!, \
$run: String!, $minStep: Int64!, $maxStep: Int64!, $pageSize: Int!) {
  project(name: $project, entityName: $entity) { run(name: $run) {
    history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize) } } }";

const SAMPLED_HISTORY_PAGE: &str = "query SampledHistoryPage($entity: String!, \
$project: String!, $run: String!, $spec: JSONString!) {
  project(name: $project, entityName: $entity) { run(name: $run) {
    sampledHistory(specs: [$spec]) } } }";

/// A scan the SDK opened: which run, which keys (none: all).
#[derive(Debug, Clone)]
struct Scan {
    entity: String,
    project: String,
    run: String,
    keys: Vec<String>,
}

/// The open scans of the service, by the id `scan_run_history_init` answered.
#[derive(Debug, Default)]
pub(crate) struct Scans {
    next: AtomicI32,
    open: Mutex<HashMap<i32, Scan>>,
}

fn reply(response: read_run_history_response::Response) -> ReadRunHistoryResponse {
    ReadRunHistoryResponse {
        response: Some(response),
    }
}

impl Scan {
    fn path(&self) -> String {
        format!("{}/{}/{}", self.entity, self.project, self.run)
    }
}

impl Scans {
    /// Answers one `read_run_history_request` (see the module doc).
    pub(crate) fn handle(
        &self,
        connection: &Connection,
        request: ReadRunHistoryRequest,
    ) -> Result<ReadRunHistoryResponse, String> {
        use read_run_history_request::Request as R;
        use read_run_history_response::Response as A;
        match request.request {
            Some(R::ScanRunHistoryInit(init)) => {
                let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
                let mut keys: Vec<String> = Vec::new();
                for key in init.keys {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(
                    id,
                    Scan {
                        entity: init.entity,
                        project: init.project,
                        run: init.run_id,
                        keys,
                    },
                );
                Ok(reply(A::ScanRunHistoryInit(ScanRunHistoryInitResponse {
                    request_id: id,
                })))
            }
            Some(R::ScanRunHistory(page)) => {
                let scan = self
                    .open
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&page.request_id)
                    .cloned()
                    .ok_or_else(|| format!("no history scan {} is open", page.request_id))?;
                let rows = read_page(connection, &scan, &page)?;
                Ok(reply(A::RunHistory(RunHistoryResponse {
                    history_rows: rows,
                })))
            }
            Some(R::ScanRunHistoryCleanup(cleanup)) => {
                self.open
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&cleanup.request_id);
                Ok(reply(A::ScanRunHistoryCleanup(
                    ScanRunHistoryCleanupResponse {},
                )))
            }
            Some(_) => Err("not a history scan request (see `exports`)".to_owned()),
            None => Err("an empty read_run_history_request".to_owned()),
        }
    }
}

/// The rows of steps `[min_step, max_step)` of the scan's run, sorted by `_step`.
fn read_page(
    connection: &Connection,
    scan: &Scan,
    page: &ScanRunHistory,
) -> Result<Vec<HistoryRow>, String> {
    if page.max_step <= page.min_step {
        return Ok(Vec::new());
    }
    let until = until();
    let size = page.max_step.saturating_sub(page.min_step);
    let (name, query, variables) = if scan.keys.is_empty() {
        (
            "HistoryPage",
            HISTORY_PAGE,
            serde_json::json!({
                "entity": scan.entity, "project": scan.project, "run": scan.run,
                "minStep": page.min_step, "maxStep": page.max_step,
                "pageSize": i32::try_from(size).unwrap_or(i32::MAX),
            }),
        )
    } else {
        let mut keys = vec!["_step".to_owned()];
        keys.extend(scan.keys.iter().filter(|k| *k != "_step").cloned());
        let spec = serde_json::json!({
            "keys": keys, "minStep": page.min_step, "maxStep": page.max_step - 1,
            "samples": size,
        });
        (
            "SampledHistoryPage",
            SAMPLED_HISTORY_PAGE,
            serde_json::json!({
                "entity": scan.entity, "project": scan.project, "run": scan.run,
                "spec": spec.to_string(),
            }),
        )
    };
    let run = run_query(connection, name, query, variables, &until, &scan.path())?;
    let raw: Vec<serde_json::Value> = if scan.keys.is_empty() {
        run["history"].as_array().cloned().unwrap_or_default()
    } else {
        run["sampledHistory"][0]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let mut rows: Vec<(i64, HistoryRow)> = raw
        .into_iter()
        .filter_map(|row| match row {
            // `history` answers JSON text per row; `sampledHistory` objects.
            serde_json::Value::String(text) => parse_row(&text),
            other => Some(other),
        })
        .filter_map(|row| match row {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        })
        .map(|mut map| {
            let step = map.get("_step").and_then(as_step).unwrap_or(i64::MIN);
            if step != i64::MIN {
                map.insert("_step".to_owned(), step.into());
            }
            let items = map
                .into_iter()
                .map(|(key, value)| ParquetHistoryItem {
                    key,
                    value_json: restore_non_finite(value.to_string()),
                })
                .collect();
            (
                step,
                HistoryRow {
                    history_items: items,
                },
            )
        })
        .collect();
    rows.sort_by_key(|(step, _)| *step);
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// Stand-ins for the bare `NaN`, `Infinity` and `-Infinity` W&B's history lines may hold
/// (JSON has no spelling for them; Python's `json.loads` reads the bare words).
const NON_FINITE: [(&str, &str); 3] = [
    ("-Infinity", "\u{0}-Infinity"),
    ("Infinity", "\u{0}Infinity"),
    ("NaN", "\u{0}NaN"),
];

/// One history line as a JSON object, its bare non-finite numbers kept as stand-ins.
fn parse_row(text: &str) -> Option<serde_json::Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if let Some((word, stand_in)) = NON_FINITE.iter().find(|(w, _)| rest.starts_with(w))
        {
            out.push_str(&serde_json::Value::from(*stand_in).to_string());
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    serde_json::from_str(&out).ok()
}

/// A value's JSON with the stand-ins of [`parse_row`] back as the bare words.
fn restore_non_finite(mut json: String) -> String {
    for (word, stand_in) in NON_FINITE {
        let quoted = serde_json::Value::from(stand_in).to_string();
        if json.contains(&quoted) {
            json = json.replace(&quoted, word);
        }
    }
    json
}

/// `_step` as an integer, whether the server wrote `10` or `10.0`.
fn as_step(value: &serde_json::Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_non_finite_numbers_survive_a_row() {
        let row = parse_row(r#"{"_step":0,"x":NaN,"y":Infinity,"z":-Infinity,"s":"NaN \"q\""}"#)
            .expect("parsed");
        let json = |k: &str| restore_non_finite(row[k].to_string());
        assert_eq!(json("x"), "NaN");
        assert_eq!(json("y"), "Infinity");
        assert_eq!(json("z"), "-Infinity");
        assert_eq!(json("s"), r#""NaN \"q\"""#);
        assert_eq!(json("_step"), "0");
        assert!(parse_row("{not json").is_none());
    }

    #[test]
    fn steps_are_integers() {
        assert_eq!(as_step(&serde_json::json!(10.0)), Some(10));
        assert_eq!(as_step(&serde_json::json!(7)), Some(7));
        assert_eq!(as_step(&serde_json::json!(1.5)), None);
    }
}
