//! Unit tests of the run handle's pure parts: the init's config record, telemetry, metric
//! definitions, and a disabled run (every call a no-op). Runs with a pipeline are tested
//! at the crate's boundary (`tests/`).

use cairn_core::value::Value;
use cairn_proto::metric_record::MetricGoal;
use cairn_proto::record::RecordType;

use super::builder::{config_record, telemetry_record};
use super::handle::Run;
use super::{LogOptions, RunError};
use crate::settings::Mode;

#[test]
fn the_config_record_starts_with_wandbs_entry_then_the_values_in_order() {
    let config = config_record(&[
        ("lr".to_owned(), Value::from(0.5)),
        ("layers".to_owned(), Value::from(3_i64)),
        ("name".to_owned(), Value::from("resnet")),
    ]);
    let items: Vec<(&str, &str)> = config
        .update
        .iter()
        .map(|i| (i.key.as_str(), i.value_json.as_str()))
        .collect();
    assert_eq!(
        items,
        [
            ("_wandb", "{}"),
            ("lr", "0.5"),
            ("layers", "3"),
            ("name", "\"resnet\"")
        ]
    );
}

#[test]
fn telemetry_marks_offline_runs_only() {
    let feature = |mode| match telemetry_record(mode).record_type {
        Some(RecordType::Telemetry(t)) => {
            assert!(t.cli_version.starts_with("cairn-"), "{}", t.cli_version);
            t.feature.is_some_and(|f| f.offline)
        }
        other => panic!("not telemetry: {other:?}"),
    };
    assert!(feature(Mode::Offline));
    assert!(!feature(Mode::Online));
}

#[test]
fn metric_definitions_carry_every_option() {
    let run = Run::disabled("r1".to_owned());
    let def = run
        .define_metric("val/loss")
        .step_metric("epoch")
        .step_sync(true)
        .hidden(true)
        .summary("min, last,unknown")
        .goal("minimize");
    let record = &def.record;
    assert_eq!(record.name, "val/loss");
    assert_eq!(record.step_metric, "epoch");
    let options = record.options.as_ref().unwrap();
    assert!(options.step_sync && options.hidden);
    let summary = record.summary.as_ref().unwrap();
    assert!(summary.min && summary.last);
    assert!(!summary.max && !summary.mean && !summary.best && !summary.none);
    assert_eq!(record.goal, MetricGoal::GoalMinimize as i32);
    assert_eq!(
        run.define_metric("acc").goal("max").record.goal,
        MetricGoal::GoalMaximize as i32
    );
    assert_eq!(
        run.define_metric("acc").goal("sideways").record.goal,
        MetricGoal::GoalUnset as i32
    );
    def.apply().unwrap();
}

#[test]
fn a_disabled_run_accepts_every_call_and_writes_nothing() {
    let run = Run::disabled("off1".to_owned());
    assert_eq!(run.id(), "off1");
    assert!(run.dir().is_none() && run.log_path().is_none());
    assert!(!run.should_stop());
    run.log([("loss", 1.0)]).unwrap();
    // Keys are not even looked at: nothing is kept.
    let long = "k".repeat(super::MAX_KEY_LEN + 1);
    run.log_with(
        [(long, 1)],
        LogOptions {
            step: Some(3),
            commit: Some(false),
        },
    )
    .unwrap();
    run.summary_set([("best", 0.1)]).unwrap();
    run.config_update([("lr", 0.1)]).unwrap();
    run.alert("title", "text", "WARN").unwrap();
    run.save("/no/such/file").unwrap();
    assert!(run.events().is_empty());
    assert!(run.finish().unwrap().is_none());
}

#[test]
fn errors_name_the_key() {
    let err = RunError::BadKey("x".repeat(5)).to_string();
    assert!(err.contains("xxxxx") && err.contains("4096"), "{err}");
    let err = RunError::BadValue {
        key: "img".into(),
        reason: "not a PNG".into(),
    }
    .to_string();
    assert_eq!(err, "cannot log value for `img`: not a PNG");
}
