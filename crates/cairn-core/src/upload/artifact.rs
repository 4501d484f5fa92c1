//! Artifacts on a W&B-compatible server: saving a version from an `ArtifactRecord` of the
//! log, resolving `name:alias` to a version, recording that a run used one, and
//! downloading one into a folder through a content-addressed local cache.
//!
//! **Save** ([`save`], W&B's flow, protocol notes §3.4): `CreateArtifact` (the server
//! answers COMMITTED when the content digest is the latest version's: nothing more to do)
//! → `CreateArtifactManifest` → `CreateArtifactFiles` in batches (a null upload URL means
//! the server already holds those bytes: no upload) → the PUTs, 8 at a time, streamed from
//! disk; files of 2 GiB and more in parts (each part retried on its own, with its
//! `Content-MD5`) joined by `CompleteMultipartUploadArtifact` → the manifest with each
//! entry's `birthArtifactID` → `CommitArtifact`. Memory: one batch of upload URLs and the
//! manifest text; file bytes are streamed.
//!
//! **Results** reach the SDK through an [`ArtifactBoard`], keyed by the artifact's client
//! id: the handle `log_artifact` returned waits there.
//!
//! **Download** ([`download`]): the manifest, then every file's signed URL; a file already
//! in the folder with the right MD5 is kept, one in the cache
//! (`<cache>/obj/md5/<hex[..2]>/<hex[2..]>`, W&B's layout) is hard-linked (copied across
//! file systems), any other is fetched into the cache, its MD5 checked, then linked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cairn_proto::ArtifactRecord;
use serde_json::{Value as Json, json};

use crate::artifact::hash::{self, Md5};
use crate::artifact::manifest::{Entry, Manifest, ManifestError};
use crate::client::{Connection, HttpError, Until, in_parallel, upload_headers};

/// Files per `CreateArtifactFiles` request.
const FILES_PER_BATCH: usize = 1000;
/// File (or part) transfers in flight at once.
const PARALLEL_TRANSFERS: usize = 8;

/// Why an artifact could not be saved, found or downloaded.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A request failed.
    #[error("artifact {name}: {source}")]
    Http {
        /// The artifact.
        name: String,
        /// What failed.
        #[source]
        source: HttpError,
    },
    /// The server's answer lacks what the flow needs.
    #[error("artifact {name}: unexpected answer to {operation}: {detail}")]
    Answer {
        /// The artifact.
        name: String,
        /// The request.
        operation: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The artifact does not exist (or the viewer may not see it).
    #[error("artifact {0} not found")]
    NotFound(String),
    /// A local file could not be read or written.
    #[error("artifact {name}: {path}: {source}")]
    File {
        /// The artifact.
        name: String,
        /// The local file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is malformed, or names a file in an unsafe way.
    #[error("artifact {name}: {source}")]
    Manifest {
        /// The artifact.
        name: String,
        /// What is wrong with it.
        #[source]
        source: ManifestError,
    },
    /// A downloaded file's bytes are not the ones the manifest names.
    #[error("artifact {name}: {path} downloaded with MD5 {got}, the manifest says {want}")]
    Corrupt {
        /// The artifact.
        name: String,
        /// The entry.
        path: String,
        /// The MD5 of the bytes received (base64).
        got: String,
        /// The manifest's (base64).
        want: String,
    },
}

/// A saved version, as the server numbered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// The server's id of the version.
    pub id: String,
    /// `vN`'s N, when the server says.
    pub version: Option<i64>,
    /// The content digest (hex).
    pub digest: String,
    /// The server already had this content: no new version was made.
    pub deduplicated: bool,
    /// Files sent: the entries uploaded and the manifest (0 when deduplicated).
    pub files_sent: usize,
}

/// What became of a logged artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactOutcome {
    /// Written to the log (offline: `cairn sync` uploads it later).
    Recorded,
    /// Committed on the server.
    Saved(Saved),
    /// Hashing or uploading failed.
    Failed(String),
}

/// Outcomes of a run's artifacts by client id, for the SDK's handles to wait on.
#[derive(Debug, Default)]
pub struct ArtifactBoard {
    outcomes: Mutex<HashMap<String, ArtifactOutcome>>,
    changed: Condvar,
    /// The history step each artifact was logged at, when its logger said (W&B's
    /// `log_artifact` request carries it; the log's artifact record does not).
    steps: Mutex<HashMap<String, i64>>,
}

impl ArtifactBoard {
    /// Notes that artifact `client_id` was logged at history step `step` (its version
    /// is then created with `historyStep`).
    pub fn set_history_step(&self, client_id: &str, step: i64) {
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        steps.insert(client_id.to_owned(), step);
    }

