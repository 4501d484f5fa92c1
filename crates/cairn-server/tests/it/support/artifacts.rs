//! Saving and reading artifact versions the way `run.log_artifact()` and `wandb.Api()` do:
//! `CreateArtifact` → `CreateArtifactManifest` → `CreateArtifactFiles` → PUT each body to
//! its signed URL → `CreateArtifactManifest` again for the manifest's own URL → PUT the
//! manifest → `CommitArtifact`, with the SDK's own documents.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde_json::{Value, json};

use super::sdk::document;
use super::{ADMIN_KEY, TestApp};

/// A version to save: its collection, type and files, in `entity/project`.
#[derive(Clone, Debug)]
pub(crate) struct Save {
    pub(crate) key: String,
    pub(crate) entity: String,
    pub(crate) project: String,
    pub(crate) run: String,
    pub(crate) collection: String,
    pub(crate) type_name: String,
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) aliases: Vec<String>,
}

/// What saving gave.
#[derive(Clone, Debug)]
pub(crate) struct Saved {
    /// The version's GraphQL id.
    pub(crate) id: String,
    /// `createArtifact` answered an existing COMMITTED version (same content): nothing
    /// was uploaded or committed.
    pub(crate) deduplicated: bool,
    pub(crate) version_index: i64,
    /// Its aliases after the save, sorted.
    pub(crate) aliases: Vec<String>,
}

impl Save {
    /// A `dataset` version of collection `collection` in `admin/proj`, logged by run `r1`,
    /// with the admin's key and no files yet.
    pub(crate) fn new(collection: &str) -> Save {
        Save {
            key: ADMIN_KEY.to_owned(),
            entity: "admin".to_owned(),
            project: "proj".to_owned(),
            run: "r1".to_owned(),
            collection: collection.to_owned(),
            type_name: "dataset".to_owned(),
            files: Vec::new(),
            aliases: Vec::new(),
        }
    }

    pub(crate) fn file(mut self, name: &str, body: &[u8]) -> Save {
        self.files.push((name.to_owned(), body.to_vec()));
        self
    }

    pub(crate) fn alias(mut self, alias: &str) -> Save {
        self.aliases.push(alias.to_owned());
        self
    }

    /// The manifest's entries: path → (base64 MD5, size).
    fn entries(&self) -> Vec<(String, String, usize)> {
        self.files
            .iter()
            .map(|(name, body)| (name.clone(), b64_md5(body), body.len()))
            .collect()
    }

    /// `wandb_manifest.json`.
    fn manifest(&self) -> Vec<u8> {
        let contents: serde_json::Map<String, Value> = self
            .entries()
            .into_iter()
            .map(|(path, digest, size)| (path, json!({ "digest": digest, "size": size })))
            .collect();
        serde_json::to_vec(&json!({
            "version": 1,
            "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": { "storageLayout": "V2" },
            "contents": contents,
        }))
        .expect("JSON")
    }

    /// W&B's digest of the manifest's entries (MANIFEST_MD5).
    pub(crate) fn digest(&self) -> String {
        let mut entries = self.entries();
        entries.sort();
        let mut md5 = Md5::new();
        md5.update(b"wandb-artifact-manifest-v1\n");
        for (path, digest, _) in entries {
            md5.update(format!("{path}:{digest}\n").as_bytes());
        }
        hex::encode(md5.finalize())
    }

