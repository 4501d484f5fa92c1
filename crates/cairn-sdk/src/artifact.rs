//! Artifacts: versioned sets of files logged with a run ([`Artifact`],
//! [`Run::log_artifact`](crate::Run::log_artifact)) and used by later runs
//! ([`Run::use_artifact`](crate::Run::use_artifact), [`UsedArtifact::download`]).
//!
//! `log_artifact` returns at once: a thread hashes the files (bounded memory, both cores;
//! `cairn_core::artifact`), then puts an `ArtifactRecord` with the manifest on the run's
//! queue, so it lands in the `.wandb` log in order with everything else. Online, the
//! core's uploader saves it beside the run's other uploads and publishes the outcome,
//! which [`ArtifactHandle::wait`] returns; offline, the record waits in the log for
//! `cairn sync`, and `wait` returns once it is written.
//!
//! Files are not copied ("staged") when logged: they are read when hashed and again when
//! uploaded, and the server refuses bytes whose MD5 differs from the manifest's, so a file
//! changed in between fails that upload with a clear error instead of storing the wrong
//! content. Keep logged files unchanged until the run is synced.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_core::artifact::manifest::{Entry, Manifest};
use cairn_core::artifact::{
    self as remote, ArtifactBoard, ArtifactOutcome, DownloadReport, RemoteArtifact,
};
use cairn_core::client::{Connection, ConnectionConfig, HttpError, Until, documents};
use cairn_core::input::Input;
use cairn_core::pipeline::RunInput;
use cairn_proto::record::RecordType;
use cairn_proto::{ArtifactRecord, Record, UseArtifactRecord};

use cairn_core::launch::random_id;

