//! Saving a version on the server from an `ArtifactRecord` of the log ([`save`], W&B's flow).
//!
//! `CreateArtifact` (the server answers COMMITTED when the content digest is the latest
//! version's: nothing more to do) → `CreateArtifactManifest` → `CreateArtifactFiles` in batches
//! (a null upload URL means the server already holds those bytes: no upload) → the PUTs,
//! `PARALLEL_TRANSFERS` at a time, streamed from disk; files of 2 GiB and more in parts (each
//! part retried on its own, with its `Content-MD5`) joined by
//! `CompleteMultipartUploadArtifact` → the manifest with each entry's `birthArtifactID` →
//! `CommitArtifact`. Memory: one batch of upload URLs and the manifest text; file bytes are
//! streamed.
//!
//! Runs on the caller's thread (the uploader's `cairn-artifacts` worker); the transfers of a
//! batch run on scoped threads that end with it. The caller's [`Until`] bounds every request.

use std::collections::HashMap;
use std::path::PathBuf;

use cairn_proto::ArtifactRecord;
use serde_json::{Value as Json, json};

use crate::client::{Connection, HttpError, Until, documents, in_parallel, upload_headers};

use super::PARALLEL_TRANSFERS;
use super::error::ArtifactError;
use super::hash::{self, Md5};
use super::record::record_manifest;

/// Files per `CreateArtifactFiles` request.
const FILES_PER_BATCH: usize = 1000;

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
            documents::CREATE_ARTIFACT,
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
            documents::CREATE_ARTIFACT_MANIFEST,
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
            documents::CREATE_ARTIFACT_MANIFEST,
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
            documents::COMMIT_ARTIFACT,
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
        documents::CREATE_ARTIFACT_FILES_RESUMABLE
    } else {
        documents::CREATE_ARTIFACT_FILES
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
            documents::COMPLETE_MULTIPART_UPLOAD_ARTIFACT,
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

/// Runs `transfers`, `PARALLEL_TRANSFERS` at a time; returns the ETags of the parts.
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
