//! Run settings: what `init` was told in code, what the environment says (W&B's
//! `WANDB_*` names), and the defaults — resolved once, in that order of precedence.
//!
//! Also the run folder layout, which is W&B's own so that `wandb sync` and `cairn sync`
//! accept each other's runs: `<dir>/wandb/<offline-run|run>-<YYYYMMDD_HHMMSS>-<id>/`
//! holding `run-<id>.wandb` and `files/`, with `<dir>/wandb/latest-run` pointing at it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `WANDB_MODE`: online, offline or disabled.
pub const ENV_MODE: &str = "WANDB_MODE";
/// `WANDB_PROJECT`: the project runs are logged to.
pub const ENV_PROJECT: &str = "WANDB_PROJECT";
/// `WANDB_ENTITY`: the user or team that owns the project.
pub const ENV_ENTITY: &str = "WANDB_ENTITY";
/// `WANDB_DIR`: the folder under which `wandb/` run folders are made.
pub const ENV_DIR: &str = "WANDB_DIR";
/// `WANDB_RUN_ID`: the run's id.
pub const ENV_RUN_ID: &str = "WANDB_RUN_ID";
/// `WANDB_RESUME`: allow, must, never or auto.
pub const ENV_RESUME: &str = "WANDB_RESUME";
/// `WANDB_NAME`: the run's display name.
pub const ENV_NAME: &str = "WANDB_NAME";
/// `WANDB_NOTES`: the run's notes.
pub const ENV_NOTES: &str = "WANDB_NOTES";
/// `WANDB_TAGS`: comma-separated tags.
pub const ENV_TAGS: &str = "WANDB_TAGS";
/// `WANDB_RUN_GROUP`: the run's group.
pub const ENV_RUN_GROUP: &str = "WANDB_RUN_GROUP";
/// `WANDB_JOB_TYPE`: the run's job type.
pub const ENV_JOB_TYPE: &str = "WANDB_JOB_TYPE";
/// `WANDB_CONSOLE`: `off` disables console capture.
pub const ENV_CONSOLE: &str = "WANDB_CONSOLE";

/// `WANDB__FILE_STREAM_TRANSMIT_INTERVAL`: seconds between filestream requests (W&B's
/// `x_file_stream_transmit_interval`; default 15).
pub const ENV_TRANSMIT_INTERVAL: &str = "WANDB__FILE_STREAM_TRANSMIT_INTERVAL";

/// `CAIRN_FINISH_DEADLINE`: seconds `finish` waits for the run's files and uploads
/// (default 60); past it the run folder is left for `cairn sync`.
pub const ENV_FINISH_DEADLINE: &str = "CAIRN_FINISH_DEADLINE";

/// Default project when none is given (W&B's).
pub const DEFAULT_PROJECT: &str = "uncategorized";
/// Default time `finish` waits for the sender.
pub const DEFAULT_FINISH_DEADLINE: Duration = Duration::from_secs(60);

/// Where a run's data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Logged locally and uploaded as the run goes (the default when an API key is found).
    Online,
    /// Logged locally only; upload later with `cairn sync` or `wandb sync`.
    #[default]
    Offline,
    /// Nothing is written; every call is a no-op.
    Disabled,
}

impl Mode {
    /// Parses W&B's mode names (`dryrun` is W&B's old name for offline).
    pub fn parse(text: &str) -> Option<Mode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "online" | "run" => Some(Mode::Online),
            "offline" | "dryrun" => Some(Mode::Offline),
            "disabled" => Some(Mode::Disabled),
            _ => None,
        }
    }
}

/// Reads an environment variable, treating empty as unset.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A random run id: 8 characters of `[a-z0-9]`, as W&B makes them.
pub(crate) fn generate_run_id() -> String {
    random_id(8)
}

/// `len` random characters of `[a-z0-9]` (ids, not secrets: seeded from the clock, the
/// process and a counter).
pub(crate) fn random_id(len: usize) -> String {
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

/// Whether a run id is safe as part of a folder name.
pub(crate) fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The run's folder and files, in W&B's layout.
#[derive(Clone, Debug)]
pub struct RunLayout {
    /// `<dir>/wandb`.
    pub wandb_dir: PathBuf,
    /// `<dir>/wandb/<offline-run|run>-<date>_<time>-<id>`.
    pub run_dir: PathBuf,
    /// `<run_dir>/files`.
    pub files_dir: PathBuf,
    /// `<run_dir>/run-<id>.wandb`.
    pub log_path: PathBuf,
}

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
        }
    }
}

/// `YYYYMMDD_HHMMSS` (UTC) of a point in time.
pub(crate) fn timestamp_slug(t: SystemTime) -> String {
    let t = cairn_core::clock::Utc::of(t);
    format!(
        "{:04}{:02}{:02}_{:02}{:02}{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
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
        let l = RunLayout::new("/tmp/x".into(), "abc123", false, t);
        assert!(l.run_dir.ends_with("run-20261122_002358-abc123"));
    }

    #[test]
    fn run_ids() {
        let id = generate_run_id();
        assert_eq!(id.len(), 8);
        assert!(valid_run_id(&id));
        assert!(!valid_run_id("../evil"));
        assert!(!valid_run_id(""));
        assert!(!valid_run_id("a/b"));
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("OFFLINE"), Some(Mode::Offline));
        assert_eq!(Mode::parse("dryrun"), Some(Mode::Offline));
        assert_eq!(Mode::parse("disabled"), Some(Mode::Disabled));
        assert_eq!(Mode::parse("bogus"), None);
    }
}