/// Why an artifact could not be logged, found or downloaded.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The artifact's name, type, alias or an entry name is not acceptable.
    #[error("artifact {name}: {reason}")]
    Invalid {
        /// The artifact.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Hashing its files or saving it failed.
    #[error("artifact {name}: {reason}")]
    Failed {
        /// The artifact.
        name: String,
        /// Why.
        reason: String,
    },
    /// `wait` ran out of time first.
    #[error("artifact {0}: not saved within the time given")]
    Timeout(String),
    /// The run has finished, or is disabled.
    #[error("artifact {0}: the run is finished or disabled")]
    NoRun(String),
    /// The operation needs a server, and the run is offline.
    #[error("artifact {0}: this needs a server (the run is offline)")]
    Offline(String),
    /// The server side failed.
    #[error(transparent)]
    Remote(#[from] remote::ArtifactError),
}

/// One piece of an artifact, kept until it is hashed.
#[derive(Clone, Debug)]
enum Source {
    File { path: PathBuf, name: String },
    Dir { path: PathBuf, prefix: String },
    Reference { uri: String, name: String },
}

/// An artifact being assembled: a name, a type and files. Log it with
/// [`Run::log_artifact`](crate::Run::log_artifact).
#[derive(Clone, Debug)]
#[must_use]
pub struct Artifact {
    name: String,
    kind: String,
    description: Option<String>,
    metadata: Option<serde_json::Value>,
    aliases: Vec<String>,
    tags: Vec<String>,
    sources: Vec<Source>,
}

impl Artifact {
    /// A new artifact `name` of type `kind` (`dataset`, `model`, …).
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> Artifact {
        Artifact {
            name: name.into(),
            kind: kind.into(),
            description: None,
            metadata: None,
            aliases: Vec::new(),
            tags: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its description.
    pub fn description(mut self, text: impl Into<String>) -> Artifact {
        self.description = Some(text.into());
        self
    }

    /// Its metadata (a JSON object).
    pub fn metadata(mut self, metadata: serde_json::Value) -> Artifact {
        self.metadata = Some(metadata);
        self
    }

    /// An alias for the version this makes (besides `latest`, which every new version
    /// gets).
    pub fn alias(mut self, alias: impl Into<String>) -> Artifact {
        self.aliases.push(alias.into());
        self
    }

    /// A tag of the version.
    pub fn tag(mut self, tag: impl Into<String>) -> Artifact {
        self.tags.push(tag.into());
        self
    }

    /// Adds the file at `path`, named by its file name.
    pub fn add_file(self, path: impl AsRef<Path>) -> Artifact {
        let path = path.as_ref();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.add_file_as(path, name)
    }

    /// Adds the file at `path` as `name` (`/`-separated: `data/train.csv`).
    pub fn add_file_as(mut self, path: impl AsRef<Path>, name: impl Into<String>) -> Artifact {
        self.sources.push(Source::File {
            path: path.as_ref().to_owned(),
            name: name.into(),
        });
        self
    }

    /// Adds every file under the directory `path`, named by their paths inside it.
    pub fn add_dir(self, path: impl AsRef<Path>) -> Artifact {
        self.add_dir_as(path, "")
    }

    /// Adds every file under the directory `path`, under `prefix` in the artifact.
    pub fn add_dir_as(mut self, path: impl AsRef<Path>, prefix: impl Into<String>) -> Artifact {
        self.sources.push(Source::Dir {
            path: path.as_ref().to_owned(),
            prefix: prefix.into(),
        });
        self
    }

    /// Adds a reference: content that stays where it is (`file://`, `http(s)://`,
    /// `s3://`, …), named by the URI's last segment. Nothing is downloaded or uploaded; a
    /// `file://` reference to a file records its MD5 and size, any other its URI as its
    /// digest.
    pub fn add_reference(self, uri: impl Into<String>) -> Artifact {
        let uri = uri.into();
        let name = uri
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        self.add_reference_as(uri, name)
    }

    /// Adds a reference named `name`; see [`Artifact::add_reference`].
    pub fn add_reference_as(mut self, uri: impl Into<String>, name: impl Into<String>) -> Artifact {
        self.sources.push(Source::Reference {
            uri: uri.into(),
            name: name.into(),
        });
        self
    }

    /// The manifest of everything added, hashing the files.
    fn manifest(&self) -> Result<Manifest, String> {
        let mut manifest = Manifest::new();
        for source in &self.sources {
            match source {
                Source::File { path, name } => {
                    manifest
                        .add_file(path, name)
                        .map_err(|err| err.to_string())?;
                }
                Source::Dir { path, prefix } => {
                    manifest
                        .add_dir(path, prefix)
                        .map_err(|err| err.to_string())?;
                }
                Source::Reference { uri, name } => {
                    let mut entry = Entry {
                        digest: uri.clone(),
                        reference: Some(uri.clone()),
                        ..Entry::default()
                    };
                    if let Some(path) = uri.strip_prefix("file://") {
                        let digest = cairn_core::artifact::hash::md5_file(Path::new(path))
                            .map_err(|err| err.to_string())?;
                        entry.digest = digest.md5.to_base64();
                        entry.size = digest.size;
                    }
                    manifest
                        .insert(name, entry)
                        .map_err(|err| err.to_string())?;
                }
            }
        }
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        let name_ok = |text: &str| {
            !text.is_empty()
                && text.len() <= 128
                && !text.contains(['/', ':'])
                && !text.chars().any(char::is_control)
        };
        if !name_ok(&self.name) {
            return Err("names are 1–128 characters without `/`, `:` or control characters".into());
        }
        if !name_ok(&self.kind) {
            return Err(format!("type {:?} is not a valid type name", self.kind));
        }
        for alias in &self.aliases {
            let version_like = alias
                .strip_prefix('v')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !name_ok(alias) || version_like {
                return Err(format!("alias {alias:?} is not valid"));
            }
        }
        if self.metadata.as_ref().is_some_and(|m| !m.is_object()) {
            return Err("metadata must be a JSON object".into());
        }
        Ok(())
    }
}

/// A logged artifact, being hashed and saved.
#[derive(Debug, Clone)]
pub struct ArtifactHandle {
    name: String,
    client_id: String,
    sequence_client_id: String,
    board: Arc<ArtifactBoard>,
    online: bool,
}

/// A logged artifact's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedArtifact {
    /// `name:vN` once saved online; the bare name offline.
    pub name: String,
    /// The server's id of the version (online).
    pub id: Option<String>,
    /// `vN`'s N (online).
    pub version: Option<i64>,
    /// The content digest (hex; online).
    pub digest: Option<String>,
    /// The server already had this content: no new version was made.
    pub deduplicated: bool,
}

impl ArtifactHandle {
    /// The id this client gave the version (`wandb-client-artifact://<id>/…` refers to it).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The id this client gave the collection (`wandb-client-artifact://<id>:latest/…`).
    pub fn sequence_client_id(&self) -> &str {
        &self.sequence_client_id
    }

    /// Waits until the artifact is saved (online) or written to the log (offline), at
    /// most `timeout` (`None`: as long as it takes).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<LoggedArtifact, ArtifactError> {
        let online = self.online;
        let outcome = self
            .board
            .wait(&self.client_id, timeout, |o| {
                !online || !matches!(o, ArtifactOutcome::Recorded)
            })
            .ok_or_else(|| ArtifactError::Timeout(self.name.clone()))?;
        match outcome {
            ArtifactOutcome::Recorded => Ok(LoggedArtifact {
                name: self.name.clone(),
                id: None,
                version: None,
                digest: None,
                deduplicated: false,
            }),
            ArtifactOutcome::Saved(saved) => Ok(LoggedArtifact {
                name: match saved.version {
                    Some(v) => format!("{}:v{v}", self.name),
                    None => self.name.clone(),
                },
                id: Some(saved.id),
                version: saved.version,
                digest: Some(saved.digest),
                deduplicated: saved.deduplicated,
            }),
            ArtifactOutcome::Failed(reason) => Err(ArtifactError::Failed {
                name: self.name.clone(),
                reason,
            }),
        }
    }
}

/// What a run needs for its artifacts.
#[derive(Debug)]
pub(crate) struct RunArtifacts {
    pub(crate) board: Arc<ArtifactBoard>,
    /// The server, online.
    pub(crate) connection: Option<ConnectionConfig>,
    pub(crate) entity: Option<String>,
    pub(crate) project: String,
    pub(crate) run_id: String,
    /// Where downloads go by default (`<run dir>/artifacts`).
    pub(crate) run_dir: PathBuf,
    /// Hashing threads not yet done: finish waits for them, so their records make it
    /// into the log.
    pub(crate) pending: Mutex<Vec<JoinHandle<()>>>,
}

impl RunArtifacts {
    /// Starts hashing `artifact` and returns its handle (see the module doc).
    pub(crate) fn log(
        &self,
        input: &RunInput,
        artifact: &Artifact,
    ) -> Result<ArtifactHandle, ArtifactError> {
        artifact.check().map_err(|reason| ArtifactError::Invalid {
            name: artifact.name.clone(),
            reason,
        })?;
        let client_id = random_id(128);
        let sequence_client_id = random_id(128);
        let handle = ArtifactHandle {
            name: artifact.name.clone(),
            client_id: client_id.clone(),
            sequence_client_id: sequence_client_id.clone(),
            board: self.board.clone(),
            online: self.connection.is_some(),
        };
        let artifact = artifact.clone();
        let (input, board) = (input.clone(), self.board.clone());
        let base = ArtifactRecord {
            run_id: self.run_id.clone(),
            project: self.project.clone(),
            entity: self.entity.clone().unwrap_or_default(),
            r#type: artifact.kind.clone(),
            name: artifact.name.clone(),
            description: artifact.description.clone().unwrap_or_default(),
            metadata: artifact
                .metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
            aliases: std::iter::once("latest".to_owned())
                .chain(artifact.aliases.iter().filter(|a| *a != "latest").cloned())
                .collect(),
            finalize: true,
            client_id: client_id.clone(),
            sequence_client_id,
            tags: artifact.tags.clone(),
            digest_algorithm: "MANIFEST_MD5".to_owned(),
            ..Default::default()
        };
        let thread = std::thread::Builder::new()
            .name("cairn-artifact-hash".to_owned())
            .spawn(move || {
                let outcome = match artifact.manifest() {
                    Ok(manifest) => {
                        let record = ArtifactRecord {
                            digest: manifest.content_digest(),
                            manifest: Some(remote::manifest_record(&manifest)),
                            ..base
                        };
                        let sent = input.send(Input::Record(Box::new(Record {
                            record_type: Some(RecordType::Artifact(record)),
                            ..Default::default()
                        })));
                        match sent {
                            Ok(()) => ArtifactOutcome::Recorded,
                            Err(_) => ArtifactOutcome::Failed("the run finished first".into()),
                        }
                    }
                    Err(reason) => ArtifactOutcome::Failed(reason),
                };
                board.publish(&client_id, outcome);
            })
            .map_err(|err| ArtifactError::Failed {
                name: handle.name.clone(),
                reason: format!("cannot start hashing: {err}"),
            })?;
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|t| !t.is_finished());
            pending.push(thread);
        }
        Ok(handle)
    }

    /// Waits for every hashing thread (before the run's last input).
    pub(crate) fn wait_hashing(&self) {
        let threads = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        for thread in threads {
            let _ = thread.join();
        }
    }

    /// Finds `name` on the server and records (through the log) that this run uses it.
    pub(crate) fn use_artifact(
        &self,
        input: &RunInput,
        name: &str,
    ) -> Result<UsedArtifact, ArtifactError> {
        let Some(connection) = &self.connection else {
            return Err(ArtifactError::Offline(name.to_owned()));
        };
        let conn = Connection::new(connection.clone());
        let until = Until::deadline(std::time::Instant::now() + Duration::from_secs(120));
        let (entity, project, short) = split_path(name);
        let entity = match entity.or(self.entity.as_deref()) {
            Some(entity) => entity.to_owned(),
            None => viewer_entity(&conn, &until).map_err(|source| ArtifactError::Failed {
                name: name.to_owned(),
                reason: source.to_string(),
            })?,
        };
        let project = project.unwrap_or(&self.project);
        let found = remote::resolve(&conn, &entity, project, short, &until)?;
        let record = UseArtifactRecord {
            id: found.id.clone(),
            r#type: found.type_name.clone(),
            name: found.collection.clone(),
            ..Default::default()
        };
        input
            .send(Input::Record(Box::new(Record {
                record_type: Some(RecordType::UseArtifact(record)),
                ..Default::default()
            })))
            .map_err(|_| ArtifactError::NoRun(name.to_owned()))?;
        Ok(UsedArtifact {
            remote: found,
            conn,
            default_root: self.run_dir.join("artifacts"),
        })
    }
}

