//! The same calls through cairn's SDK and through W&B's: the history rows and the final
//! summary must agree.
//!
//! W&B's side is the real `wandb` 0.31 output in `testdata/wandb-0.31` (the scenarios in
//! its `train.py`); cairn's side replays the same calls here. Wall-clock values
//! (`_runtime`, `_timestamp`, `_wandb.runtime`) differ by nature and are left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_proto::record::RecordType;
use cairn_sdk::{LogOptions, Value};
use cairn_store::LogReader;
use serde_json::Value as Json;

const CLOCK_KEYS: &[&str] = &["_runtime", "_timestamp", "_wandb"];

/// One history row: dotted key -> value, clock keys left out.
type Row = BTreeMap<String, Json>;

/// Parses a `value_json` (W&B writes NaN and infinities as bare tokens).
fn parse(value_json: &str) -> Json {
    match value_json {
        "NaN" | "Infinity" | "-Infinity" => Json::String(value_json.to_owned()),
        text => serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned())),
    }
}

fn key(key: &str, nested: &[String]) -> String {
    if nested.is_empty() {
        key.to_owned()
    } else {
        nested.join(".")
    }
}

/// History rows and the final summary of a log, as plain JSON.
fn rows_and_summary(records: impl Iterator<Item = cairn_proto::Record>) -> (Vec<Row>, Row) {
    let mut rows = Vec::new();
    let mut summary = Row::new();
    for record in records {
        match record.record_type {
            Some(RecordType::History(h)) => {
                let row: Row = h
                    .item
                    .iter()
                    .map(|i| (key(&i.key, &i.nested_key), parse(&i.value_json)))
                    .filter(|(k, _)| !CLOCK_KEYS.iter().any(|c| k.starts_with(c)))
                    .collect();
                rows.push(row);
            }
            Some(RecordType::Summary(s)) => {
                for i in s.update {
                    summary.insert(key(&i.key, &i.nested_key), parse(&i.value_json));
                }
                for i in s.remove {
                    summary.remove(&key(&i.key, &i.nested_key));
                }
            }
            _ => {}
        }
    }
    summary.retain(|k, _| !CLOCK_KEYS.iter().any(|c| k.starts_with(c)));
    (rows, summary)
}

fn fixture_log(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wandb-0.31")
        .join(name)
        .join("wandb");
    let run = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wandb"))
        .unwrap()
}

fn read(log: &Path) -> (Vec<Row>, Row) {
    rows_and_summary(
        LogReader::open(log)
            .unwrap()
            .records()
            .map(|r| r.unwrap().1),
    )
}

fn cairn_run(dir: &Path, id: &str) -> cairn_sdk::Run {
    cairn_sdk::init()
        .dir(dir)
        .id(id)
        .mode("offline")
        .project("fixtures")
        .console(false)
        .system_metrics(None)
        .start()
        .unwrap()
}

fn check(name: &str, cairn_log: &Path) {
    let (w_rows, w_summary) = read(&fixture_log(name));
    let (c_rows, c_summary) = read(cairn_log);
    assert_eq!(c_rows.len(), w_rows.len(), "{name}: number of rows");
    for (i, (c, w)) in c_rows.iter().zip(&w_rows).enumerate() {
        assert_eq!(c, w, "{name}: history row {i}");
    }
    assert_eq!(c_summary, w_summary, "{name}: final summary");
}

#[test]
fn basic_matches_w_and_b() {
    let dir = tempfile::tempdir().unwrap();
    let run = cairn_run(dir.path(), "basic001");
    for i in 0..100 {
        run.log([
            ("loss", 1.0 / f64::from(i + 1)),
            ("acc", f64::from(i) / 100.0),
        ])
        .unwrap();
    }
    run.summary_set([("best_acc", 0.99)]).unwrap();
    let log = run.log_path().unwrap().to_path_buf();
    run.finish().unwrap();
    check("basic", &log);
}

#[test]
fn rich_matches_w_and_b() {
    let dir = tempfile::tempdir().unwrap();
    let run = cairn_run(dir.path(), "rich0001");
    run.define_metric("val/loss")
        .summary("min")
        .apply()
        .unwrap();
    run.define_metric("val/acc").summary("max").apply().unwrap();
    run.define_metric("epoch").apply().unwrap();
    run.define_metric("val/*")
        .step_metric("epoch")
        .apply()
        .unwrap();
    let no_commit = LogOptions {
        commit: Some(false),
        ..Default::default()
    };
    for i in 0..50 {
        let lr = 3e-4 * 0.95f64.powf(f64::from(i));
        run.log_with(
            [("train/loss", (-f64::from(i) / 10.0).exp()), ("lr", lr)],
            no_commit,
        )
        .unwrap();
        run.log([("train/grad_norm", 1.0 + f64::from(i % 7))])
            .unwrap();
        if i % 10 == 9 {
            let nested = Value::Map(vec![
                ("a".into(), i.into()),
                (
                    "b".into(),
                    Value::Map(vec![("c".into(), (f64::from(i) / 3.0).into())]),
                ),
            ]);
            run.log([
                ("epoch".to_owned(), Value::from(i / 10)),
                ("val/loss".to_owned(), (1.0 / f64::from(i + 2)).into()),
                ("val/acc".to_owned(), (f64::from(i) / 50.0).into()),
                ("nested".to_owned(), nested),
            ])
            .unwrap();
        }
    }
    run.log_at(
        60,
        [
            ("weird".to_owned(), Value::from(f64::NAN)),
            ("pos_inf".to_owned(), f64::INFINITY.into()),
            ("neg_inf".to_owned(), f64::NEG_INFINITY.into()),
            ("text".to_owned(), "hello".into()),
            ("flag".to_owned(), true.into()),
            ("none".to_owned(), Value::Null),
            ("big".to_owned(), Value::Int((1 << 53) + 1)),
        ],
    )
    .unwrap();
    run.log_at(100, [("after_jump", 1)]).unwrap();
    run.config_update([("extra", Value::from("added later")), ("lr", 1e-4.into())])
        .unwrap();
    run.summary_set([
        ("final_note", Value::from("done")),
        (
            "matrix",
            Value::List(vec![vec![1, 2].into(), vec![3, 4].into()]),
        ),
    ])
    .unwrap();
    run.alert("an alert", "something happened", "WARN").unwrap();
    let log = run.log_path().unwrap().to_path_buf();
    run.finish().unwrap();
    check("rich", &log);
}
