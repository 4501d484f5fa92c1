//! Finishing runs: the SDK's `exit` record, and the runs the user never finished.
//!
//! `exit` finishes the run on a thread of its own (`cairn-finish`) — the connection reads
//! on, and other runs are never held up — and is answered only once the finish is done
//! (online: once the upload is done, or its deadline passed; the log keeps everything for
//! `cairn sync`). Just before the finish, the summary and the samples the SDK asks for
//! afterwards, for its footer, are taken from the handler; after it, the final summary
//! the sender wrote and the files the upload sent are kept in the run's `Finished` phase.
//!
//! At teardown (or when the parent died) [`finish_unfinished`] finishes every run still
//! running, waits for each, and reports the footer the SDK would have printed. Either way
//! the run's `internal_messages` poll is answered empty at the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::input::Query;
use cairn_proto::result::ResultType;
use cairn_proto::{FileCounts, FilePusherStats, RunExitResult, Settings, SummaryItem};

use super::answers::{result, sample_items, summary_items};
use super::run::{Finished, Phase, Run, ask, close_messages, finished, lock, take_pipeline};
use crate::responder::Responder;

/// The finish's deadline: none (the settings' `finish_timeout` is not read); a week stands
/// for none without overflowing deadline arithmetic.
const NO_FINISH_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// `exit`: finishes the run on a thread of its own, then answers it and ends the run's
/// `internal_messages` poll.
pub(super) fn exit<S>(
    run: Arc<Mutex<Run>>,
    request_id: &str,
    exit_code: i32,
    reply: &Arc<Responder<S>>,
) where
    S: std::io::Write + Send + 'static,
{
    let request_id = request_id.to_owned();
    let reply = reply.clone();
    let spawned = std::thread::Builder::new()
        .name("cairn-finish".into())
        .spawn(move || {
            if complete(&run, exit_code).is_none() {
                let mut guard = lock(&run);
                if !matches!(guard.phase, Phase::Finished(_)) {
                    guard.phase = Phase::Finished(Box::default());
                }
            }
            let timed_out = finished(&run, |f| f.timed_out).unwrap_or(false);
            if !request_id.is_empty() {
                reply.send(&result(
                    &request_id,
                    ResultType::ExitResult(RunExitResult { timed_out }),
                ));
            }
            close_messages(&run);
        });
    if spawned.is_err() {
        // No thread: the answer never comes; the SDK's own exit timeout takes over.
    }
}

/// `inform_teardown` (or a parent gone): finishes every one of `runs` the user never
/// finished with `exit_code`, waits, and reports each one's footer (the SDK prints none
/// then).
pub(super) fn finish_unfinished(
    runs: Vec<Arc<Mutex<Run>>>,
    exit_code: i32,
    reporter: &dyn crate::shared::Reporter,
) {
    for run in runs {
        if complete(&run, exit_code).is_some() {
            let guard = lock(&run);
            let lines = footer(&guard.settings);
            let id = guard
                .answered
                .as_ref()
                .map(|r| r.run_id.clone())
                .unwrap_or_default();
            drop(guard);
            if !lines.is_empty() {
                reporter.report(crate::shared::ServiceEvent::Footer { run: id, lines });
            }
        }
        close_messages(&run);
    }
}

/// Finishes a running run with `exit_code` and keeps what the SDK asks for afterwards:
/// the final summary (the sender's `wandb-summary.json`, which includes a row the exit
/// committed; the handler's summary taken just before when that file is missing), the
/// samples for the footer's sparklines and the files uploaded. `None` when the run was
/// not running.
fn complete(run: &Mutex<Run>, exit_code: i32) -> Option<()> {
    let before = ask(run, Query::Summary).map(summary_items);
    let samples = ask(run, Query::SampledHistory)
        .map(sample_items)
        .unwrap_or_default();
    let pipeline = take_pipeline(run)?;
    let report = pipeline.finish(exit_code, NO_FINISH_LIMIT);
    let files_dir = lock(run).files_dir.clone();
    let summary = files_dir
        .as_deref()
        .and_then(final_summary)
        .or(before)
        .unwrap_or_default();
    let (timed_out, files) = match &report {
        Ok(report) => (
            report.timed_out,
            report
                .upload
                .as_ref()
                .and_then(|u| u.as_ref().ok())
                .map(|upload| file_counts(upload, files_dir.as_deref())),
        ),
        Err(_) => (true, None),
    };
    lock(run).phase = Phase::Finished(Box::new(Finished {
        timed_out,
        summary,
        samples,
        files,
    }));
    Some(())
}

/// The summary the sender wrote at the finish (`files/wandb-summary.json`), as items.
fn final_summary(files_dir: &std::path::Path) -> Option<Vec<SummaryItem>> {
    let text = std::fs::read_to_string(files_dir.join("wandb-summary.json")).ok()?;
    let serde_json::Value::Object(map) = serde_json::from_str(&text).ok()? else {
        return None;
    };
    Some(
        map.into_iter()
            .map(|(key, value)| SummaryItem {
                key,
                value_json: value.to_string(),
                ..Default::default()
            })
            .collect(),
    )
}

/// `poll_exit`'s file counts (the online footer's "Synced N W&B file(s), M media
/// file(s)…", each file once; artifact files include each manifest) and byte totals, from
/// what the upload sent.
fn file_counts(
    upload: &cairn_core::upload::UploadReport,
    files_dir: Option<&std::path::Path>,
) -> (FileCounts, FilePusherStats) {
    let mut counts = FileCounts {
        artifact_count: i32::try_from(upload.artifact_files).unwrap_or(i32::MAX),
        ..Default::default()
    };
    let mut bytes = 0i64;
    // A file uploaded twice (at the start and again at the end) is one file.
    let names: std::collections::BTreeSet<&String> = upload.files.iter().collect();
    for name in names {
        if name.starts_with("media/") {
            counts.media_count += 1;
        } else if name.starts_with("wandb-")
            || name.starts_with("code/")
            || matches!(
                name.as_str(),
                "output.log" | "config.yaml" | "requirements.txt" | "diff.patch"
            )
        {
            counts.wandb_count += 1;
        } else {
            counts.other_count += 1;
        }
        if let Some(dir) = files_dir {
            let size = std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
            bytes = bytes.saturating_add(i64::try_from(size).unwrap_or(i64::MAX));
        }
    }
    let pusher = FilePusherStats {
        uploaded_bytes: bytes,
        total_bytes: bytes,
        deduped_bytes: 0,
    };
    (counts, pusher)
}

/// What the SDK would have printed at the end of a run it never finished: where to find
/// the run (online) or how to upload it (offline), and its logs. Nothing when the
/// settings silence the SDK.
fn footer(settings: &Settings) -> Vec<String> {
    if settings.silent == Some(true) || settings.quiet == Some(true) {
        return Vec::new();
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let offline = settings
        .mode
        .as_deref()
        .is_some_and(|m| matches!(m, "offline" | "dryrun"));
    let mut lines = Vec::new();
    if offline {
        let dir = text(&settings.sync_dir);
        lines.push("wandb: You can sync this run to the cloud by running:".to_owned());
        lines.push(format!("wandb: wandb sync {dir}"));
    } else if let Some(url) = settings.run_url.as_ref().filter(|u| !u.is_empty()) {
        let name = settings
            .run_name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| settings.run_id.clone())
            .unwrap_or_default();
        lines.push(format!("wandb: View run {name} at: {url}"));
    }
    if let Some(logs) = settings.log_dir.as_ref().filter(|d| !d.is_empty()) {
        lines.push(format!("wandb: Find logs at: {logs}"));
    }
    lines
}
