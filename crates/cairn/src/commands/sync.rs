//! `cairn sync PATH...`: uploads runs that were logged offline, whose live upload did not
//! finish, or that crashed — cairn's and W&B's alike (both write the same `.wandb` log).
//!
//! Each PATH is a run folder (`wandb/offline-run-…` or `wandb/run-…`), a `.wandb` log, or
//! a folder holding run folders (`wandb/`). Runs upload in parallel (`--jobs`), each with
//! `cairn_core::upload::sync_log`; a run that finishes is marked as W&B marks it, with an
//! empty `run-<id>.wandb.synced` beside the log. Syncing again is harmless: the server
//! stores every line by its offset, so nothing is duplicated, and a sync cut short is
//! simply run again.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use cairn_core::client::{self, ConnectionConfig, Until};
use cairn_core::upload::{self, RunOverrides, UploadSettings};

use super::Status;

/// Arguments of `cairn sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    /// Run folders, `.wandb` logs, or folders holding run folders (such as `wandb/`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Upload into this project instead of the run's own.
    #[arg(long)]
    project: Option<String>,
    /// Upload into this entity (user or team) instead of the run's own.
    #[arg(long)]
    entity: Option<String>,
    /// Upload under this run id instead of the run's own (one run only).
    #[arg(long)]
    id: Option<String>,
    /// Upload every run with this job type instead of its own.
    #[arg(long)]
    job_type: Option<String>,
    /// Rename tags on upload: `old1=new1,old2=new2`.
    #[arg(long)]
    replace_tags: Option<String>,
    /// Follow logs still being written (a run in progress, offline): upload as records
    /// arrive, until each run's exit record.
    #[arg(long)]
    live: bool,
    /// Runs uploaded at the same time.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// The server (default: `WANDB_BASE_URL`, else W&B's cloud).
    #[arg(long)]
    base_url: Option<String>,
}

/// `--replace-tags old1=new1,old2=new2` as old → new (W&B's format; spaces around names
/// are dropped).
fn parse_replace_tags(text: &str) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((old, new)) = pair.split_once('=') else {
            bail!("--replace-tags: {pair:?} is not old=new");
        };
        let (old, new) = (old.trim(), new.trim());
        if old.is_empty() || new.is_empty() {
            bail!("--replace-tags: {pair:?} names an empty tag");
        }
        out.insert(old.to_owned(), new.to_owned());
    }
    Ok(out)
}

/// One run to upload.
#[derive(Debug, Clone)]
struct Target {
    log: PathBuf,
    files_dir: PathBuf,
}

/// The runs `path` names.
fn targets(path: &Path) -> Result<Vec<Target>> {
    let target = |log: PathBuf| {
        let files_dir = log
            .parent()
            .map(|p| p.join("files"))
            .unwrap_or_else(|| PathBuf::from("files"));
        Target { log, files_dir }
    };
    if path.is_file() {
        return Ok(vec![target(path.to_owned())]);
    }
    if !path.is_dir() {
        bail!("{}: no such run folder or .wandb file", path.display());
    }
    let logs = logs_in(path)?;
    if !logs.is_empty() {
        return Ok(logs.into_iter().map(target).collect());
    }
    // A folder of run folders (`wandb/`): each `run-*` / `offline-run-*` inside.
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = fs_entries(path)?;
    entries.sort();
    for entry in entries {
        let name = entry
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if entry.is_dir() && (name.starts_with("run-") || name.starts_with("offline-run-")) {
            found.extend(logs_in(&entry)?.into_iter().map(target));
        }
    }
    if found.is_empty() {
        bail!("{}: holds no run (no run-*.wandb log)", path.display());
    }
    Ok(found)
}

fn fs_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))? {
        out.push(
            entry
                .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
                .path(),
        );
    }
    Ok(out)
}

/// The `.wandb` logs directly inside a run folder.
fn logs_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut logs: Vec<PathBuf> = fs_entries(dir)?
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "wandb"))
        .collect();
    logs.sort();
    Ok(logs)
}