    /// The history step artifact `client_id` was logged at, if noted.
    pub fn history_step(&self, client_id: &str) -> Option<i64> {
        let steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        steps.get(client_id).copied()
    }

    /// Records the outcome of artifact `client_id` (replacing an earlier one).
    pub fn publish(&self, client_id: &str, outcome: ArtifactOutcome) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        outcomes.insert(client_id.to_owned(), outcome);
        self.changed.notify_all();
    }

    /// Waits up to `timeout` for an outcome of `client_id` that `done` accepts.
    pub fn wait(
        &self,
        client_id: &str,
        timeout: Option<Duration>,
        done: impl Fn(&ArtifactOutcome) -> bool,
    ) -> Option<ArtifactOutcome> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = outcomes.get(client_id).filter(|o| done(o)) {
                return Some(outcome.clone());
            }
            let wait = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            outcomes = self
                .changed
                .wait_timeout(outcomes, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The run an artifact belongs to on the server.
#[derive(Clone, Debug)]
pub struct Target {
    /// The run's entity.
    pub entity: String,
    /// The run's project.
    pub project: String,
    /// The run's id.
    pub run: String,
}

/// The manifest an `ArtifactRecord` carries.
pub fn record_manifest(record: &ArtifactRecord) -> Manifest {
    let mut manifest = Manifest::new();
    let Some(proto) = &record.manifest else {
        return manifest;
    };
    for item in &proto.storage_policy_config {
        let value: Option<String> = serde_json::from_str(&item.value_json).ok();
        match item.key.as_str() {
            "storageLayout" => manifest.storage_layout = value,
            "storageRegion" => manifest.storage_region = value,
            _ => {}
        }
    }
    for entry in &proto.contents {
        let extra = entry
            .extra
            .iter()
            .filter_map(|e| Some((e.key.clone(), serde_json::from_str(&e.value_json).ok()?)))
            .collect();
        manifest.entries.insert(
            entry.path.clone(),
            Entry {
                digest: entry.digest.clone(),
                size: entry.size.max(0) as u64,
                reference: Some(entry.r#ref.clone()).filter(|r| !r.is_empty()),
                birth_artifact_id: Some(entry.birth_artifact_id.clone()).filter(|b| !b.is_empty()),
                local_path: Some(PathBuf::from(&entry.local_path))
                    .filter(|p| !p.as_os_str().is_empty()),
                skip_cache: entry.skip_cache,
                extra,
            },
        );
    }
    manifest
}

/// The protocol form of `manifest`, for an `ArtifactRecord`.
pub fn manifest_record(manifest: &Manifest) -> cairn_proto::ArtifactManifest {
    let mut config = vec![];
    for (key, value) in [
        ("storageLayout", &manifest.storage_layout),
        ("storageRegion", &manifest.storage_region),
    ] {
        if let Some(value) = value {
            config.push(cairn_proto::StoragePolicyConfigItem {
                key: key.to_owned(),
                value_json: Json::String(value.clone()).to_string(),
            });
        }
    }
    cairn_proto::ArtifactManifest {
        version: 1,
        storage_policy: manifest.storage_policy.clone(),
        storage_policy_config: config,
        contents: manifest
            .entries
            .iter()
            .map(|(path, e)| cairn_proto::ArtifactManifestEntry {
                path: path.clone(),
                digest: e.digest.clone(),
                r#ref: e.reference.clone().unwrap_or_default(),
                size: e.size as i64,
                local_path: e
                    .local_path
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                birth_artifact_id: e.birth_artifact_id.clone().unwrap_or_default(),
                skip_cache: e.skip_cache,
                extra: e
                    .extra
                    .iter()
                    .map(|(k, v)| cairn_proto::ExtraItem {
                        key: k.clone(),
                        value_json: v.to_string(),
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

const CREATE_ARTIFACT: &str = "mutation CreateArtifact($input: CreateArtifactInput!) {
  createArtifact(input: $input) {
    artifact { id state versionIndex digest artifactSequence { latestArtifact { id } } }
  }
}";

const CREATE_ARTIFACT_MANIFEST: &str = "mutation CreateArtifactManifest($artifactID: ID!, \
$baseArtifactID: ID, $name: String!, $digest: String!, $entityName: String!, $projectName: String!, \
$runName: String!, $manifestType: ArtifactManifestType!, $includeUpload: Boolean!) {
  createArtifactManifest(input: {artifactID: $artifactID, baseArtifactID: $baseArtifactID, \
name: $name, digest: $digest, entityName: $entityName, projectName: $projectName, \
runName: $runName, type: $manifestType}) {
    artifactManifest { id file { id uploadUrl @include(if: $includeUpload) uploadHeaders @include(if: $includeUpload) } }
  }
}";

const CREATE_ARTIFACT_FILES: &str =
    "mutation CreateArtifactFiles($input: CreateArtifactFilesInput!) {
  createArtifactFiles(input: $input) {
    files { edges { node { storagePath uploadUrl uploadHeaders
      uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl } } artifact { id } } } }
  }
}";

/// [`CREATE_ARTIFACT_FILES`] asking also which parts the server already stores.
const CREATE_ARTIFACT_FILES_RESUMABLE: &str = "mutation CreateArtifactFiles($input: CreateArtifactFilesInput!) {
  createArtifactFiles(input: $input) {
    files { edges { node { storagePath uploadUrl uploadHeaders
      uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl storedHexMD5 } } artifact { id } } } }
  }
}";

