//! The SDK end to end, offline: what a run writes, how it ends, and what survives a kill.
//!
//! Tests that need their own process (environment variables, SIGKILL) re-run this test
//! binary as a child with `CAIRN_TEST_CHILD` naming the scenario.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cairn_proto::Record;
use cairn_proto::record::RecordType;
use cairn_sdk::{LogOptions, Value};
use cairn_store::LogReader;

fn quiet(dir: &Path) -> cairn_sdk::RunBuilder {
    cairn_sdk::init()
        .dir(dir)
        .mode("offline")
        .console(false)
        .system_metrics(None)
}

/// Every record of a log; fails on any damage.
fn records(log: &Path) -> Vec<Record> {
    LogReader::open(log)
        .unwrap()
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", log.display())).1)
        .collect()
}

fn kinds(records: &[Record]) -> Vec<&'static str> {
    records.iter().map(Record::kind).collect()
}

fn history_steps(records: &[Record]) -> Vec<i64> {
    records
        .iter()
        .filter_map(|r| match &r.record_type {
            Some(RecordType::History(h)) => Some(h.step.as_ref().map_or(0, |s| s.num)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_offline_run_writes_w_and_b_s_layout_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let run = quiet(dir.path())
        .id("sdk00001")
        .project("tests")
        .name("a run")
        .tags(["x", "y"])
        .config("lr", 0.01)
        .start()
        .unwrap();
    run.define_metric("loss").summary("min").apply().unwrap();
    for i in 0..10 {
        run.log([
            ("loss", 1.0 / f64::from(i + 1)),
            ("acc", f64::from(i) / 10.0),
        ])
        .unwrap();
    }
    run.log_with(
        [("partial", 1)],
        LogOptions {
            commit: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    run.log_at(20, [("jump", true)]).unwrap();
    run.config_update([("late", "yes")]).unwrap();
    run.summary_set([("best_acc", 0.99)]).unwrap();
    assert_eq!(run.step().unwrap(), 20);
    let run_dir = run.dir().unwrap().to_path_buf();
    let log = run.log_path().unwrap().to_path_buf();
    let report = run.finish().unwrap().unwrap();
    assert!(!report.timed_out);
    assert!(report.writer.error.is_none());

    let name = run_dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("offline-run-") && name.ends_with("-sdk00001"),
        "{name}"
    );
    assert_eq!(log, run_dir.join("run-sdk00001.wandb"));
    let latest = std::fs::read_link(dir.path().join("wandb/latest-run")).unwrap();
    assert_eq!(latest, PathBuf::from(&name));

    let recs = records(&log);
    assert_eq!(
        kinds(&recs),
        [
            "header",
            "run",
            "telemetry",
            "environment",
            "metric",
            "history",
            "history",
            "history",
            "history",
            "history",
            "history",
            "history",
            "history",
            "history",
            "history",
            "history",
            "config",
            "summary",
            "history",
            "summary",
            "exit"
        ]
    );
    let nums: Vec<i64> = recs.iter().map(|r| r.num).collect();
    assert_eq!(nums, (1..=recs.len() as i64).collect::<Vec<_>>());
    // commit=false accumulates into step 10, which the explicit jump to 20 commits.
    assert_eq!(history_steps(&recs), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20]);
    let Some(RecordType::Run(run_record)) = &recs[1].record_type else {
        panic!()
    };
    assert_eq!(run_record.project, "tests");
    assert_eq!(run_record.display_name, "a run");
    assert_eq!(run_record.tags, ["x", "y"]);

    let files = run_dir.join("files");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(files.join("wandb-summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["loss"], serde_json::json!({"min": 0.1}));
    assert_eq!(summary["best_acc"], 0.99);
    assert_eq!(summary["_step"], 20);
    let config = std::fs::read_to_string(files.join("config.yaml")).unwrap();
    assert!(config.contains("lr:\n  value: 0.01\n"), "{config}");
    assert!(config.contains("late:\n  value: \"yes\"\n"), "{config}");
}

#[test]
fn the_summary_answers_from_the_run_state() {
    let dir = tempfile::tempdir().unwrap();
    let run = quiet(dir.path()).start().unwrap();
    run.log([("loss", 0.5)]).unwrap();
    run.log([("loss", 0.25)]).unwrap();
    let summary = run.summary().unwrap();
    assert!(summary.contains(&(vec!["loss".to_owned()], Value::Float(0.25))));
    run.finish().unwrap();
}

#[test]
fn odd_values_and_keys_do_not_break_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = quiet(dir.path()).start().unwrap();
    let mut deep = Value::Int(1);
    for i in 0..200 {
        deep = Value::Map(vec![(format!("k{i}"), deep)]);
    }
    run.log([
        ("nan".to_owned(), Value::from(f64::NAN)),
        ("inf".to_owned(), Value::from(f64::INFINITY)),
        (String::new(), Value::from(1)),
        ("deep".to_owned(), deep),
        ("unicode ✓ 名前".to_owned(), Value::from("テスト")),
    ])
    .unwrap();
    let huge = "k".repeat(cairn_sdk::MAX_KEY_LEN + 1);
    assert!(matches!(
        run.log([(huge, 1)]),
        Err(cairn_sdk::RunError::BadKey(_))
    ));
    let log = run.log_path().unwrap().to_path_buf();
    run.finish().unwrap();
    assert_eq!(history_steps(&records(&log)), [0]);
}

#[test]
fn a_disabled_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = cairn_sdk::init()
        .dir(dir.path())
        .mode("disabled")
        .start()
        .unwrap();
    run.log([("x", 1)]).unwrap();
    assert!(run.dir().is_none());
    assert!(run.finish().unwrap().is_none());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_bad_mode_or_id_is_a_clear_error() {
    let err = cairn_sdk::init().mode("sometimes").start().unwrap_err();
    assert!(err.to_string().contains("sometimes"), "{err}");
    let err = cairn_sdk::init().id("../escape").start().unwrap_err();
    assert!(err.to_string().contains("../escape"), "{err}");
}

#[test]
fn dropping_a_run_finishes_it_and_a_panic_exits_with_1() {
    let dir = tempfile::tempdir().unwrap();
    let log = {
        let run = quiet(dir.path()).start().unwrap();
        run.log([("x", 1)]).unwrap();
        run.log_path().unwrap().to_path_buf()
    };
    let recs = records(&log);
    let Some(RecordType::Exit(exit)) = &recs.last().unwrap().record_type else {
        panic!()
    };
    assert_eq!(exit.exit_code, 0);

    let path = dir.path().to_path_buf();
    let log = std::thread::spawn(move || {
        let run = quiet(&path).start().unwrap();
        run.log([("x", 1)]).unwrap();
        let log = run.log_path().unwrap().to_path_buf();
        std::fs::write(path.join("log-path"), log.to_string_lossy().as_bytes()).unwrap();
        panic!("training diverged");
    })
    .join();
    assert!(log.is_err());
    let log = PathBuf::from(std::fs::read_to_string(dir.path().join("log-path")).unwrap());
    let recs = records(&log);
    let Some(RecordType::Exit(exit)) = &recs.last().unwrap().record_type else {
        panic!()
    };
    assert_eq!(exit.exit_code, 1);
    assert_eq!(history_steps(&recs), [0]);
}

fn child(scenario: &str, dir: &Path, envs: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("CAIRN_TEST_CHILD", scenario)
    .env("CAIRN_TEST_DIR", dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The child side of the process tests; does nothing in a normal test run.
#[test]
#[allow(clippy::print_stdout, reason = "reports to the parent test")]
fn child_process() {
    let Ok(scenario) = std::env::var("CAIRN_TEST_CHILD") else {
        return;
    };
    let dir = PathBuf::from(std::env::var("CAIRN_TEST_DIR").unwrap());
    match scenario.as_str() {
        "env" => {
            let run = cairn_sdk::init()
                .console(false)
                .system_metrics(None)
                .start()
                .unwrap();
            println!("\nLOG={}", run.log_path().unwrap().display());
            run.finish().unwrap();
        }
        "kill" => {
            let run = quiet(&dir).start().unwrap();
            for i in 0..5000 {
                run.log([("i", i)]).unwrap();
            }
            // Answered by the handler after every log above: they are on their way to
            // the writer.
            assert_eq!(run.step().unwrap(), 5000);
            println!("\nLOG={}", run.log_path().unwrap().display());
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        "sigterm" => {
            let run = quiet(&dir).start().unwrap();
            for i in 0..100 {
                run.log([("i", i)]).unwrap();
            }
            assert_eq!(run.step().unwrap(), 100);
            println!("\nLOG={}", run.log_path().unwrap().display());
            std::thread::sleep(std::time::Duration::from_secs(60));
            drop(run);
        }
        other => panic!("unknown child scenario {other}"),
    }
}

#[test]
fn w_and_b_environment_variables_configure_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let child = child(
        "env",
        dir.path(),
        &[
            ("WANDB_DIR", dir.path().to_str().unwrap()),
            ("WANDB_PROJECT", "from-env"),
            ("WANDB_RUN_ID", "envrun01"),
            ("WANDB_MODE", "offline"),
            ("WANDB_TAGS", "a, b"),
        ],
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let log = PathBuf::from(stdout.lines().find_map(|l| l.strip_prefix("LOG=")).unwrap());
    assert!(
        log.starts_with(dir.path().join("wandb")),
        "{}",
        log.display()
    );
    assert!(log.ends_with("run-envrun01.wandb"));
    let recs = records(&log);
    let Some(RecordType::Run(run)) = &recs[1].record_type else {
        panic!()
    };
    assert_eq!(run.project, "from-env");
    assert_eq!(run.tags, ["a", "b"]);
}

#[test]
fn sigkill_loses_nothing_the_writer_was_handed() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = child("kill", dir.path(), &[]);
    // libtest prints its own lines first; the child's report is the log's path.
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .find_map(|l| {
            l.ok()
                .and_then(|l| l.strip_prefix("LOG=").map(str::to_owned))
        })
        .unwrap();
    // Give the writer a moment to drain what the handler passed it, then kill.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let log = PathBuf::from(line.trim());
    let mut reader = LogReader::open(&log).unwrap();
    let mut steps = Vec::new();
    while let Some(item) = reader.next() {
        let record = item
            .expect("a killed run's log has no damage")
            .decode()
            .unwrap();
        if let Some(RecordType::History(h)) = record.record_type {
            steps.push(h.step.map_or(0, |s| s.num));
        }
    }
    assert_eq!(steps, (0..5000).collect::<Vec<_>>());
}

#[test]
fn sigterm_finishes_the_run_then_the_process_dies_of_it() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = child("sigterm", dir.path(), &[]);
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let log = lines
        .find_map(|l| {
            l.ok()
                .and_then(|l| l.strip_prefix("LOG=").map(PathBuf::from))
        })
        .unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(15), "{status:?}");
    let recs = records(&log);
    assert_eq!(history_steps(&recs), (0..100).collect::<Vec<_>>());
    let Some(RecordType::Exit(exit)) = &recs.last().unwrap().record_type else {
        panic!("no exit record")
    };
    assert_eq!(exit.exit_code, 143);
    assert!(
        log.parent()
            .unwrap()
            .join("files/wandb-summary.json")
            .exists()
    );
}
