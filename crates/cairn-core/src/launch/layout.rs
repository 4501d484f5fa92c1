//! Where a run's files go, in W&B's layout, so that `wandb sync` and `cairn sync` accept
//! each other's runs: `<dir>/wandb/<offline-run|run>-<YYYYMMDD_HHMMSS>-<id>/` holding
//! `run-<id>.wandb` and `files/`, with `<dir>/wandb/latest-run` pointing at it and
//! `<dir>/wandb/wandb-resume.json` naming the run `resume="auto"` comes back to.
//!
//! Also run ids: W&B's 8 random `[a-z0-9]` characters, and which ids may name a folder.
//!
//! Input: the folder setting, the run id, the mode and the start time. Output: a
//! [`RunLayout`]. Pure apart from [`RunFolder::place`] (which looks for a folder of the
//! same name) and the two best-effort markers [`RunLayout::link_latest`] and
//! [`RunLayout::keep_resume_file`]; no threads.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::LaunchError;

/// Where a run's folder goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunFolder {
    /// W&B's layout under this folder (`WANDB_DIR`, default the current directory); the
    /// run is made `latest-run` and, with `resume="auto"`, the one to come back to.
    Under(PathBuf),
    /// Exactly this log and `files/` folder, chosen by someone else (the Python SDK's
    /// `sync_file` and `files_dir`, which also keeps `latest-run` and the resume file).
    Exact {
        /// The `.wandb` log.
        log_path: PathBuf,
        /// The run's `files/` folder.
        files_dir: PathBuf,
    },
}

impl RunFolder {
    /// The layout of run `id`, started at `start`: under a folder, the first free second
    /// from `start` names it (a run resumed or restarted within the same second gets the
    /// next free second's name), and the id must be able to name a folder.
    pub fn place(
        &self,
        id: &str,
        offline: bool,
        start: SystemTime,
    ) -> Result<RunLayout, LaunchError> {
        match self {
            RunFolder::Exact {
                log_path,
                files_dir,
            } => Ok(RunLayout::exact(log_path.clone(), files_dir.clone())),
            RunFolder::Under(dir) => {
                if !valid_run_id(id) {
                    return Err(LaunchError::BadRunId(id.to_owned()));
                }
                let mut layout = RunLayout::new(dir.clone(), id, offline, start);
                for later in 1..=60 {
                    if !layout.run_dir.exists() {
                        break;
                    }
                    let at = start + Duration::from_secs(later);
                    layout = RunLayout::new(dir.clone(), id, offline, at);
                }
                Ok(layout)
            }
        }
    }
}

/// The run's folder and files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLayout {
    /// `<dir>/wandb`.
    pub wandb_dir: PathBuf,
    /// `<dir>/wandb/<offline-run|run>-<date>_<time>-<id>`.
    pub run_dir: PathBuf,
    /// `<run_dir>/files`.
    pub files_dir: PathBuf,
    /// `<run_dir>/run-<id>.wandb`.
    pub log_path: PathBuf,
    /// Whether this layout is cairn's to mark (`latest-run`, the resume file): false
    /// when someone else chose the folder.
    pub owned: bool,
}

/// The name of the file `resume="auto"` reads the run id from, in `<dir>/wandb`.
pub const RESUME_FILE: &str = "wandb-resume.json";

impl RunLayout {
    /// The layout of a run started at `start` (UTC) with id `id` under `dir`.
    pub fn new(dir: PathBuf, id: &str, offline: bool, start: SystemTime) -> Self {
        let wandb_dir = dir.join("wandb");
        let prefix = if offline { "offline-run" } else { "run" };
        let run_dir = wandb_dir.join(format!("{prefix}-{}-{id}", timestamp_slug(start)));
        Self {
            files_dir: run_dir.join("files"),
            log_path: run_dir.join(format!("run-{id}.wandb")),
            run_dir,
            wandb_dir,
            owned: true,
        }
    }

    /// The layout of a log and files folder chosen elsewhere: the run folder is the log's.
    pub fn exact(log_path: PathBuf, files_dir: PathBuf) -> Self {
        let run_dir = log_path
            .parent()
            .map_or_else(|| files_dir.clone(), Path::to_path_buf);
        Self {
            wandb_dir: run_dir.parent().map(Path::to_path_buf).unwrap_or_default(),
            run_dir,
            files_dir,
            log_path,
            owned: false,
        }
    }

    /// `<dir>/wandb/wandb-resume.json`.
    pub fn resume_file(&self) -> PathBuf {
        self.wandb_dir.join(RESUME_FILE)
    }