const COMPLETE_MULTIPART: &str = "mutation CompleteMultipartUploadArtifact(\
$completeMultipartAction: CompleteMultipartAction!, $completedParts: [UploadPartsInput!]!, \
$artifactID: ID!, $storagePath: String!, $uploadID: String!) {
  completeMultipartUploadArtifact(input: {completeMultipartAction: $completeMultipartAction, \
completedParts: $completedParts, artifactID: $artifactID, storagePath: $storagePath, uploadID: $uploadID}) { digest }
}";

const COMMIT_ARTIFACT: &str = "mutation CommitArtifact($artifactID: ID!) {
  commitArtifact(input: {artifactID: $artifactID}) { artifact { id digest versionIndex } }
}";

const MEMBERSHIP_BY_NAME: &str = "query ArtifactMembershipByName($entity: String!, \
$project: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    artifactCollectionMembership(name: $name) {
      versionIndex
      artifactCollection { name project { name entity { name } } }
      artifact { id digest state size fileCount artifactType { name } }
    }
  }
}";

const USE_ARTIFACT: &str = "mutation UseArtifact($input: UseArtifactInput!) {
  useArtifact(input: $input) { artifact { id } }
}";

const FETCH_MANIFEST: &str = "query FetchArtifactManifest($id: ID!) {
  artifact(id: $id) { currentManifest { file { directUrl } } }
}";

const FILE_URLS: &str = "query GetArtifactMembershipFileUrls($entity: String!, $project: String!, \
$collection: String!, $alias: String!, $cursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) {
    artifactCollection(name: $collection) {
      artifactMembership(aliasName: $alias) {
        files(after: $cursor, first: $perPage) {
          pageInfo { endCursor hasNextPage }
          edges { node { name directUrl } }
        }
      }
    }
  }
}";

/// One file of a version to upload: its entry name, local path, digest and (for large
/// files) parts.
struct Upload {
    name: String,
    path: PathBuf,
    md5: String,
    parts: Option<Vec<hash::PartDigest>>,
}

