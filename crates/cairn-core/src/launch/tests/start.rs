//! `launch` end to end against a fake server: what the server is asked, what each resume
//! setting makes of its answer, and what the run's log starts with.

use std::path::Path;
use std::time::Duration;

use cairn_proto::record::RecordType;
use cairn_proto::{ConfigItem, ConfigRecord, Record, RunRecord};
use cairn_store::LogReader;
use serde_json::json;

use crate::input::{Input, LogCall};
use crate::launch::{Explicit, LaunchError, Launched, RunFolder, RunSettings, launch};
use crate::testing::FakeServer;
use crate::value::Value;

/// What the fake server holds of run `r1`: ten history rows, a config and a summary.
fn stored_run() -> serde_json::Value {
    json!({
        "id": "UnVuOjE=",
        "historyLineCount": 10,
        "eventsLineCount": 0,
        "logLineCount": 0,
        "historyTail": json!([json!({"_step": 9, "_runtime": 30.5}).to_string()]).to_string(),
        "config": json!({"lr": {"value": 0.1}, "layers": {"value": 3}}).to_string(),
        "summaryMetrics": json!({"loss": 0.25, "acc": 0.5}).to_string(),
    })
}

/// A W&B server that holds `bucket` (`None`: no such run) and accepts the upload.
fn server(bucket: Option<serde_json::Value>) -> FakeServer {
    FakeServer::wandb(bucket).unwrap()
}

fn settings(dir: &Path, mode: &str, base_url: &str, resume: Option<&str>) -> RunSettings {
    RunSettings::from_explicit(Explicit {
        mode: Some(mode.into()),
        base_url: Some(base_url.into()),
        api_key: Some("key".into()),
        project: Some("p".into()),
        run_id: Some("r1".into()),
        resume: resume.map(str::to_owned),
        dir: Some(dir.to_path_buf()),
        system_metrics: Some(None),
        ..Explicit::default()
    })
    .unwrap()
}

/// The init's record: `lr` set anew, `batch` new.
fn record(settings: &RunSettings) -> RunRecord {
    let item = |key: &str, value_json: &str| ConfigItem {
        key: key.into(),
        value_json: value_json.into(),
        ..Default::default()
    };
    RunRecord {
        config: Some(ConfigRecord {
            update: vec![item("lr", "0.01"), item("batch", "64")],
            ..Default::default()
        }),
        ..settings.run_record(std::time::SystemTime::now())
    }
}

/// Logs one row, finishes, and returns the log's records.
fn log_and_finish(launched: Launched) -> Vec<Record> {
    let input = launched.pipeline.input().clone();
    input
        .send(Input::Log(LogCall {
            items: vec![("loss".into(), Value::Float(0.125))],
            step: None,
            commit: None,
            timestamp: 0.0,
        }))
        .unwrap();
    drop(input);
    let report = launched.pipeline.finish(0, Duration::from_secs(3)).unwrap();
    assert!(report.writer.error.is_none());
    LogReader::open(&launched.layout.log_path)
        .unwrap()
        .records()
        .map(|r| r.unwrap().1)
        .collect()
}

fn config_of(run: &RunRecord) -> Vec<(String, String)> {
    run.config
        .iter()
        .flat_map(|c| &c.update)
        .map(|i| (i.key.clone(), i.value_json.clone()))
        .collect()
}

#[test]
fn a_resumed_run_continues_steps_runtime_config_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let fake = server(Some(stored_run()));
    let settings = settings(dir.path(), "online", fake.base_url(), Some("allow"));
    let launched = launch(settings.clone(), record(&settings)).unwrap();
    assert!(launched.run.resumed);
    assert_eq!((launched.run.starting_step, launched.run.runtime), (10, 30));
    assert_eq!(
        config_of(&launched.run),
        [
            ("lr".to_owned(), "0.01".to_owned()),
            ("batch".to_owned(), "64".to_owned()),
            ("layers".to_owned(), "3".to_owned()),
        ]
    );
    assert!(launched.connection.is_some());
    assert!(
        launched
            .layout
            .run_dir
            .starts_with(dir.path().join("wandb"))
    );
    let records = log_and_finish(launched);
    let requests = fake.finish();

    // The server was asked about the run first.
    let ask: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(ask["operationName"], "RunResumeStatus");
    assert_eq!(
        ask["variables"],
        json!({"project": "p", "entity": null, "name": "r1"})
    );

    // The log: the resumed run record, the restored summary, then the new row at step 10.
    let Some(RecordType::Run(run)) = &records[1].record_type else {
        panic!("{:?}", records[1]);
    };
    assert!(run.resumed);
    assert_eq!(run.starting_step, 10);
    let Some(RecordType::Summary(summary)) = &records[2].record_type else {
        panic!("{:?}", records[2]);
    };
    let restored: Vec<(&str, &str)> = summary
        .update
        .iter()
        .map(|i| (i.key.as_str(), i.value_json.as_str()))
        .collect();
    assert_eq!(restored, [("acc", "0.5"), ("loss", "0.25")]);
    let history = records
        .iter()
        .find_map(|r| match &r.record_type {
            Some(RecordType::History(h)) => Some(h),
            _ => None,
        })
        .unwrap();
    assert_eq!(history.step.as_ref().unwrap().num, 10);
    let runtime = history.item.iter().find(|i| i.key == "_runtime").unwrap();
    let runtime: f64 = runtime.value_json.parse().unwrap();
    assert!(runtime >= 30.5, "{runtime}");
}