/// Runs `cairn sync`.
pub(crate) fn run(args: &SyncArgs) -> Result<Status> {
    let mut all = Vec::new();
    for path in &args.paths {
        all.extend(targets(path)?);
    }
    if args.id.is_some() && all.len() > 1 {
        bail!("--id names one run, but {} runs were given", all.len());
    }
    let overrides = RunOverrides {
        entity: args.entity.clone(),
        project: args.project.clone(),
        run_id: args.id.clone(),
        job_type: args.job_type.clone(),
        tag_replacements: match &args.replace_tags {
            Some(text) => parse_replace_tags(text)?,
            None => Default::default(),
        },
    };
    let base_url = args
        .base_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(client::credentials::base_url);
    let Some(api_key) = client::credentials::api_key(&base_url) else {
        bail!("no API key for {base_url}: set WANDB_API_KEY or run `wandb login`");
    };
    let connection = ConnectionConfig {
        base_url: base_url.clone(),
        api_key,
        user_agent: format!("cairn {}", env!("CARGO_PKG_VERSION")),
    };
    let total = all.len();
    let total_bytes: u64 = all
        .iter()
        .filter_map(|t| std::fs::metadata(&t.log).ok())
        .map(|m| m.len())
        .sum();
    let queue = Mutex::new(all.into_iter());
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    // Bytes of finished runs, plus one live counter per run in flight.
    let finished_bytes = AtomicU64::new(0);
    let live: Mutex<Vec<Arc<AtomicU64>>> = Mutex::new(Vec::new());
    let all_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        if std::io::stderr().is_terminal() {
            scope.spawn(|| {
                while !all_done.load(Ordering::SeqCst) {
                    let in_flight: u64 = live
                        .lock()
                        .map(|l| l.iter().map(|p| p.load(Ordering::Relaxed)).sum())
                        .unwrap_or(0);
                    progress_bar(
                        done.load(Ordering::SeqCst),
                        total,
                        finished_bytes.load(Ordering::SeqCst) + in_flight,
                        total_bytes,
                    );
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
            });
        }
        let workers: Vec<_> = (0..args.jobs.clamp(1, 32).min(total))
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().ok().and_then(|mut q| q.next());
                        let Some(target) = next else { break };
                        let mut settings =
                            UploadSettings::new(connection.clone(), target.files_dir.clone())
                                .with_retry_env();
                        settings.overrides.clone_from(&overrides);
                        let progress = Arc::new(AtomicU64::new(0));
                        if let Ok(mut l) = live.lock() {
                            l.push(progress.clone());
                        }
                        let outcome = upload::sync_log(
                            &target.log,
                            settings,
                            &Until::default(),
                            progress.clone(),
                            args.live.then_some(Duration::from_secs(1)),
                        );
                        if let Ok(mut l) = live.lock() {
                            l.retain(|p| !Arc::ptr_eq(p, &progress));
                        }
                        let size = std::fs::metadata(&target.log).map_or(0, |m| m.len());
                        finished_bytes.fetch_add(size, Ordering::SeqCst);
                        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                        report(n, total, &base_url, &target, outcome, &failed);
                    }
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
        all_done.store(true, Ordering::SeqCst);
    });
    if std::io::stderr().is_terminal() {
        #[allow(clippy::print_stderr, reason = "clears the progress line")]
        {
            eprint!("\r\x1b[K");
        }
    }
    if failed.load(Ordering::SeqCst) > 0 {
        bail!(
            "{} of {total} runs could not be synced (run the same command again to retry)",
            failed.load(Ordering::SeqCst)
        );
    }
    Ok(Status::Success)
}

/// One line of progress on a terminal, redrawn in place.
#[allow(clippy::print_stderr, reason = "the command's own progress")]
fn progress_bar(done: usize, total: usize, bytes: u64, total_bytes: u64) {
    const WIDTH: usize = 30;
    let fraction = if total_bytes == 0 {
        1.0
    } else {
        (bytes as f64 / total_bytes as f64).min(1.0)
    };
    let filled = (fraction * WIDTH as f64) as usize;
    eprint!(
        "\r[{}{}] {done}/{total} runs, {:.1}/{:.1} MiB ",
        "#".repeat(filled),
        " ".repeat(WIDTH - filled),
        bytes as f64 / 1048576.0,
        total_bytes as f64 / 1048576.0
    );
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command's own progress"
)]
fn report(
    n: usize,
    total: usize,
    base_url: &str,
    target: &Target,
    outcome: Result<upload::UploadReport, upload::UploadError>,
    failed: &AtomicUsize,
) {
    let run = target.log.parent().unwrap_or(&target.log).display();
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K"); // clear the progress line
    }
    match outcome {
        Ok(report) => {
            let marker = PathBuf::from(format!("{}.synced", target.log.display()));
            if let Err(err) = std::fs::write(&marker, b"") {
                eprintln!("cairn sync: cannot mark {run} as synced: {err}");
            }
            for warning in report.warnings.iter().chain(&report.damage) {
                eprintln!("cairn sync: {run}: {warning}");
            }
            println!(
                "[{n}/{total}] synced {run} -> {base_url}/{} ({} history rows, {} files)",
                report.path.as_deref().unwrap_or("?"),
                report.history_lines,
                report.files.len()
            );
        }
        Err(err) => {
            failed.fetch_add(1, Ordering::SeqCst);
            eprintln!("[{n}/{total}] cairn sync: {run}: {err}");
        }
    }
}