/// Saves the artifact of `record` for the run `target` (see the module doc). `resumable`:
/// the server has cairn's `CAIRN_RESUMABLE_MULTIPART` feature, so parts it already stores
/// (from an upload cut off earlier) are not sent again. `history_step`: the run's step the
/// artifact was logged at, when known.
pub fn save(
    conn: &Connection,
    target: &Target,
    record: &ArtifactRecord,
    resumable: bool,
    history_step: Option<i64>,
    until: &Until,
) -> Result<Saved, ArtifactError> {
    let name = format!("{}:{}", record.name, record.r#type);
    let http = |source| ArtifactError::Http {
        name: name.clone(),
        source,
    };
    let answer = |operation, detail: String| ArtifactError::Answer {
        name: name.clone(),
        operation,
        detail,
    };
    let mut manifest = record_manifest(record);
    let digest = manifest.content_digest();
    let mut aliases: Vec<Json> =
        vec![json!({"alias": "latest", "artifactCollectionName": record.name})];
    for alias in record.aliases.iter().filter(|a| a.as_str() != "latest") {
        aliases.push(json!({"alias": alias, "artifactCollectionName": record.name}));
    }
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let input = json!({
        "entityName": target.entity,
        "projectName": target.project,
        "runName": target.run,
        "artifactTypeName": record.r#type,
        "artifactCollectionName": record.name,
        "digest": digest,
        "digestAlgorithm": "MANIFEST_MD5",
        "description": nonempty(&record.description),
        "metadata": nonempty(&record.metadata),
        "aliases": aliases,
        "tags": record.tags.iter().map(|t| json!({"tagName": t})).collect::<Vec<_>>(),
        "ttlDurationSeconds": (record.ttl_duration_seconds > 0).then_some(record.ttl_duration_seconds),
        "enableDigestDeduplication": true,
        "clientID": nonempty(&record.client_id),
        "sequenceClientID": nonempty(&record.sequence_client_id),
        "historyStep": history_step,
    });
    let data = conn
        .graphql(
            "CreateArtifact",
            CREATE_ARTIFACT,
            json!({"input": input}),
            until,
        )
        .map_err(http)?;
    let artifact = &data["createArtifact"]["artifact"];
    let id = artifact["id"]
        .as_str()
        .ok_or_else(|| answer("CreateArtifact", format!("no artifact id in {data}")))?
        .to_owned();
    match artifact["state"].as_str() {
        Some("COMMITTED") => {
            return Ok(Saved {
                id,
                version: artifact["versionIndex"].as_i64(),
                digest,
                deduplicated: true,
                files_sent: 0,
            });
        }
        Some("PENDING") | Some("DELETED") => {}
        other => {
            return Err(answer("CreateArtifact", format!("state {other:?}")));
        }
    }
    let base = artifact["artifactSequence"]["latestArtifact"]["id"].as_str();
    let manifest_vars = |digest: &str, include_upload: bool| {
        json!({
            "artifactID": id, "baseArtifactID": base, "name": "wandb_manifest.json",
            "digest": digest, "entityName": target.entity, "projectName": target.project,
            "runName": target.run, "manifestType": "FULL", "includeUpload": include_upload,
        })
    };
    let data = conn
        .graphql(
            "CreateArtifactManifest",
            CREATE_ARTIFACT_MANIFEST,
            manifest_vars("", false),
            until,
        )
        .map_err(http)?;
    let manifest_id = data["createArtifactManifest"]["artifactManifest"]["id"]
        .as_str()
        .ok_or_else(|| {
            answer(
                "CreateArtifactManifest",
                format!("no manifest id in {data}"),
            )
        })?
        .to_owned();

    let mut uploads = Vec::new();
    for (entry_name, entry) in &manifest.entries {
        if entry.reference.is_some() {
            continue;
        }
        let Some(path) = &entry.local_path else {
            continue;
        };
        let parts = match hash::multipart_part_size(entry.size) {
            Some(part_size) => {
                Some(
                    hash::part_md5s(path, part_size).map_err(|err| ArtifactError::File {
                        name: name.clone(),
                        path: path.clone(),
                        source: std::io::Error::other(err.to_string()),
                    })?,
                )
            }
            None => None,
        };
        uploads.push(Upload {
            name: entry_name.clone(),
            path: path.clone(),
            md5: entry.digest.clone(),
            parts,
        });
    }
    for batch in uploads.chunks(FILES_PER_BATCH) {
        let births = upload_batch(conn, &id, &manifest_id, batch, resumable, until, &name)?;
        for (entry_name, birth) in births {
            if let Some(entry) = manifest.entries.get_mut(&entry_name) {
                entry.birth_artifact_id = Some(birth);
            }
        }
    }

    let text = manifest.to_json();
    let manifest_md5 = Md5::of(text.as_bytes()).to_base64();
    let data = conn
        .graphql(
            "CreateArtifactManifest",
            CREATE_ARTIFACT_MANIFEST,
            manifest_vars(&manifest_md5, true),
            until,
        )
        .map_err(http)?;
    let file = &data["createArtifactManifest"]["artifactManifest"]["file"];
    let url = file["uploadUrl"]
        .as_str()
        .ok_or_else(|| answer("CreateArtifactManifest", format!("no upload URL in {data}")))?;
    let staged = tempfile_with(text.as_bytes()).map_err(|source| ArtifactError::File {
        name: name.clone(),
        path: std::env::temp_dir(),
        source,
    })?;
    conn.put_file(url, staged.path(), &upload_headers(file), until)
        .map_err(http)?;
    let data = conn
        .graphql(
            "CommitArtifact",
            COMMIT_ARTIFACT,
            json!({"artifactID": id}),
            until,
        )
        .map_err(http)?;
    let committed = &data["commitArtifact"]["artifact"];
    Ok(Saved {
        version: committed["versionIndex"].as_i64(),
        digest: committed["digest"].as_str().map_or(digest, str::to_owned),
        id,
        deduplicated: false,
        files_sent: uploads.len() + 1,
    })
}

/// A temporary file holding `bytes` (deleted when dropped).
fn tempfile_with(bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    use std::io::Write as _;
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(bytes)?;
    file.flush()?;
    Ok(file)
}

/// One transfer: a whole file, or one part of one.
struct Transfer {
    url: String,
    path: PathBuf,
    range: Option<(u64, u64)>,
    headers: Vec<(String, String)>,
    /// (upload index, part number) for parts.
    part: Option<(usize, u32)>,
}

/// A multipart upload waiting for its parts.
struct Multipart {
    upload_id: String,
    storage_path: String,
    birth: String,
    etags: Vec<(u32, String)>,
}

/// Announces `batch`, uploads what the server lacks, completes multipart uploads; returns
/// each file's birth artifact id.
fn upload_batch(
    conn: &Connection,
    artifact_id: &str,
    manifest_id: &str,
    batch: &[Upload],
    resumable: bool,
    until: &Until,
    name: &str,
) -> Result<Vec<(String, String)>, ArtifactError> {
    let http = |source| ArtifactError::Http {
        name: name.to_owned(),
        source,
    };
    let files: Vec<Json> = batch
        .iter()
        .map(|u| {
            json!({
                "artifactID": artifact_id,
                "artifactManifestID": manifest_id,
                "name": u.name,
                "md5": u.md5,
                "mimetype": null,
                "uploadPartsInput": u.parts.as_ref().map(|parts| parts.iter().map(|p| json!({
                    "partNumber": p.number, "hexMD5": p.md5.to_hex(),
                })).collect::<Vec<_>>()),
            })
        })
        .collect();
    let document = if resumable {
        CREATE_ARTIFACT_FILES_RESUMABLE
    } else {
        CREATE_ARTIFACT_FILES
    };
    let data = conn
        .graphql(
            "CreateArtifactFiles",
            document,
            json!({"input": {"artifactFiles": files, "storageLayout": "V2"}}),
            until,
        )
        .map_err(http)?;
    let edges = data["createArtifactFiles"]["files"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if edges.len() != batch.len() {
        return Err(ArtifactError::Answer {
            name: name.to_owned(),
            operation: "CreateArtifactFiles",
            detail: format!("expected {} upload URLs, got {}", batch.len(), edges.len()),
        });
    }
    let mut births = Vec::with_capacity(batch.len());
    let mut transfers = Vec::new();
    let mut multiparts: HashMap<usize, Multipart> = HashMap::new();
    for (index, (upload, edge)) in batch.iter().zip(&edges).enumerate() {
        let node = &edge["node"];
        let birth = node["artifact"]["id"]
            .as_str()
            .unwrap_or(artifact_id)
            .to_owned();
        births.push((upload.name.clone(), birth.clone()));
        let Some(url) = node["uploadUrl"].as_str() else {
            continue; // the server has these bytes
        };
        let headers = upload_headers(node);
        let part_urls = node["uploadMultipartUrls"]["uploadUrlParts"].as_array();
        match (&upload.parts, part_urls) {
            (Some(parts), Some(urls)) => {
                let stored: HashMap<u64, &str> = urls
                    .iter()
                    .filter_map(|u| Some((u["partNumber"].as_u64()?, u["storedHexMD5"].as_str()?)))
                    .collect();
                let urls: HashMap<u64, &str> = urls
                    .iter()
                    .filter_map(|u| Some((u["partNumber"].as_u64()?, u["uploadUrl"].as_str()?)))
                    .collect();
                let mut etags = Vec::new();
                for part in parts {
                    let hex = part.md5.to_hex();
                    if stored
                        .get(&u64::from(part.number))
                        .is_some_and(|md5| md5.eq_ignore_ascii_case(&hex))
                    {
                        // Stored by an earlier, cut-off upload: its ETag is its MD5.
                        etags.push((part.number, format!("\"{hex}\"")));
                        continue;
                    }
                    let url =
                        urls.get(&u64::from(part.number))
                            .ok_or_else(|| ArtifactError::Answer {
                                name: name.to_owned(),
                                operation: "CreateArtifactFiles",
                                detail: format!(
                                    "no URL for part {} of {}",
                                    part.number, upload.name
                                ),
                            })?;
                    let mut headers = headers.clone();
                    headers.push(("Content-MD5".to_owned(), part.md5.to_base64()));
                    headers.push(("Content-Type".to_owned(), String::new()));
                    transfers.push(Transfer {
                        url: (*url).to_owned(),
                        path: upload.path.clone(),
                        range: Some((part.offset, part.len)),
                        headers,
                        part: Some((index, part.number)),
                    });
                }
                multiparts.insert(
                    index,
                    Multipart {
                        upload_id: node["uploadMultipartUrls"]["uploadID"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        storage_path: node["storagePath"].as_str().unwrap_or_default().to_owned(),
                        birth,
                        etags,
                    },
                );
            }
            _ => transfers.push(Transfer {
                url: url.to_owned(),
                path: upload.path.clone(),
                range: None,
                headers,
                part: None,
            }),
        }
    }
    for (part, etag) in run_transfers(conn, transfers, until).map_err(http)? {
        let (index, number) = part;
        let Some(etag) = etag else {
            return Err(ArtifactError::Answer {
                name: name.to_owned(),
                operation: "PUT of a part",
                detail: format!("no ETag for part {number} of {}", batch[index].name),
            });
        };
        if let Some(multipart) = multiparts.get_mut(&index) {
            multipart.etags.push((number, etag));
        }
    }
    for (_, mut multipart) in multiparts {
        multipart.etags.sort_unstable();
        let parts: Vec<Json> = multipart
            .etags
            .iter()
            .map(|(n, etag)| json!({"partNumber": n, "hexMD5": etag}))
            .collect();
        conn.graphql(
            "CompleteMultipartUploadArtifact",
            COMPLETE_MULTIPART,
            json!({
                "completeMultipartAction": "Complete",
                "completedParts": parts,
                "artifactID": multipart.birth,
                "storagePath": multipart.storage_path,
                "uploadID": multipart.upload_id,
            }),
            until,
        )
        .map_err(http)?;
    }
    Ok(births)
}

/// A part's (upload index, part number) and the ETag its PUT answered with.
type PartEtag = ((usize, u32), Option<String>);

/// Runs `transfers`, [`PARALLEL_TRANSFERS`] at a time; returns the ETags of the parts.
/// The first failure stops the rest.
fn run_transfers(
    conn: &Connection,
    transfers: Vec<Transfer>,
    until: &Until,
) -> Result<Vec<PartEtag>, HttpError> {
    let results = in_parallel(
        transfers,
        PARALLEL_TRANSFERS,
        |t| {
            let outcome = conn.put_file_part(&t.url, &t.path, t.range, &t.headers, until);
            (t.part, outcome)
        },
        |(_, outcome)| outcome.is_err(),
    );
    let mut etags = Vec::new();
    for (part, outcome) in results {
        let etag = outcome?;
        if let Some(part) = part {
            etags.push((part, etag));
        }
    }
    Ok(etags)
}

/// A committed version found on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteArtifact {
    /// The server's id of the version.
    pub id: String,
    /// The entity of its project.
    pub entity: String,
    /// Its project.
    pub project: String,
    /// The collection's name.
    pub collection: String,
    /// `vN`'s N.
    pub version: i64,
    /// The artifact's type.
    pub type_name: String,
    /// The content digest (hex).
    pub digest: String,
    /// Bytes in its files.
    pub size: i64,
    /// Its entries.
    pub file_count: i64,
}

impl RemoteArtifact {
    /// `collection:vN`.
    pub fn name(&self) -> String {
        format!("{}:v{}", self.collection, self.version)
    }
}

/// The version `name` (`collection:alias`, `collection:vN`; a bare name means `latest`) of
/// `entity/project`.
pub fn resolve(
    conn: &Connection,
    entity: &str,
    project: &str,
    name: &str,
    until: &Until,
) -> Result<RemoteArtifact, ArtifactError> {
    let full = if name.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    };
    let data = conn
        .graphql(
            "ArtifactMembershipByName",
            MEMBERSHIP_BY_NAME,
            json!({"entity": entity, "project": project, "name": full}),
            until,
        )
        .map_err(|source| ArtifactError::Http {
            name: full.clone(),
            source,
        })?;
    let m = &data["project"]["artifactCollectionMembership"];
    let text = |v: &Json| v.as_str().map(str::to_owned);
    let found = (|| {
        Some(RemoteArtifact {
            id: text(&m["artifact"]["id"])?,
            entity: text(&m["artifactCollection"]["project"]["entity"]["name"])?,
            project: text(&m["artifactCollection"]["project"]["name"])?,
            collection: text(&m["artifactCollection"]["name"])?,
            version: m["versionIndex"].as_i64()?,
            type_name: text(&m["artifact"]["artifactType"]["name"]).unwrap_or_default(),
            digest: text(&m["artifact"]["digest"]).unwrap_or_default(),
            size: m["artifact"]["size"].as_i64().unwrap_or(0),
            file_count: m["artifact"]["fileCount"].as_i64().unwrap_or(0),
        })
    })();
    found.ok_or_else(|| ArtifactError::NotFound(format!("{entity}/{project}/{full}")))
}

/// Records on the server that run `target` used version `artifact_id`.
pub fn record_use(
    conn: &Connection,
    target: &Target,
    artifact_id: &str,
    until: &Until,
) -> Result<(), ArtifactError> {
    conn.graphql(
        "UseArtifact",
        USE_ARTIFACT,
        json!({"input": {"entityName": target.entity, "projectName": target.project,
            "runName": target.run, "artifactID": artifact_id}}),
        until,
    )
    .map_err(|source| ArtifactError::Http {
        name: artifact_id.to_owned(),
        source,
    })?;
    Ok(())
}

/// What a download did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownloadReport {
    /// Files fetched from the server.
    pub fetched: usize,
    /// Files taken from the cache.
    pub from_cache: usize,
    /// Files already in the folder with the right content.
    pub kept: usize,
    /// Bytes fetched.
    pub bytes: u64,
}

