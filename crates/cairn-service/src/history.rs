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

use cairn_core::client::{Connection, documents};
use cairn_proto::value::{Value, members};
use cairn_proto::{
    HistoryRow, ParquetHistoryItem, ReadRunHistoryRequest, ReadRunHistoryResponse,
    RunHistoryResponse, ScanRunHistory, ScanRunHistoryCleanupResponse, ScanRunHistoryInitResponse,
    read_run_history_request, read_run_history_response,
};

use crate::remote::{run_query, until};

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
            documents::HISTORY_PAGE,
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
            documents::SAMPLED_HISTORY_PAGE,
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
        .filter_map(row_items)
        .map(history_row)
        .collect();
    rows.sort_by_key(|(step, _)| *step);
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// A row's keys with their values' JSON, sorted by key; `None` for a row that is not an
/// object. `history` answers JSON text per row (W&B's, with bare `NaN`s: each value keeps
/// its text), `sampledHistory` objects.
fn row_items(row: serde_json::Value) -> Option<Vec<(String, String)>> {
    let mut items: Vec<(String, String)> = match row {
        serde_json::Value::String(text) => members(&text)?
            .into_iter()
            .map(|(key, json)| (key.into_owned(), json.to_owned()))
            .collect(),
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(key, value)| (key, value.to_string()))
            .collect(),
        _ => return None,
    };
    items.sort_by(|a, b| a.0.cmp(&b.0));
    Some(items)
}

/// A row's items as the SDK gets them, with the row's step (`i64::MIN` without one); a
/// step written `10.0` becomes the integer `10`.
fn history_row(mut items: Vec<(String, String)>) -> (i64, HistoryRow) {
    let step = items
        .iter_mut()
        .find(|(key, _)| key == "_step")
        .and_then(|(_, json)| {
            let step = Value::from_json(json)?.as_whole()?;
            *json = step.to_string();
            Some(step)
        })
        .unwrap_or(i64::MIN);
    let items = items
        .into_iter()
        .map(|(key, value_json)| ParquetHistoryItem { key, value_json })
        .collect();
    (
        step,
        HistoryRow {
            history_items: items,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_keeps_each_value_as_written() {
        let row = serde_json::Value::from(
            r#"{"_step":0,"y":Infinity,"x":NaN,"z":-Infinity,"s":"NaN \"q\"","loss_NaN_count":2,"big":123456789012345678901,"n":{"a": [1.0, NaN]}}"#,
        );
        let items = row_items(row).expect("an object");
        let items: Vec<(&str, &str)> = items.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(
            items,
            [
                ("_step", "0"),
                ("big", "123456789012345678901"),
                ("loss_NaN_count", "2"),
                ("n", r#"{"a": [1.0, NaN]}"#),
                ("s", r#""NaN \"q\"""#),
                ("x", "NaN"),
                ("y", "Infinity"),
                ("z", "-Infinity"),
            ]
        );
        assert!(row_items(serde_json::Value::from("{not json")).is_none());
        assert!(row_items(serde_json::Value::from("[1]")).is_none());
    }

    #[test]
    fn steps_are_integers() {
        let row = |json: serde_json::Value| history_row(row_items(json).expect("an object"));
        let (step, sampled) = row(serde_json::json!({"_step": 2.0, "loss": "NaN"}));
        assert_eq!(step, 2);
        let json: Vec<&str> = sampled
            .history_items
            .iter()
            .map(|i| &*i.value_json)
            .collect();
        assert_eq!(json, ["2", r#""NaN""#]);
        assert_eq!(row(serde_json::json!({"_step": 7})).0, 7);
        assert_eq!(row(serde_json::Value::from(r#"{"_step":1.5}"#)).0, i64::MIN);
        assert_eq!(
            row(serde_json::Value::from(r#"{"_step":NaN,"a":1}"#)).0,
            i64::MIN
        );
        assert_eq!(row(serde_json::json!({"a": 1})).0, i64::MIN);
    }
}
