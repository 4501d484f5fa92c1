//! A version's `wandb_manifest.json`: where it is stored, how it is read and checked, and
//! W&B's content digest of its entries.
//!
//! Input: the manifest's bytes as the client uploaded them to its signed URL. Output: its
//! entries as rows (paths checked, digests well formed) with the digest each names, or a
//! `BadRequest` naming the artifact. Reads stop at [`MAX_MANIFEST_BYTES`].

use futures_util::StreamExt as _;
use md5::{Digest as _, Md5};
use serde_json::Value;

use crate::blob::{self, Blobs};
use crate::db::{self, ArtifactRow, Db, EntryRow};
use crate::error::ApiError;
use crate::ids;

/// The largest manifest a commit reads (about four million entries).
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// Reserves the storage key of `artifact`'s manifest `name` (and records its base64 MD5
/// when the client names one); returns the key, for an upload URL.
pub(crate) async fn reserve(
    db: &Db,
    artifact: &ArtifactRow,
    name: &str,
    digest: Option<String>,
) -> Result<String, ApiError> {
    blob::check_file_name(name).map_err(ApiError::BadRequest)?;
    let key = blob::artifact_manifest_key(artifact.collection.entity_id, artifact.id);
    let digest = digest.filter(|d| !d.is_empty());
    let mut tx = db.write().await?;
    db::artifacts::versions::set_manifest(tx.conn(), artifact.id, &key, digest.as_deref()).await?;
    tx.commit().await?;
    Ok(key)
}

/// W&B's content digest of a manifest's entries (path, digest), hex.
pub(crate) fn content_digest<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut entries: Vec<(&str, &str)> = entries.collect();
    entries.sort_unstable();
    let mut md5 = Md5::new();
    md5.update(b"wandb-artifact-manifest-v1\n");
    for (path, digest) in entries {
        md5.update(path.as_bytes());
        md5.update(b":");
        md5.update(digest.as_bytes());
        md5.update(b"\n");
    }
    hex::encode(md5.finalize())
}

/// The entries of a `wandb_manifest.json`, checked: paths safe, digests well formed. Each
/// comes with the digest the manifest names (for [`content_digest`]).
pub(crate) fn parse(bytes: &[u8], artifact: &str) -> Result<Vec<(EntryRow, String)>, ApiError> {
    let bad = |msg: String| ApiError::BadRequest(format!("manifest of {artifact}: {msg}"));
    let manifest: Value =
        serde_json::from_slice(bytes).map_err(|err| bad(format!("not JSON: {err}")))?;
    let contents = manifest
        .get("contents")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no `contents` object".to_owned()))?;
    let mut entries = Vec::with_capacity(contents.len());
    for (path, entry) in contents {
        blob::check_file_name(path).map_err(bad)?;
        let digest = entry
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("entry {path:?} has no digest")))?;
        let size = entry.get("size").and_then(Value::as_i64).unwrap_or(0);
        let reference = entry.get("ref").and_then(Value::as_str).map(str::to_owned);
        let birth = entry
            .get("birthArtifactID")
            .and_then(Value::as_str)
            .and_then(|id| ids::decode("Artifact", id));
        if reference.is_none() && blob::md5_hex(digest).is_none() {
            return Err(bad(format!(
                "entry {path:?} has digest {digest:?}, not a base64 MD5"
            )));
        }
        entries.push((
            EntryRow {
                path: path.clone(),
                md5: reference.is_none().then(|| digest.to_owned()),
                size,
                reference,
                birth_artifact_id: birth,
            },
            digest.to_owned(),
        ));
    }
    Ok(entries)
}

/// The bytes of the manifest stored at `key` for artifact `path`.
pub(crate) async fn read(blobs: &Blobs, key: &str, path: &str) -> Result<Vec<u8>, ApiError> {
    let (size, mut stream) = blobs.get(key).await.map_err(|err| match err {
        blob::BlobError::NotFound(_) => {
            ApiError::BadRequest(format!("artifact {path}: its manifest was never uploaded"))
        }
        other => other.into(),
    })?;
    if size > MAX_MANIFEST_BYTES {
        return Err(ApiError::BadRequest(format!(
            "artifact {path}: manifest of {size} bytes is larger than {MAX_MANIFEST_BYTES}"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| blob::BlobError::Store {
            key: key.to_owned(),
            source,
        })?;
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_digest_matches_wandb() {
        let digest = content_digest(
            [
                ("b.txt", "hprAQUrptf256Thx/DV7/g=="),
                ("a.txt", "t/DFCvY1IvFkGHDVa9VgAg=="),
            ]
            .into_iter(),
        );
        assert_eq!(digest, "43502a9e1a5f21586d4b3099d3d214e1");
    }

    #[test]
    fn manifests_are_checked() {
        let ok = br#"{"version":1,"contents":{"a.txt":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":8,"birthArtifactID":"QXJ0aWZhY3Q6djE6Mg=="},"r":{"digest":"etag","ref":"s3://b/k","size":3}}}"#;
        let entries = parse(ok, "a").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.birth_artifact_id, Some(2));
        assert_eq!(entries[1].0.md5, None);
        for bad in [
            &br#"{"contents":{"../x":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":1}}}"#[..],
            br#"{"contents":{"/etc/passwd":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":1}}}"#,
            br#"{"contents":{"a\u0000b":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":1}}}"#,
            br#"{"contents":{"a":{"digest":"zz","size":1}}}"#,
            br#"{"contents":[]}"#,
            b"not json",
        ] {
            assert!(parse(bad, "a").is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