/// The default artifact cache: `$WANDB_CACHE_DIR/artifacts`, else
/// `~/.cache/wandb/artifacts` (W&B's, so both tools share it).
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WANDB_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("artifacts");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("wandb").join("artifacts")
}

/// Downloads `artifact` into `dir` through the cache at `cache` (see the module doc).
pub fn download(
    conn: &Connection,
    artifact: &RemoteArtifact,
    dir: &Path,
    cache: &Path,
    until: &Until,
) -> Result<DownloadReport, ArtifactError> {
    let name = artifact.name();
    let http = |source| ArtifactError::Http {
        name: name.clone(),
        source,
    };
    let file_err = |path: &Path| {
        let name = name.clone();
        let path = path.to_owned();
        move |source| ArtifactError::File { name, path, source }
    };
    let data = conn
        .graphql(
            "FetchArtifactManifest",
            FETCH_MANIFEST,
            json!({"id": artifact.id}),
            until,
        )
        .map_err(http)?;
    let url = data["artifact"]["currentManifest"]["file"]["directUrl"]
        .as_str()
        .ok_or_else(|| ArtifactError::Answer {
            name: name.clone(),
            operation: "FetchArtifactManifest",
            detail: format!("no manifest URL in {data}"),
        })?;
    std::fs::create_dir_all(cache).map_err(file_err(cache))?;
    let staged = tempfile::NamedTempFile::new_in(cache).map_err(file_err(cache))?;
    conn.get_to_file(url, staged.path(), until).map_err(http)?;
    let text = std::fs::read(staged.path()).map_err(file_err(staged.path()))?;
    let manifest = Manifest::from_json(&text).map_err(|source| ArtifactError::Manifest {
        name: name.clone(),
        source,
    })?;
    manifest
        .check_names()
        .map_err(|source| ArtifactError::Manifest {
            name: name.clone(),
            source,
        })?;
    let urls = file_urls(conn, artifact, until).map_err(http)?;

    let mut report = DownloadReport::default();
    let mut fetches = Vec::new();
    for (path, entry) in &manifest.entries {
        if entry.reference.is_some() {
            continue; // references are not downloaded (the user's storage holds them)
        }
        let Some(md5) = Md5::from_base64(&entry.digest) else {
            return Err(ArtifactError::Corrupt {
                name: name.clone(),
                path: path.clone(),
                got: String::new(),
                want: entry.digest.clone(),
            });
        };
        let dest = dir.join(path);
        if dest.metadata().is_ok_and(|m| m.len() == entry.size)
            && hash::md5_file(&dest).is_ok_and(|d| d.md5 == md5)
        {
            report.kept += 1;
            continue;
        }
        let cached = cache_path(cache, &md5);
        if cached.is_file() {
            place(&cached, &dest).map_err(file_err(&dest))?;
            report.from_cache += 1;
            continue;
        }
        let url = urls.get(path).ok_or_else(|| ArtifactError::Answer {
            name: name.clone(),
            operation: "GetArtifactMembershipFileUrls",
            detail: format!("no URL for {path}"),
        })?;
        fetches.push((path.clone(), url.clone(), md5, entry.size, dest, cached));
    }
    let results = in_parallel(
        fetches,
        PARALLEL_TRANSFERS,
        |(path, url, md5, size, dest, cached)| {
            let outcome = fetch_one(conn, &url, &md5, &cached, &dest, until, &name, &path);
            (size, outcome)
        },
        |(_, outcome)| outcome.is_err(),
    );
    let (mut fetched, mut bytes) = (0, 0);
    for (size, outcome) in results {
        outcome?;
        fetched += 1;
        bytes += size;
    }
    report.fetched = fetched;
    report.bytes = bytes;
    Ok(report)
}

