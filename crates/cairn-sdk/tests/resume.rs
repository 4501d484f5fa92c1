//! Resuming through the SDK: against a fake W&B server that holds the run (its config,
//! summary and last step), and `resume="auto"` and the workspace settings file, offline.

use std::path::Path;
use std::time::Duration;

use cairn_core::testing::FakeServer;
use cairn_proto::Record;
use cairn_proto::record::RecordType;
use cairn_sdk::Value;
use cairn_store::LogReader;
use serde_json::json;

/// A W&B server holding run `resumed1` (`None`: no such run) that accepts the upload.
fn server(holds_run: bool) -> FakeServer {
    let bucket = holds_run.then(|| {
        json!({
            "id": "UnVuOjE=",
            "historyLineCount": 10,
            "historyTail": json!([json!({"_step": 9, "_runtime": 30.5}).to_string()]).to_string(),
            "config": json!({"lr": {"value": 0.1}, "layers": {"value": 3}}).to_string(),
            "summaryMetrics": json!({"loss": 0.25, "acc": 0.5}).to_string(),
        })
    });
    FakeServer::wandb(bucket).unwrap()
}

fn online(dir: &Path, server: &FakeServer, resume: &str) -> cairn_sdk::RunBuilder {
    cairn_sdk::init()
        .dir(dir)
        .mode("online")
        .base_url(server.base_url())
        .api_key("test-key")
        .project("p")
        .id("resumed1")
        .resume(resume)
        .console(false)
        .handle_signals(false)
        .system_metrics(None)
        .finish_deadline(Duration::from_secs(3))
}

fn records(log: &Path) -> Vec<Record> {
    LogReader::open(log)
        .unwrap()
        .records()
        .map(|r| r.unwrap().1)
        .collect()
}

fn summary_value(summary: &[(Vec<String>, Value)], key: &str) -> Option<Value> {
    summary
        .iter()
        .find(|(path, _)| path == &[key.to_owned()])
        .map(|(_, value)| value.clone())
}

#[test]
fn a_resumed_run_gets_the_stored_config_summary_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let fake = server(true);
    let run = online(dir.path(), &fake, "must")
        .config("lr", 0.01)
        .start()
        .unwrap();
    assert_eq!(run.step().unwrap(), 10);
    let summary = run.summary().unwrap();
    assert_eq!(summary_value(&summary, "acc"), Some(Value::Float(0.5)));
    assert_eq!(summary_value(&summary, "loss"), Some(Value::Float(0.25)));
    run.log([("loss", 0.125)]).unwrap();
    let summary = run.summary().unwrap();
    assert_eq!(summary_value(&summary, "loss"), Some(Value::Float(0.125)));
    let log = run.log_path().unwrap().to_path_buf();
    run.finish().unwrap();
    fake.finish();

    let recs = records(&log);
    let Some(RecordType::Run(record)) = &recs[1].record_type else {
        panic!("{:?}", recs[1]);
    };
    assert!(record.resumed);
    assert_eq!(record.starting_step, 10);
    let config: Vec<(&str, &str)> = record
        .config
        .iter()
        .flat_map(|c| &c.update)
        .map(|i| (i.key.as_str(), i.value_json.as_str()))
        .collect();
    // This init's lr wins; the stored layers come back.
    assert_eq!(config, [("_wandb", "{}"), ("lr", "0.01"), ("layers", "3")]);
    let steps: Vec<i64> = recs
        .iter()
        .filter_map(|r| match &r.record_type {
            Some(RecordType::History(h)) => h.step.as_ref().map(|s| s.num),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [10]);
}

#[test]
fn must_on_a_missing_run_and_never_on_an_existing_one_fail_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (holds_run, resume, expect) in [
        (false, "must", "run resumed1 does not exist on the server"),
        (true, "never", "run resumed1 already exists on the server"),
    ] {
        let fake = server(holds_run);
        let err = online(dir.path(), &fake, resume).start().unwrap_err();
        assert!(err.to_string().starts_with(expect), "{err}");
        fake.finish();
    }
}

#[test]
fn resume_auto_comes_back_to_the_run_that_did_not_end_well() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = || {
        cairn_sdk::init()
            .dir(dir.path())
            .mode("offline")
            .resume("auto")
            .console(false)
            .handle_signals(false)
            .system_metrics(None)
    };
    let first = quiet().start().unwrap();
    let id = first.id().to_owned();
    first.finish_with(1).unwrap();
    let resume_file = dir.path().join("wandb/wandb-resume.json");
    assert!(resume_file.exists());
    // The next start takes the id of the run that failed; ending well forgets it.
    let second = quiet().start().unwrap();
    assert_eq!(second.id(), id);
    second.finish().unwrap();
    assert!(!resume_file.exists());
    let third = quiet().start().unwrap();
    assert_ne!(third.id(), id);
    third.finish().unwrap();
}

#[test]
fn the_workspace_settings_file_configures_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wandb")).unwrap();
    std::fs::write(
        dir.path().join("wandb/settings"),
        "[default]\nproject = from-file\nrun_tags = a, b\n",
    )
    .unwrap();
    let run = cairn_sdk::init()
        .dir(dir.path())
        .mode("offline")
        .name("from code")
        .console(false)
        .handle_signals(false)
        .system_metrics(None)
        .start()
        .unwrap();
    let log = run.log_path().unwrap().to_path_buf();
    run.finish().unwrap();
    let recs = records(&log);
    let Some(RecordType::Run(record)) = &recs[1].record_type else {
        panic!("{:?}", recs[1]);
    };
    assert_eq!(record.project, "from-file");
    assert_eq!(record.tags, ["a", "b"]);
    assert_eq!(record.display_name, "from code");
}
