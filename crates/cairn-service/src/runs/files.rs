//! The files the core makes for a run, as W&B's core makes them: the saved script
//! (`code/…`, at the start), `requirements.txt` (`python_packages`) and the environment
//! record behind `wandb-metadata.json` (`probe_system_info`).
//!
//! Each is written into the run's files folder (or, for the environment, persisted as a
//! record the sender turns into the file) and announced to the pipeline as a Files record
//! of type WANDB, uploaded at once. A file that cannot be made is left out; nothing here
//! fails the run. The environment is probed on a thread of its own (`cairn-probe`: it
//! reads `/proc` and may load NVML), which ends once it has fed its record.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_core::input::Input;
use cairn_proto::record::RecordType;
use cairn_proto::{Record, Settings};

use super::run::{Run, feed, lock};

/// `python_packages`: the script's environment as `requirements.txt` (`name==version`,
/// sorted) in the run's files, uploaded with them.
pub(super) fn write_requirements(run: &Mutex<Run>, packages: &cairn_proto::PythonPackagesRequest) {
    let Some(dir) = lock(run).files_dir.clone() else {
        return;
    };
    let mut lines: Vec<String> = packages
        .package
        .iter()
        .filter(|p| !p.name.is_empty() && !p.name.contains(['\n', '\r']))
        .map(|p| format!("{}=={}", p.name, p.version.replace(['\n', '\r'], "")))
        .collect();
    lines.sort_unstable_by_key(|l| l.to_ascii_lowercase());
    let mut text = lines.join("\n");
    text.push('\n');
    if cairn_core::runfiles::write_atomic(&dir.join("requirements.txt"), text.as_bytes()).is_err() {
        return;
    }
    feed(
        run,
        Input::Record(Box::new(wandb_file_now("requirements.txt".to_owned()))),
    );
}

/// A Files record for one file the core made (type WANDB, as W&B's core marks its own),
/// uploaded at once.
fn wandb_file_now(path: String) -> Record {
    Record {
        record_type: Some(RecordType::Files(cairn_proto::FilesRecord {
            files: vec![cairn_proto::FilesItem {
                path,
                policy: cairn_proto::files_item::PolicyType::Now as i32,
                r#type: cairn_proto::files_item::FileType::Wandb as i32,
            }],
            info: None,
        })),
        ..Default::default()
    }
}

/// `save_code`: the script itself, copied to `code/<its path under the root>` in the run's
/// files and uploaded at once, as W&B's core does at run start (W&B also saves `git diff`s
/// of a repository; cairn does not). Nothing when the setting is off, the script is not a
/// file (a notebook, `python -c`), or its relative path would leave `files/code`.
pub(super) fn save_code(settings: &Settings, files_dir: &std::path::Path) -> Option<Record> {
    if settings.save_code != Some(true) {
        return None;
    }
    let relpath = settings
        .program_relpath
        .as_deref()
        .filter(|p| cairn_core::upload::safe_relative(p))?;
    let source = settings
        .program_abspath
        .as_deref()
        .filter(|p| !p.is_empty())?;
    let rel = std::path::Path::new(relpath);
    let dest = files_dir.join("code").join(rel);
    std::fs::create_dir_all(dest.parent()?).ok()?;
    std::fs::copy(source, &dest).ok()?;
    let path = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Some(wandb_file_now(format!("code/{path}")))
}

/// This core process's writer id, a random UUID (v4) made once: W&B's core stamps the
/// environment it probes with one, and keys the config's `_wandb.e` by it.
fn writer_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut bytes: [u8; 16] = rand::random();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    })
}

/// `probe_system_info`: the machine (cairn-core's probe) and the script (the settings:
/// program, arguments, interpreter, OS string, user), persisted as the run's environment
/// record (`wandb-metadata.json`). Probed on a thread:
/// it reads `/proc` and may load NVML.
pub(super) fn probe_environment(run: &Arc<Mutex<Run>>, settings: &Settings) {
    let run = run.clone();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let (program, root, host, python, username, email) = (
        text(&settings.program),
        text(&settings.root_dir),
        text(&settings.host),
        text(&settings.python),
        text(&settings.username),
        text(&settings.email),
    );
    let code_path = text(&settings.program_relpath);
    let start_time = settings.x_start_time;
    // The script's process, not the core's: its arguments, its interpreter, its OS string.
    let args = settings.args.clone().map(|a| a.value).unwrap_or_default();
    let (executable, os, code_path_local, docker, colab) = (
        text(&settings.x_executable),
        text(&settings.os),
        text(&settings.code_path_local),
        text(&settings.docker),
        text(&settings.colab_url),
    );
    let _ = std::thread::Builder::new()
        .name("cairn-probe".into())
        .spawn(move || {
            let mut env = cairn_core::system::probe_environment();
            env.program = program;
            env.code_path = code_path;
            env.root = root;
            env.host = host;
            env.python = python;
            env.username = username;
            env.email = email;
            env.args = args;
            env.writer_id = writer_id().to_owned();
            env.code_path_local = code_path_local;
            env.docker = docker;
            env.colab = colab;
            if !executable.is_empty() {
                env.executable = executable;
            }
            if !os.is_empty() {
                env.os = os;
            }
            // When the script started (`wandb.init`), to the microsecond as W&B writes it;
            // the core's clock when the SDK did not say.
            let started = start_time
                .filter(|t| t.is_finite() && *t > 0.0)
                .map(|t| Duration::from_micros((t * 1e6).round() as u64))
                .unwrap_or_else(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                });
            env.started_at = Some(prost_types::Timestamp {
                seconds: i64::try_from(started.as_secs()).unwrap_or(0),
                nanos: i32::try_from(started.subsec_nanos()).unwrap_or(0),
            });
            feed(
                &run,
                Input::Record(Box::new(Record {
                    record_type: Some(RecordType::Environment(env)),
                    ..Default::default()
                })),
            );
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(save: bool, relpath: &str, abspath: &std::path::Path) -> Settings {
        Settings {
            save_code: Some(save),
            program_relpath: Some(relpath.to_owned()),
            program_abspath: Some(abspath.to_string_lossy().into_owned()),
            ..Default::default()
        }
    }

    fn saved_path(record: &Record) -> &str {
        match &record.record_type {
            Some(RecordType::Files(files)) => &files.files[0].path,
            other => panic!("not a files record: {other:?}"),
        }
    }

    #[test]
    fn save_code_copies_the_script_under_code() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("train.py");
        std::fs::write(&script, "print('hi')\n").unwrap();
        let files = dir.path().join("files");

        let record = save_code(&settings(true, "sub/train.py", &script), &files).unwrap();
        assert_eq!(saved_path(&record), "code/sub/train.py");
        let copied = std::fs::read_to_string(files.join("code/sub/train.py")).unwrap();
        assert_eq!(copied, "print('hi')\n");

        // Off, a path that climbs out of `files/code`, an absolute one, a missing script.
        assert!(save_code(&settings(false, "train.py", &script), &files).is_none());
        assert!(save_code(&settings(true, "../train.py", &script), &files).is_none());
        assert!(save_code(&settings(true, "/etc/train.py", &script), &files).is_none());
        let missing = dir.path().join("gone.py");
        assert!(save_code(&settings(true, "gone.py", &missing), &files).is_none());
    }
}