/// `entity/project/name:alias`, `project/name:alias` or `name:alias`, taken apart.
fn split_path(path: &str) -> (Option<&str>, Option<&str>, &str) {
    let mut parts = path.rsplitn(3, '/');
    let name = parts.next().unwrap_or(path);
    match (parts.next(), parts.next()) {
        (Some(project), Some(entity)) => (Some(entity), Some(project), name),
        (Some(project), None) => (None, Some(project), name),
        _ => (None, None, name),
    }
}

/// The viewer's default entity.
fn viewer_entity(conn: &Connection, until: &Until) -> Result<String, HttpError> {
    let data = conn.graphql("Viewer", documents::VIEWER, serde_json::json!({}), until)?;
    Ok(data["viewer"]["entity"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// A version a run uses: its identity, and its files on demand.
#[derive(Clone)]
pub struct UsedArtifact {
    remote: RemoteArtifact,
    conn: Connection,
    default_root: PathBuf,
}

impl std::fmt::Debug for UsedArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsedArtifact")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl UsedArtifact {
    /// `name:vN`.
    pub fn name(&self) -> String {
        self.remote.name()
    }

    /// What the server says about the version.
    pub fn info(&self) -> &RemoteArtifact {
        &self.remote
    }

    /// Downloads its files into `<run dir>/artifacts/<name>:v<N>` and returns that folder.
    pub fn download(&self) -> Result<PathBuf, ArtifactError> {
        let dir = self.default_root.join(self.remote.name());
        self.download_to(&dir)?;
        Ok(dir)
    }

    /// Downloads its files into `dir`: files already there with the right content are
    /// kept, cached ones linked, the rest fetched and checked (see
    /// `cairn_core::artifact::download`). The cache is W&B's (`WANDB_CACHE_DIR`).
    pub fn download_to(&self, dir: &Path) -> Result<DownloadReport, ArtifactError> {
        let until = Until::forever();
        Ok(remote::download(
            &self.conn,
            &self.remote,
            dir,
            &remote::default_cache_dir(),
            &until,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split() {
        assert_eq!(split_path("ds:v1"), (None, None, "ds:v1"));
        assert_eq!(split_path("p/ds:latest"), (None, Some("p"), "ds:latest"));
        assert_eq!(split_path("e/p/ds"), (Some("e"), Some("p"), "ds"));
    }

    #[test]
    fn bad_artifacts_are_refused() {
        assert!(Artifact::new("ds", "dataset").check().is_ok());
        for bad in [
            Artifact::new("a/b", "dataset"),
            Artifact::new("", "dataset"),
            Artifact::new("ds", "data:set"),
            Artifact::new("ds", "dataset").alias("v3"),
            Artifact::new("ds", "dataset").metadata(serde_json::json!([1])),
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn manifests_hash_files_and_references() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "hello a\n").unwrap();
        std::fs::write(dir.path().join("d/sub/b.csv"), "x,y\n").unwrap();
        let artifact = Artifact::new("ds", "dataset")
            .add_file(dir.path().join("a.txt"))
            .add_dir_as(dir.path().join("d"), "data")
            .add_reference_as(
                format!("file://{}", dir.path().join("a.txt").display()),
                "ref-a.txt",
            )
            .add_reference_as("s3://bucket/key.bin", "remote.bin");
        let manifest = artifact.manifest().unwrap();
        let names: Vec<&str> = manifest.entries.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["a.txt", "data/sub/b.csv", "ref-a.txt", "remote.bin"]
        );
        let file_ref = &manifest.entries["ref-a.txt"];
        assert_eq!(file_ref.size, 8);
        assert_eq!(file_ref.digest, manifest.entries["a.txt"].digest);
        assert_eq!(manifest.entries["remote.bin"].digest, "s3://bucket/key.bin");
        assert!(
            Artifact::new("ds", "dataset")
                .add_file(dir.path().join("missing"))
                .manifest()
                .is_err()
        );
    }
}