    /// Points `<dir>/wandb/latest-run` at the run folder (best effort, as W&B does).
    pub fn link_latest(&self) {
        if !self.owned {
            return;
        }
        let link = self.wandb_dir.join("latest-run");
        let _ = std::fs::remove_file(&link);
        #[cfg(unix)]
        if let Some(name) = self.run_dir.file_name() {
            let _ = std::os::unix::fs::symlink(name, &link);
        }
    }

    /// W&B's `resume="auto"` bookkeeping (best effort): with `auto`, the resume file names
    /// run `id` for the next start; without any resume, a stale file goes. A run that
    /// finishes with exit code 0 removes it too ([`RunLayout::forget_resume_file`]).
    pub fn keep_resume_file(&self, id: &str, auto: bool, resume: bool) {
        if !self.owned {
            return;
        }
        if auto {
            let text = serde_json::json!({ "run_id": id }).to_string();
            let _ = std::fs::write(self.resume_file(), text);
        } else if !resume {
            self.forget_resume_file();
        }
    }

    /// Removes the resume file: the run ended well, so `auto` has nothing to come back to.
    pub fn forget_resume_file(&self) {
        if self.owned {
            let _ = std::fs::remove_file(self.resume_file());
        }
    }
}

/// The run id kept in a `wandb-resume.json` text (`{"run_id": "…"}`), if any.
pub fn resume_file_id(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value["run_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// `YYYYMMDD_HHMMSS` (UTC) of a point in time.
pub fn timestamp_slug(t: SystemTime) -> String {
    let t = crate::clock::Utc::of(t);
    format!(
        "{:04}{:02}{:02}_{:02}{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A random run id: 8 characters of `[a-z0-9]`, as W&B makes them.
pub fn generate_run_id() -> String {
    random_id(8)
}

/// `len` random characters of `[a-z0-9]` (ids, not secrets: seeded from the clock, the
/// process and a counter).
pub fn random_id(len: usize) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut state = now.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
    let local = 0u8;
    state ^= (&local as *const u8 as usize as u64).rotate_left(17);
    state ^= COUNTER
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0xA24B_AED4_963E_E407);
    (0..len)
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ALPHABET[(z % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// Whether a run id is safe as part of a folder name: letters, digits, `-` and `_`, at
/// most 128.
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_is_utc_date_and_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_307_038);
        assert_eq!(timestamp_slug(t), "20261122_002358");
        assert_eq!(timestamp_slug(UNIX_EPOCH), "19700101_000000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp_slug(leap), "20000229_000000");
    }

    #[test]
    fn layout_is_w_and_b_s() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_307_038);
        let l = RunLayout::new("/tmp/x".into(), "abc123", true, t);
        assert_eq!(
            l.log_path,
            PathBuf::from("/tmp/x/wandb/offline-run-20261122_002358-abc123/run-abc123.wandb")
        );
        assert_eq!(
            l.resume_file(),
            PathBuf::from("/tmp/x/wandb/wandb-resume.json")
        );
        let l = RunLayout::new("/tmp/x".into(), "abc123", false, t);
        assert!(l.run_dir.ends_with("run-20261122_002358-abc123"));
    }

    #[test]
    fn an_exact_layout_is_the_log_s_folder_and_is_not_marked() {
        let l = RunLayout::exact(
            "/w/wandb/run-x-abc/run-abc.wandb".into(),
            "/w/wandb/run-x-abc/files".into(),
        );
        assert_eq!(l.run_dir, PathBuf::from("/w/wandb/run-x-abc"));
        assert_eq!(l.wandb_dir, PathBuf::from("/w/wandb"));
        assert!(!l.owned);
    }

    #[test]
    fn a_taken_second_moves_the_folder_to_the_next_free_one() {
        let dir = tempfile::tempdir().unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_795_307_038);
        let folder = RunFolder::Under(dir.path().to_path_buf());
        let first = folder.place("abc", true, t).unwrap();
        std::fs::create_dir_all(&first.run_dir).unwrap();
        let second = folder.place("abc", true, t).unwrap();
        assert!(second.run_dir.ends_with("offline-run-20261122_002359-abc"));
        let err = folder.place("../up", true, t).unwrap_err();
        assert!(err.to_string().contains("`../up`"), "{err}");
    }

    #[test]
    fn run_ids() {
        let id = generate_run_id();
        assert_eq!(id.len(), 8);
        assert!(valid_run_id(&id));
        assert!(!valid_run_id("../evil"));
        assert!(!valid_run_id(""));
        assert!(!valid_run_id("a/b"));
        assert_eq!(
            resume_file_id(r#"{"run_id": "abc"}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(resume_file_id(r#"{"run": "abc"}"#), None);
        assert_eq!(resume_file_id("not json"), None);
    }
}
