//! A run's history and system metrics as `wandb.Api()` reads them.
//!
//! Three answers from the same stored lines:
//! - `history(samples, minStep, maxStep)` / `events(samples)`: stored lines as JSON
//!   strings, at most `samples` of them spread evenly over the run (first and last kept),
//!   or, with a step range, the lines with `minStep <= _step < maxStep` (one page of
//!   `scan_history()`, served through the `(run, step)` index);
//! - `sampledHistory(specs)`: per spec, row objects holding only the spec's keys, for rows
//!   that have every key (W&B's rule), in the spec's inclusive step range, sampled;
//! - `parquetHistory`: no parquet exports, so everything is "live" (its first step is
//!   named) and read through the two above.
//!
//! Reads are bounded by what is asked: an unranged sampled read touches `samples` lines
//! by offset, a keyed read scans the run in chunks and keeps only projected rows.

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use super::paging::parse_line;
use crate::db::{self, LineKind, RunRow};
use crate::error::ApiError;

/// Rows per sample when the client names no count (the SDK's own default).
const DEFAULT_SAMPLES: usize = 500;
/// Lines read per query while scanning a whole run.
const SCAN_CHUNK: i64 = 10_000;

fn samples(requested: Option<i64>) -> usize {
    requested
        .map(|n| usize::try_from(n).unwrap_or(0))
        .unwrap_or(DEFAULT_SAMPLES)
}

/// Stored lines of `run`'s `kind` file: `samples` spread over the whole file, or the
/// history lines of a step range.
pub(super) async fn lines(
    conn: &mut AnyConnection,
    run: &RunRow,
    kind: LineKind,
    requested: Option<i64>,
    min_step: Option<i64>,
    max_step: Option<i64>,
) -> Result<Vec<String>, ApiError> {
    let samples = samples(requested);
    if kind == LineKind::History && (min_step.is_some() || max_step.is_some()) {
        let rows = db::lines::history_steps(
            conn,
            run.id,
            min_step.unwrap_or(i64::MIN),
            max_step.unwrap_or(i64::MAX),
            i64::MAX,
        )
        .await?;
        return Ok(pick(
            rows.into_iter().map(|(_, text)| text).collect(),
            samples,
        ));
    }
    let count = match kind {
        LineKind::History => run.history_lines,
        LineKind::Events => run.events_lines,
        LineKind::Console => run.log_lines,
    };
    let count = usize::try_from(count).unwrap_or(0);
    let rows = if count <= samples {
        db::lines::read_lines(conn, run.id, kind, 0, count as i64).await?
    } else {
        let at: Vec<i64> = sample_indices(count, samples)
            .into_iter()
            .map(|i| i as i64)
            .collect();
        db::lines::lines_at(conn, run.id, kind, &at).await?
    };
    Ok(rows.into_iter().map(|(_, text)| text).collect())
}

/// At most `samples` of `rows`, evenly spread, first and last kept.
fn pick<T>(rows: Vec<T>, samples: usize) -> Vec<T> {
    if rows.len() <= samples {
        return rows;
    }
    let keep = sample_indices(rows.len(), samples);
    let mut keep = keep.into_iter().peekable();
    rows.into_iter()
        .enumerate()
        .filter_map(|(i, row)| {
            if keep.peek() == Some(&i) {
                keep.next();
                Some(row)
            } else {
                None
            }
        })
        .collect()
}

/// One `sampledHistory` spec: `{"keys": [...], "samples": n, "minStep": a, "maxStep": b}`
/// with an inclusive `maxStep`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    keys: Vec<String>,
    samples: Option<i64>,
    min_step: Option<f64>,
    max_step: Option<f64>,
}

/// The answer to `sampledHistory(specs)`: one list of row objects per spec.
pub(super) async fn sampled(
    conn: &mut AnyConnection,
    run: &RunRow,
    specs: &[String],
) -> Result<Vec<Vec<Value>>, ApiError> {
    let mut out = Vec::with_capacity(specs.len());
    for text in specs {
        let spec: Spec = serde_json::from_str(text).map_err(|err| {
            ApiError::BadRequest(format!("sampledHistory spec {text:?} is malformed: {err}"))
        })?;
        out.push(sampled_one(conn, run, &spec).await?);
    }
    Ok(out)
}

