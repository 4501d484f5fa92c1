//! Where run settings come from, gathered for the resolver: the code's values
//! ([`Explicit`]), the environment, W&B's settings files, the netrc file and the
//! `resume="auto"` file, and where the workspace is (`WANDB_DIR`), which says where the
//! workspace's settings file is.
//!
//! W&B reads two settings files, INI text whose `[default]` section holds settings by
//! name (`base_url`, `mode`, `project`, …): the global `$WANDB_CONFIG_DIR/settings`
//! (default `~/.config/wandb/settings`), then the workspace's `<dir>/wandb/settings`,
//! whose keys win. [`gather`] reads them (a file that is missing or unreadable counts as
//! empty, as W&B treats it); [`default_section`] parses one the way Python's
//! `configparser` does for these files. Nothing here runs a thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_store::SyncPolicy;

use super::layout::RESUME_FILE;

/// `WANDB_DIR`: the folder under which `wandb/` run folders are made.
pub const ENV_DIR: &str = "WANDB_DIR";
/// `WANDB_CONFIG_DIR`: the folder of W&B's global settings file (default
/// `~/.config/wandb`).
pub const ENV_CONFIG_DIR: &str = "WANDB_CONFIG_DIR";

/// What the code asked for; `None` (or an empty string) leaves a setting to the
/// environment, the settings files and the defaults.
#[derive(Clone, Default)]
pub struct Explicit {
    /// `online`, `offline` or `disabled`.
    pub mode: Option<String>,
    /// The server.
    pub base_url: Option<String>,
    /// The API key.
    pub api_key: Option<String>,
    /// The user or team.
    pub entity: Option<String>,
    /// The project.
    pub project: Option<String>,
    /// The run id.
    pub run_id: Option<String>,
    /// `allow`, `must`, `never`, `auto`, `true` or `false`.
    pub resume: Option<String>,
    /// The display name.
    pub name: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// The group.
    pub group: Option<String>,
    /// The job type.
    pub job_type: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// The folder runs go under.
    pub dir: Option<PathBuf>,
    /// Whether to capture stdout and stderr.
    pub console: Option<bool>,
    /// How often to sample system metrics; `Some(None)` for never.
    pub system_metrics: Option<Option<Duration>>,
    /// When the log is forced to disk.
    pub sync: Option<SyncPolicy>,
    /// How long `finish` waits for the run's files and uploads.
    pub finish_deadline: Option<Duration>,
    /// Time between filestream requests.
    pub transmit_interval: Option<Duration>,
}

impl std::fmt::Debug for Explicit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explicit")
            .field("mode", &self.mode)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("entity", &self.entity)
            .field("project", &self.project)
            .field("run_id", &self.run_id)
            .field("resume", &self.resume)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The folder runs go under: the code's, else `WANDB_DIR`, else the current directory
/// (W&B refuses `root_dir` in a settings file).
pub(crate) fn root_dir(
    explicit: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> PathBuf {
    explicit
        .filter(|d| !d.as_os_str().is_empty())
        .cloned()
        .or_else(|| {
            env(ENV_DIR)
                .filter(|d| !d.trim().is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A file's path and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsFile {
    /// Where it was read from (named in errors).
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// Everything the resolver reads, passed in.
pub struct Sources<'a> {
    /// What the code asked for.
    pub explicit: Explicit,
    /// The environment: a variable's value by name.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// W&B's settings files, lowest precedence first (the global one, then the
    /// workspace's).
    pub files: Vec<SettingsFile>,
    /// The netrc text `wandb login` writes the API key to.
    pub netrc: Option<String>,
    /// `<dir>/wandb/wandb-resume.json`, where `resume="auto"` finds the run id.
    pub auto_resume: Option<SettingsFile>,
}

impl std::fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("explicit", &self.explicit)
            .field(
                "files",
                &self.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            )
            .field("auto_resume", &self.auto_resume.as_ref().map(|f| &f.path))
            .finish_non_exhaustive()
    }
}

impl Sources<'static> {
    /// The code's values alone: no environment, no files.
    pub fn explicit_only(explicit: Explicit) -> Sources<'static> {
        Sources {
            explicit,
            env: &no_env,
            files: Vec::new(),
            netrc: None,
            auto_resume: None,
        }
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// This process's environment, an empty value counting as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads the files W&B's settings come from, finding them as `env` says: the global and
/// workspace settings files, the netrc file (`$NETRC`, else `~/.netrc`) and the
/// `resume="auto"` file of the folder runs go under.
pub fn gather<'a>(explicit: Explicit, env: &'a dyn Fn(&str) -> Option<String>) -> Sources<'a> {
    let home = env("HOME").map(PathBuf::from);
    let wandb_dir = root_dir(explicit.dir.as_ref(), env).join("wandb");
    let global = match env(ENV_CONFIG_DIR) {
        Some(dir) => Some(expand_home(&dir, home.as_deref()).join("settings")),
        None => home.as_ref().map(|h| h.join(".config/wandb/settings")),
    };
    let read = |path: PathBuf| {
        let text = std::fs::read_to_string(&path).ok()?;
        Some(SettingsFile { path, text })
    };
    let netrc = env("NETRC")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".netrc")));
    Sources {
        files: [global, Some(wandb_dir.join("settings"))]
            .into_iter()
            .flatten()
            .filter_map(read)
            .collect(),
        netrc: netrc.and_then(read).map(|f| f.text),
        auto_resume: read(wandb_dir.join(RESUME_FILE)),
        explicit,
        env,
    }
}

