//! The handler's semantics, call by call, against what W&B's core does for the same calls.

use std::fmt::Write as _;
use std::time::Duration;

use cairn_proto::record::RecordType;
use cairn_proto::{MetricRecord, MetricSummary};

use super::*;

/// Runs `inputs` (each at 10 ms intervals) through a fresh handler and renders the
/// records it produces, one line each, plus any warnings.
fn run(inputs: Vec<Input>) -> String {
    let mut h = Handler::new(HandlerConfig {
        stream_id: "r1".into(),
        summary_checkpoint: Duration::from_secs(3600),
        ..Default::default()
    });
    let mut out = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        h.handle(input, Duration::from_millis(10 * (i as u64 + 1)), &mut out);
    }
    let mut text = String::new();
    for r in &out {
        writeln!(text, "{}", render(r)).unwrap();
    }
    for w in h.take_warnings() {
        writeln!(text, "warning: {w:?}").unwrap();
    }
    text
}

fn render(r: &Record) -> String {
    match r.record_type.as_ref().unwrap() {
        RecordType::History(h) => {
            let items: Vec<String> = h
                .item
                .iter()
                .map(|i| {
                    let k = if i.nested_key.is_empty() {
                        i.key.clone()
                    } else {
                        i.nested_key.join(".")
                    };
                    format!("{k}={}", i.value_json)
                })
                .collect();
            format!(
                "history step={} {}",
                h.step.as_ref().unwrap().num,
                items.join(" ")
            )
        }
        RecordType::Summary(s) => {
            let key = |i: &cairn_proto::SummaryItem| {
                if i.key.is_empty() {
                    i.nested_key.join(".")
                } else {
                    i.key.clone()
                }
            };
            let items: Vec<String> = s
                .update
                .iter()
                .map(|i| format!("{}={}", key(i), i.value_json))
                .chain(s.remove.iter().map(|i| format!("-{}", key(i))))
                .collect();
            format!("summary {}", items.join(" "))
        }
        RecordType::Metric(m) => format!(
            "metric name={} glob={} step_metric={} expanded={}",
            m.name, m.glob_name, m.step_metric, m.expanded_from_glob
        ),
        RecordType::Exit(e) => format!("exit code={} runtime={}", e.exit_code, e.runtime),
        RecordType::Config(c) => {
            // A nested key shown as `[a.b]`, so a test sees which field carries the path.
            let key = |i: &cairn_proto::ConfigItem| {
                if i.nested_key.is_empty() {
                    i.key.clone()
                } else {
                    format!("[{}]", i.nested_key.join("."))
                }
            };
            let items: Vec<String> = c
                .update
                .iter()
                .map(|i| format!("{}={}", key(i), i.value_json))
                .chain(c.remove.iter().map(|i| format!("-{}", key(i))))
                .collect();
            format!("config {}", items.join(" "))
        }
        _ => r.kind().to_owned(),
    }
}

fn log(items: &[(&str, Value)]) -> Input {
    log_with(items, None, None)
}

fn log_with(items: &[(&str, Value)], step: Option<i64>, commit: Option<bool>) -> Input {
    Input::Log(LogCall {
        items: items
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        step,
        commit,
        timestamp: 1000.5,
    })
}

fn exit() -> Input {
    Input::Exit { exit_code: 0 }
}