    /// Creates the run (as `wandb.init()` would) and the version: `createArtifact`'s
    /// answer, `{id, state}` (COMMITTED when the content is the latest version's).
    pub(crate) async fn create(&self, app: &TestApp) -> Value {
        app.graphql_ok_as(
            &self.key,
            document("UpsertBucket"),
            json!({ "name": self.run, "project": self.project, "entity": self.entity }),
        )
        .await;
        let mut aliases =
            vec![json!({ "alias": "latest", "artifactCollectionName": self.collection })];
        for alias in &self.aliases {
            aliases.push(json!({ "alias": alias, "artifactCollectionName": self.collection }));
        }
        let created = app
            .graphql_ok_as(
                &self.key,
                document("CreateArtifact"),
                json!({ "input": {
                    "aliases": aliases,
                    "artifactCollectionName": self.collection,
                    "artifactTypeName": self.type_name,
                    "clientID": format!("client-{}", rand_id()),
                    "sequenceClientID": format!("sequence-{}", rand_id()),
                    "digest": self.digest(),
                    "digestAlgorithm": "MANIFEST_MD5",
                    "enableDigestDeduplication": true,
                    "entityName": self.entity,
                    "projectName": self.project,
                    "runName": self.run,
                }}),
            )
            .await;
        created["createArtifact"]["artifact"].clone()
    }

    /// Saves the version; fails the test on any error.
    pub(crate) async fn save(&self, app: &TestApp) -> Saved {
        let artifact = self.create(app).await;
        let id = artifact["id"].as_str().expect("an artifact id").to_owned();
        if artifact["state"] == "COMMITTED" {
            return self.saved(app, id, true).await;
        }
        assert_eq!(artifact["state"], "PENDING", "{artifact}");

        let manifest = self.create_manifest(app, &id, "", false).await;
        let manifest_id = manifest["id"].as_str().expect("a manifest id").to_owned();
        let answer = app
            .graphql_ok_as(
                &self.key,
                document("CreateArtifactFiles"),
                self.files_input(&id, &manifest_id),
            )
            .await;
        let edges = answer["createArtifactFiles"]["files"]["edges"]
            .as_array()
            .expect("file edges")
            .clone();
        assert_eq!(edges.len(), self.files.len(), "{answer}");
        for ((_, body), edge) in self.files.iter().zip(&edges) {
            // Null: the entity already stores these bytes.
            if let Some(url) = edge["node"]["uploadUrl"].as_str() {
                app.upload(url, body.clone()).await;
            }
        }

        self.commit(app, id).await
    }

    /// Uploads the manifest of PENDING version `id` and commits it; fails the test on any
    /// error.
    pub(crate) async fn commit(&self, app: &TestApp, id: String) -> Saved {
        let bytes = self.manifest();
        let manifest = self.create_manifest(app, &id, &b64_md5(&bytes), true).await;
        let url = manifest["file"]["uploadUrl"]
            .as_str()
            .expect("a manifest upload URL");
        app.upload(url, bytes).await;

        let committed = app
            .graphql_ok_as(
                &self.key,
                document("CommitArtifact"),
                json!({ "artifactID": id }),
            )
            .await;
        assert_eq!(
            committed["commitArtifact"]["artifact"]["digest"],
            self.digest().as_str()
        );
        self.saved(app, id, false).await
    }

    /// `createArtifactFiles`'s variables for this save's files of version `id`.
    pub(crate) fn files_input(&self, id: &str, manifest_id: &str) -> Value {
        let files: Vec<Value> = self
            .entries()
            .into_iter()
            .map(|(name, md5, _)| {
                json!({ "artifactID": id, "artifactManifestID": manifest_id, "md5": md5,
                        "mimetype": null, "name": name, "uploadPartsInput": null })
            })
            .collect();
        json!({ "input": { "artifactFiles": files, "storageLayout": "V2" } })
    }

    /// `createArtifactManifest` for version `id`: the answer's `artifactManifest`.
    pub(crate) async fn create_manifest(
        &self,
        app: &TestApp,
        id: &str,
        digest: &str,
        include_upload: bool,
    ) -> Value {
        let answer = app
            .graphql_ok_as(
                &self.key,
                document("CreateArtifactManifest"),
                json!({
                    "artifactID": id, "baseArtifactID": null, "name": "wandb_manifest.json",
                    "digest": digest, "entityName": self.entity, "projectName": self.project,
                    "runName": self.run, "manifestType": "FULL", "includeUpload": include_upload,
                }),
            )
            .await;
        answer["createArtifactManifest"]["artifactManifest"].clone()
    }

