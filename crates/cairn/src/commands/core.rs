//! `cairn core [wandb-core flags]`: cairn's core as the service the `wandb` Python SDK
//! starts in place of `wandb-core` (see `cairn-service`). The binary also enters this mode
//! when it is started under the name `wandb-core`.
//!
//! `cairn core install [--python PATH]` copies this binary to where that Python's `wandb`
//! package looks for its core (`wandb/bin/wandb-core`; there is no setting for it), keeping
//! W&B's as `wandb-core.orig` and leaving a `.cairn-core` marker; `cairn core uninstall`
//! puts W&B's back.
//!
//! The terminal belongs to the user's script, so the service writes nothing there but the
//! end of a run the script never finished (the SDK prints nothing then: where the run is
//! and where its logs are, as W&B's core does); its events go to `$WANDB_CACHE_DIR/wandb/logs/cairn-core-<time>-<pid>.log` (W&B's folder for
//! its core's log; `~/.cache` when the variable is unset).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};

use super::Status;

/// `cairn core`'s arguments: `wandb-core`'s own, passed through as they are.
#[derive(Debug, clap::Args)]
pub(crate) struct CoreArgs {
    /// `install [--python PATH]`, `uninstall [--python PATH]`, or wandb-core's flags:
    /// `--port-filename PATH --pid N [--listen-on-localhost] [--detached --idle-timeout D]`
    /// (flags it does not know are ignored).
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
        if let E::Footer { lines, .. } = &event {
            let mut out = std::io::stdout().lock();
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
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

/// `cairn core install|uninstall …`, or the service with `wandb-core`'s flags.
pub(crate) fn run(args: &CoreArgs) -> Result<Status> {
    match args.args.first().map(String::as_str) {
        Some(action @ ("install" | "uninstall")) => manage(action, &args.args[1..]),
        _ => serve(&args.args),
    }
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

/// Where a Python environment's `wandb` package keeps its core, and its version.
struct WandbPackage {
    bin: PathBuf,
    version: String,
}

/// The marker left beside an installed cairn core.
const MARKER: &str = ".cairn-core";
const CORE: &str = "wandb-core";
const ORIGINAL: &str = "wandb-core.orig";

fn find_wandb(python: &str) -> Result<WandbPackage> {
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import pathlib, wandb; print(pathlib.Path(wandb.__file__).parent); print(wandb.__version__)",
        ])
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{python} cannot import wandb: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let dir = lines.next().unwrap_or_default().trim();
    let version = lines.next().unwrap_or_default().trim().to_owned();
    anyhow::ensure!(!dir.is_empty(), "{python} did not say where wandb is");
    Ok(WandbPackage {
        bin: PathBuf::from(dir).join("bin"),
        version,
    })
}

/// `cairn core install [--python PATH]` and `cairn core uninstall [--python PATH]`.
fn manage(action: &str, args: &[String]) -> Result<Status> {
    let python = match args {
        [] => "python3".to_owned(),
        [flag, path] if flag == "--python" => path.clone(),
        [flag] if flag.starts_with("--python=") => flag["--python=".len()..].to_owned(),
        _ => anyhow::bail!("usage: cairn core {action} [--python PATH]"),
    };
    let package = find_wandb(&python)?;
    let bin = &package.bin;
    let core = bin.join(CORE);
    let original = bin.join(ORIGINAL);
    let marker = bin.join(MARKER);
    #[allow(clippy::print_stdout, reason = "the command says what it did")]
    match action {
        "install" => {
            if !package.version.starts_with("0.31.") {
                println!(
                    "note: wandb {} found; cairn core speaks the protocol of wandb 0.31",
                    package.version
                );
            }
            std::fs::create_dir_all(bin)
                .with_context(|| format!("cannot create {}", bin.display()))?;
            if !marker.exists() && core.exists() {
                std::fs::rename(&core, &original).with_context(|| {
                    format!("cannot keep {} as {}", core.display(), original.display())
                })?;
            }
            let me = std::env::current_exe().context("cannot find this binary")?;
            let tmp = bin.join(format!("{CORE}.cairn-tmp"));
            std::fs::copy(&me, &tmp)
                .with_context(|| format!("cannot copy {} to {}", me.display(), tmp.display()))?;
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
            std::fs::rename(&tmp, &core)
                .with_context(|| format!("cannot install {}", core.display()))?;
            std::fs::write(
                &marker,
                format!(
                    "cairn {} installed from {}\n",
                    env!("CARGO_PKG_VERSION"),
                    me.display()
                ),
            )
            .with_context(|| format!("cannot write {}", marker.display()))?;
            println!(
                "installed cairn core as {} (wandb {}); W&B's core is kept as {}",
                core.display(),
                package.version,
                original.display()
            );
            println!("undo with: cairn core uninstall --python {python}");
            Ok(Status::Success)
        }
        _ => {
            if !marker.exists() {
                println!("cairn core is not installed in {}", bin.display());
                return Ok(Status::BadInput);
            }
            if original.exists() {
                std::fs::rename(&original, &core)
                    .with_context(|| format!("cannot restore {}", core.display()))?;
            } else {
                std::fs::remove_file(&core)
                    .with_context(|| format!("cannot remove {}", core.display()))?;
            }
            std::fs::remove_file(&marker)
                .with_context(|| format!("cannot remove {}", marker.display()))?;
            println!("restored W&B's core as {}", core.display());
            Ok(Status::Success)
        }
    }
}