async fn sampled_one(
    conn: &mut AnyConnection,
    run: &RunRow,
    spec: &Spec,
) -> Result<Vec<Value>, ApiError> {
    let mut keys: Vec<&str> = Vec::new();
    for key in &spec.keys {
        if !keys.contains(&key.as_str()) {
            keys.push(key);
        }
    }
    let mut rows = Vec::new();
    let mut keep = |text: &str| {
        if let Some(row) = parse_line(text)
            && let Some(projected) = project(row, &keys)
        {
            rows.push(Value::Object(projected));
        }
    };
    if spec.min_step.is_some() || spec.max_step.is_some() {
        let min = spec.min_step.map_or(i64::MIN, |s| s.ceil() as i64);
        let max = spec
            .max_step
            .map_or(i64::MAX, |s| (s.floor() as i64).saturating_add(1));
        for (_, text) in db::lines::history_steps(conn, run.id, min, max, i64::MAX).await? {
            keep(&text);
        }
    } else {
        let mut from = 0;
        loop {
            let chunk =
                db::lines::read_lines(conn, run.id, LineKind::History, from, SCAN_CHUNK).await?;
            let Some((last, _)) = chunk.last() else { break };
            from = last + 1;
            for (_, text) in &chunk {
                keep(text);
            }
            if (chunk.len() as i64) < SCAN_CHUNK {
                break;
            }
        }
    }
    Ok(pick(rows, samples(spec.samples)))
}

/// `row` reduced to `keys`, or `None` when it lacks one of them. No keys: the whole row.
fn project(mut row: Map<String, Value>, keys: &[&str]) -> Option<Map<String, Value>> {
    if keys.is_empty() {
        return Some(row);
    }
    let mut out = Map::with_capacity(keys.len());
    for key in keys {
        out.insert((*key).to_owned(), row.remove(*key)?);
    }
    Some(out)
}

/// The latest system-metrics row without its `_wandb` marker, as JSON text (`{}` when the
/// run has none).
pub(super) async fn latest_system_metrics(
    conn: &mut AnyConnection,
    run: &RunRow,
) -> Result<String, ApiError> {
    let tail = db::lines::tail_lines(conn, run.id, LineKind::Events, 1).await?;
    let mut row = tail
        .last()
        .and_then(|(_, text)| parse_line(text))
        .unwrap_or_default();
    row.remove("_wandb");
    Ok(Value::Object(row).to_string())
}

/// At most `samples` indices spread evenly over `0..n`, first and last included.
fn sample_indices(n: usize, samples: usize) -> Vec<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_keeps_ends() {
        let rows: Vec<i32> = (0..100).collect();
        let picked = pick(rows, 5);
        assert_eq!(picked, vec![0, 24, 49, 74, 99]);
        assert_eq!(pick(vec![1, 2], 5), vec![1, 2]);
    }

    #[test]
    fn projection_needs_every_key() {
        let row = parse_line(r#"{"_step":3,"loss":0.5,"acc":1}"#).unwrap();
        let projected = project(row.clone(), &["_step", "loss"]).unwrap();
        assert_eq!(
            Value::Object(projected),
            serde_json::json!({"_step":3,"loss":0.5})
        );
        assert!(project(row.clone(), &["_step", "val_loss"]).is_none());
        assert_eq!(project(row.clone(), &[]), Some(row));
    }

    #[test]
    fn specs_parse_with_and_without_ranges() {
        let spec: Spec = serde_json::from_str(
            r#"{"keys":["_step","loss","_step"],"minStep":10,"maxStep":19,"samples":10}"#,
        )
        .unwrap();
        assert_eq!(spec.keys.len(), 3);
        assert_eq!(spec.max_step, Some(19.0));
        let spec: Spec = serde_json::from_str(r#"{"keys":["loss"],"samples":500}"#).unwrap();
        assert!(spec.min_step.is_none());
    }

    #[test]
    fn samples_keep_ends() {
        assert_eq!(sample_indices(3, 5), vec![0, 1, 2]);
        assert_eq!(sample_indices(50, 5), vec![0, 12, 24, 36, 49]);
        assert_eq!(sample_indices(10, 1), vec![9]);
        assert_eq!(sample_indices(10, 0), Vec::<usize>::new());
        assert_eq!(sample_indices(100_000, 500).len(), 500);
    }
}