    async fn saved(&self, app: &TestApp, id: String, deduplicated: bool) -> Saved {
        let version = version(app, &self.key, &id).await;
        assert_eq!(version["state"], "COMMITTED", "{version}");
        Saved {
            version_index: version["versionIndex"].as_i64().expect("a version index"),
            aliases: alias_names(&version),
            id,
            deduplicated,
        }
    }

    /// `{alias, artifactCollectionName, entityName, projectName}` inputs for
    /// `addAliases`/`deleteAliases` in this save's collection.
    pub(crate) fn alias_inputs(&self, aliases: &[&str]) -> Value {
        aliases
            .iter()
            .map(|alias| {
                json!({ "alias": alias, "artifactCollectionName": self.collection,
                        "entityName": self.entity, "projectName": self.project })
            })
            .collect()
    }
}

/// The version `id` as `ArtifactByID` reads it.
pub(crate) async fn version(app: &TestApp, key: &str, id: &str) -> Value {
    let data = app
        .graphql_ok_as(key, document("ArtifactByID"), json!({ "id": id }))
        .await;
    data["artifact"].clone()
}

/// The sorted alias names of an `ArtifactByID` answer, without the version's own `vN`
/// (W&B lists it among the aliases, and its clients set it apart the same way); a
/// numbered version must list exactly its own.
pub(crate) fn alias_names(version: &Value) -> Vec<String> {
    let (versions, mut names): (Vec<String>, Vec<String>) = version["aliases"]
        .as_array()
        .expect("aliases")
        .iter()
        .map(|a| a["alias"].as_str().expect("an alias").to_owned())
        .partition(|a| {
            a.len() >= 2 && a.starts_with('v') && a[1..].bytes().all(|b| b.is_ascii_digit())
        });
    if let Some(index) = version["versionIndex"].as_i64() {
        assert_eq!(
            versions,
            [format!("v{index}")],
            "the version alias is listed once"
        );
    }
    names.sort();
    names
}

/// The committed versions of `save`'s collection, oldest first: (version index, sorted
/// aliases).
pub(crate) async fn versions(app: &TestApp, save: &Save) -> Vec<(i64, Vec<String>)> {
    let data = app
        .graphql_ok_as(
            &save.key,
            "query Versions($entity: String, $project: String, $name: String!) {
               project(name: $project, entityName: $entity) {
                 artifactCollection(name: $name) {
                   artifacts { edges { version node { versionIndex aliases { alias } } } }
                 }
               }
             }",
            json!({ "entity": save.entity, "project": save.project, "name": save.collection }),
        )
        .await;
    data["project"]["artifactCollection"]["artifacts"]["edges"]
        .as_array()
        .expect("version edges")
        .iter()
        .map(|edge| {
            let node = &edge["node"];
            let index = node["versionIndex"].as_i64().expect("a version index");
            assert_eq!(edge["version"], format!("v{index}"));
            (index, alias_names(node))
        })
        .collect()
}

/// The version index `name` (`collection:alias` or `collection:vN`) resolves to in
/// `save`'s project, if any.
pub(crate) async fn resolve(app: &TestApp, save: &Save, name: &str) -> Option<i64> {
    let data = app
        .graphql_ok_as(
            &save.key,
            "query Resolve($entity: String, $project: String, $name: String!) {
               project(name: $project, entityName: $entity) { artifact(name: $name) { versionIndex } }
             }",
            json!({ "entity": save.entity, "project": save.project, "name": name }),
        )
        .await;
    data["project"]["artifact"]["versionIndex"].as_i64()
}

/// W&B's form of a file's MD5: base64.
pub(crate) fn b64_md5(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body))
}

fn rand_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
}