/// Fetches one file into the cache (checked), then places it at `dest`.
#[allow(clippy::too_many_arguments)]
fn fetch_one(
    conn: &Connection,
    url: &str,
    md5: &Md5,
    cached: &Path,
    dest: &Path,
    until: &Until,
    name: &str,
    path: &str,
) -> Result<(), ArtifactError> {
    let file_err = |at: &Path| {
        let at = at.to_owned();
        move |source| ArtifactError::File {
            name: name.to_owned(),
            path: at,
            source,
        }
    };
    let parent = cached.parent().unwrap_or(cached);
    std::fs::create_dir_all(parent).map_err(file_err(parent))?;
    let staged = tempfile::NamedTempFile::new_in(parent).map_err(file_err(parent))?;
    let got = conn
        .get_to_file(url, staged.path(), until)
        .map_err(|source| ArtifactError::Http {
            name: name.to_owned(),
            source,
        })?;
    if got != md5.0 {
        return Err(ArtifactError::Corrupt {
            name: name.to_owned(),
            path: path.to_owned(),
            got: Md5(got).to_base64(),
            want: md5.to_base64(),
        });
    }
    staged.persist(cached).map_err(|err| ArtifactError::File {
        name: name.to_owned(),
        path: cached.to_owned(),
        source: err.error,
    })?;
    place(cached, dest).map_err(file_err(dest))
}

