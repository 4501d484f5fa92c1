//! `cairn core [wandb-core flags]`: cairn's core as the service the `wandb` Python SDK
//! starts in place of `wandb-core` (see `cairn-service`). The binary also enters this mode
//! when it is started under the name `wandb-core`.
//!
//! The terminal belongs to the user's script, so the service writes nothing there; its
//! events go to `$WANDB_CACHE_DIR/wandb/logs/cairn-core-<time>-<pid>.log` (W&B's folder for
//! its core's log; `~/.cache` when the variable is unset).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};

use super::Status;

/// `cairn core`'s arguments: `wandb-core`'s own, passed through as they are.
#[derive(Debug, clap::Args)]
pub(crate) struct CoreArgs {
    /// `--port-filename PATH --pid N [--listen-on-localhost] [--detached --idle-timeout D]`;
    /// flags it does not know are ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Appends events to the core's log file, if it could be opened.
struct LogFile {
    file: Mutex<Option<std::fs::File>>,
    debug: bool,
}

impl cairn_service::Reporter for LogFile {
    fn report(&self, event: cairn_service::ServiceEvent) {
        use cairn_service::ServiceEvent as E;
        let routine = matches!(event, E::Connected(_) | E::Ignored { .. });
        if routine && !self.debug {
            return;
        }
        if let Some(file) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            let _ = writeln!(file, "{secs:.3} {event:?}");
        }
    }
}

fn log_path() -> Option<PathBuf> {
    let cache = std::env::var_os("WANDB_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let dir = cache.join("wandb").join("logs");
    std::fs::create_dir_all(&dir).ok()?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Some(dir.join(format!("cairn-core-{secs}-{}.log", std::process::id())))
}

/// Serves until torn down; the outcome is always a success once serving started.
pub(crate) fn run(args: &CoreArgs) -> Result<Status> {
    serve(&args.args)
}

/// The service with `wandb-core`'s raw arguments.
pub(crate) fn serve(args: &[String]) -> Result<Status> {
    let flags =
        cairn_service::launch::parse(args.iter().cloned()).context("cannot start cairn core")?;
    let file = log_path().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let reporter = Arc::new(LogFile {
        file: Mutex::new(file),
        debug: flags.log_level <= -4,
    });
    cairn_service::serve(&flags, reporter).context("cairn core failed")?;
    Ok(Status::Success)
}
