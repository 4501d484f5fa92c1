//! The sender stage: the last stop of a run's records.
//!
//! Input: a bounded channel of numbered records from the writer. In offline mode (all there
//! is today) the sender keeps the run's files under `files/` up to date:
//!
//! * `output.log` — the console as a terminal shows it (`\r` rewrites collapsed, stderr
//!   lines marked), appended as lines complete;
//! * `config.yaml`, `wandb-summary.json`, `wandb-metadata.json` — rendered from the run,
//!   config, summary and environment records, written when the exit record arrives.
//!
//! The online sender (a later issue) adds uploads beside these files; it reads the same
//! records, which is the seam: nothing upstream changes.
//!
//! Shutdown: the stage ends when its input closes (the writer finished). Whatever happens,
//! it reports what it wrote in a [`SenderReport`]; file errors are reported, not fatal.

pub(crate) mod files;

pub use files::write_atomic;

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use cairn_proto::Record;
use cairn_proto::record::RecordType;

use crate::console::{ConsoleModel, Stream};
use files::RunFiles;

/// Where the sender writes.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// The run's `files/` folder.
    pub files_dir: PathBuf,
}

/// What the sender did, returned when it ends.
#[derive(Debug, Default)]
pub struct SenderReport {
    /// Files written or updated.
    pub files: Vec<PathBuf>,
    /// Console lines written to `output.log`.
    pub console_lines: u64,
    /// Whether the run's exit record arrived.
    pub saw_exit: bool,
    /// Problems writing files (the run's data is safe in the log regardless).
    pub errors: Vec<String>,
}

/// Whether the offline sender needs a record: history rows and system metrics only go to
/// the log.
pub fn wants(record: &Record) -> bool {
    !matches!(
        record.record_type,
        Some(RecordType::History(_) | RecordType::Stats(_))
    )
}

/// Runs the sender stage on the current thread until `input` closes.
pub fn run(config: SenderConfig, input: Receiver<Vec<Record>>) -> SenderReport {
    let mut report = SenderReport::default();
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
    report: &mut SenderReport,
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
