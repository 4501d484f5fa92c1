//! What clients older than 0.31 read and send that 0.31 does not: the shapes of W&B's
//! schema they rely on (`latestLocalVersionInfo` as an object, `serverSettings`,
//! `cliVersionInfo.max_cli_version`, a version's `vN` among its aliases) and
//! `createArtifact` naming its collection in `artifactCollectionNames` only.

use serde_json::json;

use crate::support::TestApp;

/// `wandb` 0.17–0.28 ask for the server's version info on every media upload.
#[tokio::test]
async fn server_info_has_wandbs_shapes() {
    let app = TestApp::new().await;
    let data = app
        .graphql_ok(
            "query ServerInfo { serverInfo { cliVersionInfo
               latestLocalVersionInfo { outOfDate latestVersionString versionOnThisInstanceString } } }",
            json!({}),
        )
        .await;
    let info = &data["serverInfo"];
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        info["latestLocalVersionInfo"],
        json!({ "outOfDate": false, "latestVersionString": version,
                "versionOnThisInstanceString": version })
    );
    assert!(info["cliVersionInfo"]["max_cli_version"].is_string());
}

/// The legacy Python sender asks `upsertBucket` for the server's messages.
#[tokio::test]
async fn upsert_bucket_answers_server_settings() {
    let app = TestApp::new().await;
    let data = app
        .graphql_ok(
            "mutation UpsertBucket($name: String, $project: String) {
               upsertBucket(input: { name: $name, modelName: $project }) {
                 bucket { name }
                 serverSettings { serverMessages { utfText plainText htmlText messageType messageLevel } }
               }
             }",
            json!({ "name": "r1", "project": "p" }),
        )
        .await;
    assert_eq!(data["upsertBucket"]["bucket"]["name"], "r1");
    assert_eq!(
        data["upsertBucket"]["serverSettings"],
        json!({ "serverMessages": [] })
    );
}

/// 0.17's Python sender names the collection in `artifactCollectionNames` only, and its
/// digest algorithm as an enum.
#[tokio::test]
async fn create_artifact_with_collection_names_only() {
    let app = TestApp::new().await;
    let data = app
        .graphql_ok(
            "mutation CreateArtifact($names: [String!], $algorithm: ArtifactDigestAlgorithm) {
               createArtifact(input: { artifactTypeName: \"dataset\", artifactCollectionNames: $names,
                                       projectName: \"p\", digest: \"abc\", digestAlgorithm: $algorithm }) {
                 artifact { artifactSequence { name } digestAlgorithm state }
               }
             }",
            json!({ "names": ["ds", "other"], "algorithm": "MANIFEST_MD5" }),
        )
        .await;
    let artifact = &data["createArtifact"]["artifact"];
    assert_eq!(artifact["artifactSequence"]["name"], "ds");
    assert_eq!(artifact["digestAlgorithm"], "MANIFEST_MD5");
    assert_eq!(artifact["state"], "PENDING");
}
