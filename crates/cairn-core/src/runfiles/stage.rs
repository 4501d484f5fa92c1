//! The sender stage: the last stop of a run's records, which keeps the run's files current.
//!
//! Input: a bounded channel of batches of numbered records from the writer (only those
//! [`wants`] lets through). Output: the files under `files/`:
//!
//! * `output.log` — the console as a terminal shows it (`\r` rewrites collapsed, stderr
//!   lines marked), appended as lines complete;
//! * `config.yaml`, `wandb-summary.json`, `wandb-metadata.json` — rendered from the run,
//!   config, summary and environment records (`RunFiles`, in `super::model`), written when
//!   the exit record arrives.
//!
//! Uploads are not this stage's job: online, the uploader follows the log on its own thread
//! (`crate::upload::follow`), so nothing here waits on the network.
//!
//! Threads: runs on the thread that calls [`run`] (the pipeline's `cairn-sender`).
//! Shutdown: the stage ends when its input closes (the writer finished). Whatever happens,
//! it reports what it wrote in a [`RunFilesReport`]; file errors are reported, not fatal.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use cairn_proto::Record;
use cairn_proto::record::RecordType;

use super::model::RunFiles;
use crate::console::{ConsoleModel, Stream};

/// Where the stage writes.
#[derive(Clone, Debug)]
pub struct RunFilesConfig {
    /// The run's `files/` folder.
    pub files_dir: PathBuf,
}

/// What the stage did, returned when it ends.
#[derive(Debug, Default)]
pub struct RunFilesReport {
    /// Files written or updated.
    pub files: Vec<PathBuf>,
    /// Console lines written to `output.log`.
    pub console_lines: u64,
    /// Whether the run's exit record arrived.
    pub saw_exit: bool,
    /// Problems writing files (the run's data is safe in the log regardless).
    pub errors: Vec<String>,
}

/// Whether the stage needs a record: history rows and system metrics only go to
/// the log.
pub fn wants(record: &Record) -> bool {
    !matches!(
        record.record_type,
        Some(RecordType::History(_) | RecordType::Stats(_))
    )
}

/// Runs the stage on the current thread until `input` closes.
pub fn run(config: RunFilesConfig, input: Receiver<Vec<Record>>) -> RunFilesReport {
    let mut report = RunFilesReport::default();
    let mut files = RunFiles::default();
    let mut console = ConsoleModel::new();
    let mut output_log: Option<fs_err::File> = None;
    let output_path = config.files_dir.join("output.log");
    for record in input.into_iter().flatten() {
        files.observe(&record);
        match &record.record_type {
            Some(RecordType::OutputRaw(raw)) => {
                console.write(Stream::from_output_type(raw.output_type), &raw.line);
                let lines = console.take_completed_lines();
                append_lines(&output_path, &mut output_log, &lines, &mut report);
            }
            Some(RecordType::Exit(_)) => {
                report.saw_exit = true;
                let lines = std::mem::take(&mut console).finish();
                append_lines(&output_path, &mut output_log, &lines, &mut report);
                match files.write_all(&config.files_dir) {
                    Ok(written) => report.files.extend(written),
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
            _ => {}
        }
    }
    if output_log.is_some() {
        report.files.push(output_path);
    }
    report
}

fn append_lines(
    path: &std::path::Path,
    file: &mut Option<fs_err::File>,
    lines: &[String],
    report: &mut RunFilesReport,
) {
    if lines.is_empty() {
        return;
    }
    if file.is_none() {
        match fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => *file = Some(f),
            Err(e) => {
                report.errors.push(e.to_string());
                return;
            }
        }
    }
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    if let Some(f) = file {
        match f.write_all(text.as_bytes()) {
            Ok(()) => report.console_lines += lines.len() as u64,
            Err(e) => report.errors.push(e.to_string()),
        }
    }
}
