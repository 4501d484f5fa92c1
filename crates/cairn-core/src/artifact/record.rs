//! An artifact's manifest as the log's `ArtifactRecord` carries it, both ways: the SDK puts a
//! [`Manifest`] into the record it logs ([`manifest_record`]); the uploader reads it back to
//! save the version ([`record_manifest`]).
//!
//! Pure conversions; no IO.

use std::path::PathBuf;

use cairn_proto::ArtifactRecord;
use serde_json::Value as Json;

use super::manifest::{Entry, Manifest};

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
}