#[test]
fn must_on_a_missing_run_and_never_on_an_existing_one_are_errors_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (bucket, resume, expect) in [
        (None, "must", "run r1 does not exist on the server"),
        (
            Some(stored_run()),
            "never",
            "run r1 already exists on the server",
        ),
    ] {
        let fake = server(bucket);
        let settings = settings(dir.path(), "online", fake.base_url(), Some(resume));
        let err = launch(settings.clone(), record(&settings)).unwrap_err();
        assert!(err.is_usage(), "{err}");
        assert!(err.to_string().starts_with(expect), "{err}");
        fake.finish();
    }
    // Nothing was created for them.
    assert!(!dir.path().join("wandb").exists());
}

#[test]
fn allow_and_never_on_a_missing_run_start_it_new() {
    for resume in ["allow", "never", "auto"] {
        let dir = tempfile::tempdir().unwrap();
        let fake = server(None);
        let settings = settings(dir.path(), "online", fake.base_url(), Some(resume));
        let launched = launch(settings.clone(), record(&settings)).unwrap();
        assert!(!launched.run.resumed, "{resume}");
        assert_eq!(launched.run.starting_step, 0);
        let records = log_and_finish(launched);
        assert!(
            !matches!(records[2].record_type, Some(RecordType::Summary(_))),
            "{resume}: no summary is restored"
        );
        fake.finish();
    }
}

#[test]
fn an_unreachable_server_is_an_error_naming_the_run() {
    // A server that answers every request with a client error: not retried.
    let fake = FakeServer::start(|_| (403, r#"{"errors":[{"message":"no"}]}"#.into())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), "online", fake.base_url(), Some("allow"));
    let err = launch(settings.clone(), record(&settings)).unwrap_err();
    assert!(matches!(err, LaunchError::Resume { .. }), "{err}");
    assert!(!err.is_usage());
    assert!(
        err.to_string()
            .starts_with("cannot ask the server about run r1: "),
        "{err}"
    );
    fake.finish();
}

#[test]
fn offline_no_server_is_asked_and_the_folder_is_marked_latest() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: asking would fail.
    let settings = settings(dir.path(), "offline", "http://127.0.0.1:9", Some("must"));
    let launched = launch(settings.clone(), record(&settings)).unwrap();
    assert!(!launched.run.resumed);
    assert!(launched.connection.is_none());
    let name = launched.layout.run_dir.file_name().unwrap().to_owned();
    assert!(name.to_string_lossy().starts_with("offline-run-"));
    let latest = std::fs::read_link(dir.path().join("wandb/latest-run")).unwrap();
    assert_eq!(latest.as_os_str(), name);
    let records = log_and_finish(launched);
    let Some(RecordType::Run(run)) = &records[1].record_type else {
        panic!("{:?}", records[1]);
    };
    assert_eq!((run.run_id.as_str(), run.project.as_str()), ("r1", "p"));
}

#[test]
fn auto_keeps_the_resume_file_and_no_resume_removes_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wandb/wandb-resume.json");
    let settings = settings(dir.path(), "offline", "http://127.0.0.1:9", Some("auto"));
    let launched = launch(settings.clone(), record(&settings)).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(crate::launch::resume_file_id(&text).as_deref(), Some("r1"));
    log_and_finish(launched);

    let mut settings = settings;
    settings.resume = None;
    let launched = launch(settings.clone(), record(&settings)).unwrap();
    assert!(!file.exists());
    log_and_finish(launched);
}

#[test]
fn an_exact_folder_is_used_as_given_and_left_unmarked() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("wandb/run-20260101_000000-r1");
    let mut settings = settings(dir.path(), "offline", "http://127.0.0.1:9", Some("auto"));
    settings.folder = RunFolder::Exact {
        log_path: run_dir.join("run-r1.wandb"),
        files_dir: run_dir.join("files"),
    };
    let launched = launch(settings.clone(), record(&settings)).unwrap();
    assert_eq!(launched.layout.run_dir, run_dir);
    assert!(run_dir.join("files").is_dir());
    assert!(!dir.path().join("wandb/latest-run").exists());
    assert!(!dir.path().join("wandb/wandb-resume.json").exists());
    log_and_finish(launched);
}

#[test]
fn a_disabled_run_is_not_started() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), "disabled", "http://127.0.0.1:9", None);
    let err = launch(settings.clone(), record(&settings)).unwrap_err();
    assert!(
        matches!(&err, LaunchError::Disabled { id } if id == "r1"),
        "{err}"
    );
    assert!(!dir.path().join("wandb").exists());
}
