//! Every GraphQL document W&B's SDK 0.31 was seen sending (captured from the real client,
//! `testdata/wandb-0.31/graphql/documents.jsonl`) must validate against cairn's schema.

use std::collections::BTreeSet;

use async_graphql::{Request, Variables};

/// Operations of the run flows and the read path built so far; each of their
/// documents must validate.
const SUPPORTED: &[&str] = &[
    "Viewer",
    "ServerFeaturesQuery",
    "UpsertBucket",
    "RunResumeStatus",
    "CreateRunFiles",
    "OrganizationCoreWeaveOrganizationID",
    "NotifyScriptableRunAlert",
    "DeleteRun",
    "GetDefaultEntity",
    "GetViewer",
    "GetProjects",
    "GetProject",
    "Runs",
    "Run",
    "RunHistoryKeys",
    "RunFullHistory",
    "RunSampledHistory",
    "RunParquetHistory",
    "HistoryPage",
    "SampledHistoryPage",
    "RunFiles",
    "RunConsoleLogPage",
    "RunConsoleLogTail",
    "ArtifactType",
    "CreateArtifact",
    "CreateArtifactManifest",
    "CreateArtifactFiles",
    "CompleteMultipartUploadArtifact",
    "CommitArtifact",
    "ArtifactByID",
    "ArtifactMembershipByName",
    "UseArtifact",
    "FetchArtifactManifest",
    "GetArtifactMembershipFileUrls",
    "ArtifactMembershipFiles",
    "ArtifactCreatedBy",
    "ArtifactUsedBy",
    "ArtifactCollectionAliases",
    "ArtifactTypeArtifactCollections",
    "ProjectArtifactCollection",
    "ProjectArtifactCollections",
    "ProjectArtifactType",
    "ProjectArtifactTypes",
    "ProjectArtifacts",
    "RunInputArtifacts",
    "RunOutputArtifacts",
    "UpdateArtifact",
    "AddAliases",
    "DeleteAliases",
    "DeleteArtifact",
];

#[tokio::test]
async fn captured_documents_validate() {
    let corpus = include_str!("../../../../testdata/wandb-0.31/graphql/documents.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let config = crate::ServerConfig {
        data_dir: dir.path().to_owned(),
        database: None,
        storage: Some("memory://".to_owned()),
        public_url: None,
        admin_key: None,
    };
    let app = crate::open(&config).await.unwrap().app;
    let viewer = {
        let mut conn = app.db.conn().await.unwrap();
        crate::db::accounts::user_by_name(&mut conn, "admin")
            .await
            .unwrap()
            .unwrap()
    };
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for line in corpus.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let op = doc["operationName"].as_str().unwrap();
        if !SUPPORTED.contains(&op) {
            continue;
        }
        seen.insert(op.to_owned());
        let query = doc["query"].as_str().unwrap();
        let variables = Variables::from_json(doc["variables"].clone());
        let request = Request::new(query)
            .variables(variables)
            .operation_name(op)
            .data(super::Session {
                app: app.clone(),
                viewer: viewer.clone(),
                base_url: "http://test".to_owned(),
            });
        // Resolvers may fail on this empty database (no such run): those errors carry a
        // path. Parse and validation errors (unknown field or type, variable mismatch)
        // carry none, and are schema gaps.
        let response = app.schema.execute(request).await;
        for err in response.errors {
            if err.path.is_empty() {
                failures.push(format!("{op}: {}", err.message));
            }
        }
    }
    assert_eq!(
        seen.len(),
        SUPPORTED.len(),
        "every supported operation has a captured document"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The schema's SDL, checked in for `tools/graphql_check.py` (which validates every
/// document of released `wandb` clients against it, with no server running).
#[test]
fn checked_in_sdl_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/graphql-corpus/cairn-schema.graphql"
    );
    let sdl = super::schema().sdl();
    if std::env::var_os("CAIRN_UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(path, &sdl).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        stored == sdl,
        "{path} is not the schema's SDL: rerun with CAIRN_UPDATE_SCHEMA=1 to rewrite it"
    );
}