/// Where the cache keeps content `md5`.
fn cache_path(cache: &Path, md5: &Md5) -> PathBuf {
    let hex = md5.to_hex();
    cache
        .join("obj")
        .join("md5")
        .join(&hex[..2])
        .join(&hex[2..])
}

/// Puts the cached file at `dest`: a hard link (no second copy), or a copy across file
/// systems. Whatever was at `dest` is replaced.
fn place(cached: &Path, dest: &Path) -> std::io::Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::remove_file(dest) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if std::fs::hard_link(cached, dest).is_err() {
        std::fs::copy(cached, dest)?;
    }
    Ok(())
}

/// Every stored file's signed URL, by entry name (paged as the server pages).
fn file_urls(
    conn: &Connection,
    artifact: &RemoteArtifact,
    until: &Until,
) -> Result<HashMap<String, String>, HttpError> {
    let mut urls = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let data = conn.graphql(
            "GetArtifactMembershipFileUrls",
            FILE_URLS,
            json!({"entity": artifact.entity, "project": artifact.project,
                "collection": artifact.collection, "alias": format!("v{}", artifact.version),
                "cursor": cursor, "perPage": 5000}),
            until,
        )?;
        let files = &data["project"]["artifactCollection"]["artifactMembership"]["files"];
        for edge in files["edges"].as_array().into_iter().flatten() {
            if let (Some(name), Some(url)) = (
                edge["node"]["name"].as_str(),
                edge["node"]["directUrl"].as_str(),
            ) {
                urls.insert(name.to_owned(), url.to_owned());
            }
        }
        let next = files["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        if files["pageInfo"]["hasNextPage"].as_bool() != Some(true) || next.is_none() {
            return Ok(urls);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_manifests_convert_both_ways() {
        let mut manifest = Manifest::new();
        manifest.entries.insert(
            "a.txt".to_owned(),
            Entry {
                digest: "t/DFCvY1IvFkGHDVa9VgAg==".to_owned(),
                size: 8,
                local_path: Some(PathBuf::from("/tmp/a.txt")),
                ..Entry::default()
            },
        );
        manifest.entries.insert(
            "r".to_owned(),
            Entry {
                digest: "etag".to_owned(),
                reference: Some("s3://b/k".to_owned()),
                ..Entry::default()
            },
        );
        let record = ArtifactRecord {
            manifest: Some(manifest_record(&manifest)),
            ..Default::default()
        };
        assert_eq!(record_manifest(&record), manifest);
    }

    #[test]
    fn board_waits_for_an_accepted_outcome() {
        let board = std::sync::Arc::new(ArtifactBoard::default());
        assert_eq!(
            board.wait("x", Some(Duration::from_millis(10)), |_| true),
            None
        );
        let writer = board.clone();
        let t = std::thread::spawn(move || {
            writer.publish("x", ArtifactOutcome::Recorded);
            std::thread::sleep(Duration::from_millis(20));
            writer.publish("x", ArtifactOutcome::Failed("boom".to_owned()));
        });
        let got = board.wait("x", Some(Duration::from_secs(5)), |o| {
            !matches!(o, ArtifactOutcome::Recorded)
        });
        t.join().unwrap();
        assert_eq!(got, Some(ArtifactOutcome::Failed("boom".to_owned())));
    }

    #[test]
    fn cache_paths_follow_wandb() {
        let md5 = Md5::from_hex("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            cache_path(Path::new("/c"), &md5),
            PathBuf::from("/c/obj/md5/01/23456789abcdef0123456789abcdef")
        );
    }
}