#[test]
fn each_log_is_a_step() {
    insta::assert_snapshot!(run(vec![
        log(&[("loss", 0.5.into()), ("acc", 0.25.into())]),
        log(&[("loss", 0.25.into())]),
        exit(),
    ]), @r"
    history step=0 loss=0.5 acc=0.25 _runtime=0.01 _step=0 _timestamp=1000.5
    history step=1 loss=0.25 _runtime=0.02 _step=1 _timestamp=1000.5
    summary loss=0.25 acc=0.25 _step=1 _timestamp=1000.5 _wandb.runtime=0 _runtime=0
    exit code=0 runtime=0
    ");
}

#[test]
fn commit_false_accumulates_and_later_values_win() {
    insta::assert_snapshot!(run(vec![
        log_with(&[("a", 1.into()), ("b", 1.into())], None, Some(false)),
        log_with(&[("a", 2.into())], None, Some(false)),
        log(&[("c", 3.into())]),
        exit(),
    ]), @r"
    history step=0 a=2 b=1 c=3 _runtime=0.03 _step=0 _timestamp=1000.5
    summary a=2 b=1 c=3 _step=0 _timestamp=1000.5 _wandb.runtime=0 _runtime=0
    exit code=0 runtime=0
    ");
}

#[test]
fn explicit_steps_accumulate_jump_and_never_go_back() {
    insta::assert_snapshot!(run(vec![
        log_with(&[("a", 1.into())], Some(0), None),
        log_with(&[("b", 2.into())], Some(0), None),
        log_with(&[("c", 3.into())], Some(5), None),
        log_with(&[("late", 9.into())], Some(2), None),
        log(&[("d", 4.into())]),
        exit(),
    ]), @r"
    history step=0 a=1 b=2 _runtime=0.03 _step=0 _timestamp=1000.5
    history step=5 c=3 d=4 _runtime=0.05 _step=5 _timestamp=1000.5
    summary a=1 b=2 _step=5 _timestamp=1000.5 c=3 d=4 _wandb.runtime=0 _runtime=0
    exit code=0 runtime=0
    warning: StepNotMonotonic { requested: 2, current: 5 }
    ");
}

#[test]
fn explicit_step_rows_commit_at_exit() {
    insta::assert_snapshot!(run(vec![
        log_with(&[("a", 1.into())], Some(60), None),
        log_with(&[("b", 1.into())], Some(100), None),
        exit(),
    ]), @r"
    history step=60 a=1 _runtime=0.02 _step=60 _timestamp=1000.5
    history step=100 b=1 _runtime=0.03 _step=100 _timestamp=1000.5
    summary a=1 _step=100 _timestamp=1000.5 b=1 _wandb.runtime=0 _runtime=0
    exit code=0 runtime=0
    ");
}

#[test]
fn empty_commits_only_advance_the_step() {
    insta::assert_snapshot!(run(vec![
        log(&[]),
        log(&[]),
        log(&[("x", 1.into())]),
        exit(),
    ]), @r"
    history step=2 x=1 _runtime=0.03 _step=2 _timestamp=1000.5
    summary x=1 _step=2 _timestamp=1000.5 _wandb.runtime=0 _runtime=0
    exit code=0 runtime=0
    ");
}

#[test]
fn nested_maps_become_nested_keys() {
    let nested = Value::Map(vec![
        ("a".into(), 9.into()),
        ("b".into(), Value::Map(vec![("c".into(), 3.into())])),
        ("empty".into(), Value::Map(vec![])),
    ]);
    insta::assert_snapshot!(run(vec![
        log(&[("nested", nested), ("list", vec![1, 2].into()), ("", 4.into()), ("a.b", 2.into())]),
        exit(),
    ]), @r#"
    history step=0 list=[1,2] =4 a.b=2 _runtime=0.01 _step=0 _timestamp=1000.5 nested.a=9 nested.b.c=3 nested.empty={}
    summary list=[1,2] =4 a.b=2 _step=0 _timestamp=1000.5 nested.a=9 nested.b.c=3 nested.empty={} _wandb.runtime=0 _runtime=0
    exit code=0 runtime=0
    "#);
}

#[test]
fn odd_values_are_kept_as_w_and_b_writes_them() {
    insta::assert_snapshot!(run(vec![
        log(&[
            ("weird", f64::NAN.into()),
            ("pos_inf", f64::INFINITY.into()),
            ("text", "hello".into()),
            ("flag", true.into()),
            ("none", Value::Null),
            ("big", (9_007_199_254_740_993i64).into()),
        ]),
    ]), @r#"
    history step=0 weird=NaN pos_inf=Infinity text="hello" flag=true none=null big=9007199254740993 _runtime=0.01 _step=0 _timestamp=1000.5
    "#);
}

fn define(name: &str, f: impl FnOnce(&mut MetricRecord)) -> Input {
    let mut m = crate::input::metric_definition(name);
    f(&mut m);
    Input::DefineMetric(Box::new(m))
}

#[test]
fn define_metric_summaries_and_globs() {
    insta::assert_snapshot!(run(vec![
        define("val/loss", |m| m.summary = Some(MetricSummary { min: true, ..Default::default() })),
        define("val/acc", |m| m.summary = Some(MetricSummary { max: true, mean: true, last: true, ..Default::default() })),
        define("quiet", |m| m.summary = Some(MetricSummary { none: true, ..Default::default() })),
        define("epoch", |_| {}),
        define("val/*", |m| {
            m.step_metric = "epoch".into();
            m.options.as_mut().unwrap().step_sync = true;
        }),
        log(&[("epoch", 0.into()), ("val/loss", 0.5.into()), ("val/acc", 0.1.into()), ("quiet", 1.into())]),
        log(&[("epoch", 1.into()), ("val/loss", 0.2.into()), ("val/acc", 0.3.into())]),
        log(&[("val/f1", 0.7.into())]),
        log(&[("val/loss", 0.9.into())]),
        exit(),
    ]), @r#"
    metric name=val/loss glob= step_metric= expanded=false
    metric name=val/acc glob= step_metric= expanded=false
    metric name=quiet glob= step_metric= expanded=false
    metric name=epoch glob= step_metric= expanded=false
    metric name= glob=val/* step_metric=epoch expanded=false
    history step=0 epoch=0 val/loss=0.5 val/acc=0.1 quiet=1 _runtime=0.06 _step=0 _timestamp=1000.5
    history step=1 epoch=1 val/loss=0.2 val/acc=0.3 _runtime=0.07 _step=1 _timestamp=1000.5
    metric name=val/f1 glob= step_metric=epoch expanded=true
    history step=2 val/f1=0.7 epoch=1 _runtime=0.08 _step=2 _timestamp=1000.5
    history step=3 val/loss=0.9 _runtime=0.09 _step=3 _timestamp=1000.5
    summary epoch=1 val/loss={"min":0.2} val/acc={"max":0.3,"mean":0.2,"last":0.3} _step=3 _timestamp=1000.5 val/f1=0.7 _wandb.runtime=0 _runtime=0
    exit code=0 runtime=0
    "#);
}

#[test]
fn user_summary_replaces_derived_values() {
    insta::assert_snapshot!(run(vec![
        define("loss", |m| m.summary = Some(MetricSummary { min: true, ..Default::default() })),
        log(&[("loss", 0.5.into())]),
        Input::Summary(SummaryChange {
            update: vec![(vec!["loss".into()], 0.01.into()), (vec!["best_acc".into()], 0.99.into())],
            remove: vec![],
        }),
        exit(),
    ]), @r#"
    metric name=loss glob= step_metric= expanded=false
    history step=0 loss=0.5 _runtime=0.02 _step=0 _timestamp=1000.5
    summary loss=0.01 best_acc=0.99
    summary _step=0 _timestamp=1000.5 _wandb.runtime=0 _runtime=0
    exit code=0 runtime=0
    "#);
}

/// A config change keeps its paths: a top-level key as `key`, a longer path as
/// `nested_key` (as the SDK sends `_wandb.visualize.<chart>`), removals likewise.
#[test]
fn config_changes_keep_nested_keys() {
    let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
    insta::assert_snapshot!(run(vec![
        Input::Config(ConfigChange {
            update: vec![
                (path("lr"), 0.1.into()),
                (path("_wandb.visualize.roc"), Value::Map(vec![("panel_type".into(), "Vega2".into())])),
            ],
            remove: vec![path("old"), path("model.layers")],
        }),
    ]), @r#"config lr=0.1 [_wandb.visualize.roc]={"panel_type":"Vega2"} -old -[model.layers]"#);
}

/// `run.summary["k"] = None` removes `k`, as under W&B's core; a null inside a value stays.
#[test]
fn a_summary_key_set_to_null_is_removed() {
    let set = |key: &str, value: Value| {
        Input::Summary(SummaryChange {
            update: vec![(vec![key.into()], value)],
            remove: vec![],
        })
    };
    let mut h = Handler::new(HandlerConfig::default());
    let mut out = Vec::new();
    let at = Duration::from_secs(1);
    h.handle(set("k", 1.into()), at, &mut out);
    h.handle(
        set("keep", Value::Map(vec![("y".into(), Value::Null)])),
        at,
        &mut out,
    );
    h.handle(set("k", Value::Null), at, &mut out);
    let rendered: Vec<String> = out.iter().map(render).collect();
    insta::assert_snapshot!(rendered.join("\n"), @r#"
    summary k=1
    summary keep={"y":null}
    summary -k
    "#);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    h.handle(Input::Query(Query::Summary(tx)), at, &mut out);
    let summary = rx.recv().unwrap();
    let keys: Vec<String> = summary.iter().map(|(path, _)| path.join(".")).collect();
    assert_eq!(keys, ["keep", "_wandb.runtime"]);
}

#[test]
fn summary_checkpoints_hold_only_what_changed() {
    let mut h = Handler::new(HandlerConfig {
        summary_checkpoint: Duration::from_secs(10),
        ..Default::default()
    });
    let mut out = Vec::new();
    let secs = Duration::from_secs;
    h.handle(log(&[("a", 1.into()), ("b", 1.into())]), secs(10), &mut out);
    h.handle(log(&[("a", 2.into())]), secs(11), &mut out);
    h.handle(log(&[("a", 3.into())]), secs(21), &mut out);
    let rendered: Vec<String> = out.iter().map(render).collect();
    insta::assert_snapshot!(rendered.join("\n"), @r"
    history step=0 a=1 b=1 _runtime=10 _step=0 _timestamp=1000.5
    summary a=1 b=1 _runtime=10 _step=0 _timestamp=1000.5
    history step=1 a=2 _runtime=11 _step=1 _timestamp=1000.5
    history step=2 a=3 _runtime=21 _step=2 _timestamp=1000.5
    summary a=3 _runtime=21 _step=2 _timestamp=1000.5
    ");
}

#[test]
fn queries_and_inputs_after_exit() {
    let mut h = Handler::new(HandlerConfig {
        starting_step: 7,
        ..Default::default()
    });
    let mut out = Vec::new();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    h.handle(
        Input::Query(Query::HistoryStep(tx)),
        Duration::ZERO,
        &mut out,
    );
    assert_eq!(rx.recv().unwrap(), 7);
    h.handle(log(&[("x", 1.into())]), Duration::ZERO, &mut out);
    h.handle(exit(), Duration::from_secs(3), &mut out);
    let n = out.len();
    h.handle(log(&[("x", 2.into())]), Duration::ZERO, &mut out);
    assert_eq!(out.len(), n, "nothing after exit");
    assert_eq!(h.take_warnings(), vec![Warning::AfterExit]);
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    h.handle(
        Input::Query(Query::Summary(tx)),
        Duration::from_secs(3),
        &mut out,
    );
    let summary = rx.recv().unwrap();
    assert!(summary.contains(&(vec!["x".to_owned()], Value::Int(1))));
    assert!(summary.contains(&(
        vec!["_wandb".to_owned(), "runtime".to_owned()],
        Value::Int(3)
    )));
}

#[test]
fn system_metric_samples_keep_the_latest_few() {
    let stats = |secs: i64, items: &[(&str, &str)]| {
        Input::Record(Box::new(Record {
            record_type: Some(RecordType::Stats(StatsRecord {
                timestamp: Some(prost_types::Timestamp {
                    seconds: secs,
                    nanos: 0,
                }),
                item: items
                    .iter()
                    .map(|(key, value)| cairn_proto::StatsItem {
                        key: (*key).to_owned(),
                        value_json: (*value).to_owned(),
                    })
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        }))
    };
    let query = |h: &mut Handler| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        h.handle(
            Input::Query(Query::SystemMetrics(tx)),
            Duration::ZERO,
            &mut Vec::new(),
        );
        rx.recv().unwrap()
    };
    for keep in [0, 2] {
        let mut h = Handler::new(HandlerConfig {
            stats_buffer: keep,
            ..Default::default()
        });
        let mut out = Vec::new();
        for (secs, cpu) in [(1, "10"), (2, "20.5"), (3, "30")] {
            h.handle(
                stats(secs, &[("cpu", cpu), ("note", "\"text\"")]),
                Duration::ZERO,
                &mut out,
            );
        }
        assert_eq!(out.len(), 3, "every stats record is still written");
        let got: Vec<(String, Vec<(i64, f32)>)> = query(&mut h)
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().map(|(t, x)| (t.seconds, x)).collect()))
            .collect();
        let want = if keep == 0 {
            vec![]
        } else {
            vec![("cpu".to_owned(), vec![(2, 20.5), (3, 30.0)])]
        };
        assert_eq!(got, want, "keep {keep}");
    }
}