/// `~/x` as `$HOME/x` (W&B expands the config folder's `~`).
fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// The settings of an INI text's `[default]` section, as Python's `configparser` reads
/// W&B's settings files: `key = value` or `key: value`, keys lowercased, values trimmed,
/// indented lines continuing the value before, `#` and `;` lines comments, and the
/// `[DEFAULT]` section's keys beneath `[default]`'s. Lines it cannot read are skipped.
pub fn default_section(text: &str) -> HashMap<String, String> {
    let mut defaults: HashMap<String, String> = HashMap::new();
    let mut values: HashMap<String, String> = HashMap::new();
    // The section being read: `Some(true)` for `[default]`, `Some(false)` for
    // `[DEFAULT]`, `None` for any other.
    let mut section: Option<bool> = None;
    let mut last_key: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            last_key = None;
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let target = match section {
            Some(true) => Some(&mut values),
            Some(false) => Some(&mut defaults),
            None => None,
        };
        if line.starts_with([' ', '\t']) {
            if let (Some(key), Some(target)) = (&last_key, target)
                && let Some(value) = target.get_mut(key)
            {
                value.push('\n');
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            section = match name {
                "default" => Some(true),
                "DEFAULT" => Some(false),
                _ => None,
            };
            last_key = None;
            continue;
        }
        let Some(split) = trimmed.find(['=', ':']) else {
            continue;
        };
        let key = trimmed[..split].trim().to_lowercase();
        let value = trimmed[split + 1..].trim().to_owned();
        if let Some(target) = target {
            target.insert(key.clone(), value);
        }
        last_key = Some(key);
    }
    defaults.extend(values);
    defaults
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = default_section(text).into_iter().collect();
        pairs.sort();
        pairs
    }

    fn pairs(expect: &[(&str, &str)]) -> Vec<(String, String)> {
        expect
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_default_section_is_read_as_configparser_reads_it() {
        let text = "\
# written by wandb login
[default]
base_url = http://127.0.0.1:8080/
Mode: offline
; a comment
project =
run_notes = first line
    second line

[other]
entity = not-this-one
";
        assert_eq!(
            section(text),
            pairs(&[
                ("base_url", "http://127.0.0.1:8080/"),
                ("mode", "offline"),
                ("project", ""),
                ("run_notes", "first line\nsecond line"),
            ])
        );
    }

    #[test]
    fn the_default_default_section_sits_beneath() {
        let text = "[DEFAULT]\nmode = offline\nentity = team\n[default]\nmode = online\n";
        assert_eq!(
            section(text),
            pairs(&[("entity", "team"), ("mode", "online")])
        );
        assert!(section("mode = offline\n").is_empty());
        assert!(section("").is_empty());
    }

    #[test]
    fn gather_finds_the_files_where_the_environment_says() {
        let home = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let config = home.path().join(".config/wandb");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("settings"), "[default]\nmode = offline\n").unwrap();
        std::fs::create_dir_all(work.path().join("wandb")).unwrap();
        std::fs::write(
            work.path().join("wandb/settings"),
            "[default]\nproject = p\n",
        )
        .unwrap();
        std::fs::write(
            work.path().join("wandb/wandb-resume.json"),
            r#"{"run_id":"x"}"#,
        )
        .unwrap();
        std::fs::write(home.path().join(".netrc"), "machine h password k\n").unwrap();
        let vars: HashMap<&str, String> = [
            ("HOME", home.path().display().to_string()),
            ("WANDB_DIR", work.path().display().to_string()),
        ]
        .into();
        let env = |name: &str| vars.get(name).cloned();
        let sources = gather(Explicit::default(), &env);
        let paths: Vec<&Path> = sources.files.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(
            paths,
            [config.join("settings"), work.path().join("wandb/settings")]
        );
        assert_eq!(sources.netrc.as_deref(), Some("machine h password k\n"));
        assert_eq!(sources.auto_resume.unwrap().text, r#"{"run_id":"x"}"#);

        // WANDB_CONFIG_DIR moves the global file; missing files are left out.
        let vars: HashMap<&str, String> = [
            ("HOME", home.path().display().to_string()),
            ("WANDB_CONFIG_DIR", "~/elsewhere".to_owned()),
        ]
        .into();
        let env = |name: &str| vars.get(name).cloned();
        let explicit = Explicit {
            dir: Some(home.path().join("none")),
            ..Explicit::default()
        };
        let sources = gather(explicit, &env);
        assert!(sources.files.is_empty());
        assert!(sources.auto_resume.is_none());
        assert_eq!(
            expand_home("~/elsewhere", Some(home.path())),
            home.path().join("elsewhere")
        );
    }
}
