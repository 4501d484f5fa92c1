//! The artifact rules, through the SDK's own mutations: how versions are numbered, when a
//! save makes no new version, where aliases point, and what deletion may do.

use axum::http::{Method, StatusCode};
use md5::Digest as _;
use serde_json::{Value, json};

use crate::support::artifacts::{Save, b64_md5, resolve, version, versions};
use crate::support::sdk::document;
use crate::support::{ADMIN_KEY, TestApp};

/// Versions are numbered v0, v1, … in commit order, and `latest` moves to the newest.
#[tokio::test]
async fn versions_are_numbered_and_latest_moves() {
    let app = TestApp::new().await;
    let first = Save::new("ds").file("a.txt", b"one").save(&app).await;
    assert_eq!((first.version_index, first.deduplicated), (0, false));
    assert_eq!(first.aliases, ["latest"]);

    let second = Save::new("ds").file("a.txt", b"two").save(&app).await;
    assert_eq!((second.version_index, second.deduplicated), (1, false));
    assert_ne!(first.id, second.id);
    let save = Save::new("ds");
    assert_eq!(
        versions(&app, &save).await,
        [(0, vec![]), (1, vec!["latest".to_owned()])]
    );
    assert_eq!(resolve(&app, &save, "ds:latest").await, Some(1));
    assert_eq!(resolve(&app, &save, "ds").await, Some(1));
    assert_eq!(resolve(&app, &save, "ds:v0").await, Some(0));
    assert_eq!(resolve(&app, &save, "ds:v2").await, None);

    // Another collection numbers from v0.
    let other = Save::new("other").file("a.txt", b"one").save(&app).await;
    assert_eq!(other.version_index, 0);
}

/// Saving the content of the latest version again answers that version: no new version,
/// no upload, and the requested aliases move onto it.
#[tokio::test]
async fn same_content_is_the_same_version() {
    let app = TestApp::new().await;
    let save = Save::new("ds").file("a.txt", b"one").file("b.txt", b"bee");
    let first = save.save(&app).await;
    let again = save.clone().alias("best").save(&app).await;
    assert!(again.deduplicated);
    assert_eq!(again.id, first.id);
    assert_eq!(again.version_index, 0);
    assert_eq!(again.aliases, ["best", "latest"]);
    assert_eq!(versions(&app, &save).await.len(), 1);

    // Committed versions take no more files.
    let message = app
        .graphql_error(
            document("CreateArtifactFiles"),
            save.files_input(&first.id, ""),
        )
        .await;
    assert!(message.contains("COMMITTED"), "{message}");

    // Bytes the entity stores already are not uploaded again: a new version naming them
    // gets no upload URL, and learns which version first stored them.
    let next = Save::new("ds").file("a.txt", b"one").file("c.txt", b"sea");
    let pending = next.create(&app).await;
    assert_eq!(pending["state"], "PENDING", "{pending}");
    let id = pending["id"].as_str().unwrap();
    let answer = app
        .graphql_ok(document("CreateArtifactFiles"), next.files_input(id, ""))
        .await;
    let edges = &answer["createArtifactFiles"]["files"]["edges"];
    assert!(edges[0]["node"]["uploadUrl"].is_null(), "{answer}");
    assert_eq!(edges[0]["node"]["artifact"]["id"], first.id.as_str());
    assert!(edges[1]["node"]["uploadUrl"].is_string(), "{answer}");
    assert_eq!(edges[1]["node"]["artifact"]["id"], id);
}

/// An alias names one version of a collection at a time: putting it on another version
/// takes it off the first.
#[tokio::test]
async fn an_alias_is_on_one_version_at_a_time() {
    let app = TestApp::new().await;
    let v0 = Save::new("ds")
        .file("a.txt", b"one")
        .alias("best")
        .save(&app)
        .await;
    assert_eq!(v0.aliases, ["best", "latest"]);
    let v1 = Save::new("ds")
        .file("a.txt", b"two")
        .alias("best")
        .save(&app)
        .await;
    assert_eq!(v1.aliases, ["best", "latest"]);
    let save = Save::new("ds");
    assert_eq!(versions(&app, &save).await[0], (0, vec![]));

    // `addAliases` moves it back.
    app.graphql_ok(
        document("AddAliases"),
        json!({ "input": { "artifactID": v0.id, "aliases": save.alias_inputs(&["best", "prod"]) } }),
    )
    .await;
    assert_eq!(
        versions(&app, &save).await,
        [
            (0, vec!["best".to_owned(), "prod".to_owned()]),
            (1, vec!["latest".to_owned()])
        ]
    );
    assert_eq!(resolve(&app, &save, "ds:best").await, Some(0));

    // `deleteAliases` takes it off; an alias on another version stays.
    app.graphql_ok(
        document("DeleteAliases"),
        json!({ "input": { "artifactID": v1.id, "aliases": save.alias_inputs(&["prod"]) } }),
    )
    .await;
    assert_eq!(resolve(&app, &save, "ds:prod").await, Some(0));
    app.graphql_ok(
        document("DeleteAliases"),
        json!({ "input": { "artifactID": v0.id, "aliases": save.alias_inputs(&["prod"]) } }),
    )
    .await;
    assert_eq!(resolve(&app, &save, "ds:prod").await, None);

    // Version-shaped aliases and aliases of another collection are refused.
    for (alias, collection) in [("v7", "ds"), ("a:b", "ds"), ("gold", "elsewhere")] {
        let answer = app
            .graphql(
                document("AddAliases"),
                json!({ "input": { "artifactID": v0.id, "aliases": [{
                    "alias": alias, "artifactCollectionName": collection,
                    "entityName": "admin", "projectName": "proj" }] } }),
            )
            .await;
        assert!(
            answer.get("errors").is_some(),
            "{alias} in {collection}: {answer}"
        );
    }
}

/// `latest` moves by itself only: removing it by hand is refused.
#[tokio::test]
async fn latest_cannot_be_removed_by_hand() {
    let app = TestApp::new().await;
    let v0 = Save::new("ds").file("a.txt", b"one").save(&app).await;
    let save = Save::new("ds");
    let message = app
        .graphql_error(
            document("DeleteAliases"),
            json!({ "input": { "artifactID": v0.id, "aliases": save.alias_inputs(&["latest"]) } }),
        )
        .await;
    assert!(message.contains("latest"), "{message}");
    assert_eq!(
        version(&app, ADMIN_KEY, &v0.id).await["aliases"][0]["alias"],
        "latest"
    );
}

/// A version with aliases is deleted only with `deleteAliases`; `latest` then falls back
/// to the newest version left, and a deleted version's number is never given again.
#[tokio::test]
async fn deletion_keeps_latest_and_numbers() {
    let app = TestApp::new().await;
    let v0 = Save::new("ds").file("a.txt", b"zero").save(&app).await;
    let _v1 = Save::new("ds").file("a.txt", b"one").save(&app).await;
    let v2 = Save::new("ds").file("a.txt", b"two").save(&app).await;
    let save = Save::new("ds");
    let delete = |id: &str, delete_aliases: bool| json!({ "input": { "artifactID": id, "deleteAliases": delete_aliases } });

    // v2 holds `latest`: refused without deleteAliases, and nothing changes.
    let message = app
        .graphql_error(document("DeleteArtifact"), delete(&v2.id, false))
        .await;
    assert!(message.contains("alias"), "{message}");
    assert_eq!(versions(&app, &save).await.len(), 3);

    app.graphql_ok(document("DeleteArtifact"), delete(&v2.id, true))
        .await;
    assert_eq!(
        versions(&app, &save).await,
        [(0, vec![]), (1, vec!["latest".to_owned()])]
    );
    assert_eq!(resolve(&app, &save, "ds:v2").await, None);

    // A version without aliases goes without deleteAliases.
    app.graphql_ok(document("DeleteArtifact"), delete(&v0.id, false))
        .await;
    assert_eq!(
        versions(&app, &save).await,
        [(1, vec!["latest".to_owned()])]
    );

    // v2's content again is a new version (latest is v1), numbered after the deleted v2.
    let again = Save::new("ds").file("a.txt", b"two").save(&app).await;
    assert!(!again.deduplicated);
    assert_eq!(again.version_index, 3);
    assert_eq!(resolve(&app, &save, "ds:latest").await, Some(3));
}

/// A file uploaded in parts: the parts go to their own URLs, an upload cut off and
/// announced again resumes (the stored parts are named, with their MD5), and completing
/// joins them into the file's content, which the commit then finds stored.
#[tokio::test]
async fn multipart_uploads_resume_and_join() {
    let app = TestApp::new().await;
    let (one, two) = (b"first part, ".as_slice(), b"second part".as_slice());
    let whole = [one, two].concat();
    let save = Save::new("big").file("big.bin", &whole);
    let id = save.create(&app).await["id"].as_str().unwrap().to_owned();
    let hex = |body: &[u8]| hex::encode(md5::Md5::digest(body));
    let announce = json!({ "input": { "storageLayout": "V2", "artifactFiles": [{
        "artifactID": id, "name": "big.bin", "md5": b64_md5(&whole),
        "uploadPartsInput": [
            { "partNumber": 1, "hexMD5": hex(one) },
            { "partNumber": 2, "hexMD5": hex(two) },
        ] }] } });
    let query = "mutation Files($input: CreateArtifactFilesInput!) {
        createArtifactFiles(input: $input) { files { edges { node {
          storagePath uploadUrl
          uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl storedHexMD5 } }
        } } } } }";
    let files = app.graphql_ok(query, announce.clone()).await;
    let node = &files["createArtifactFiles"]["files"]["edges"][0]["node"];
    let upload_id = node["uploadMultipartUrls"]["uploadID"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts = node["uploadMultipartUrls"]["uploadUrlParts"].clone();
    assert_eq!(parts[0]["storedHexMD5"], Value::Null);
    app.upload(parts[0]["uploadUrl"].as_str().unwrap(), one.to_vec())
        .await;

    // Cut off; announced again: the same upload, part 1 already stored.
    let again = app.graphql_ok(query, announce).await;
    let node = &again["createArtifactFiles"]["files"]["edges"][0]["node"];
    assert_eq!(node["uploadMultipartUrls"]["uploadID"], upload_id.as_str());
    let parts = node["uploadMultipartUrls"]["uploadUrlParts"].clone();
    assert_eq!(parts[0]["storedHexMD5"], hex(one).as_str());
    assert_eq!(parts[1]["storedHexMD5"], Value::Null);

    // Completing before every part is there is refused.
    let complete = |parts: Value| {
        json!({ "completeMultipartAction": "Complete", "completedParts": parts,
                "artifactID": id, "storagePath": node["storagePath"], "uploadID": upload_id })
    };
    let both =
        json!([{ "partNumber": 1, "hexMD5": hex(one) }, { "partNumber": 2, "hexMD5": hex(two) }]);
    let message = app
        .graphql_error(
            document("CompleteMultipartUploadArtifact"),
            complete(both.clone()),
        )
        .await;
    assert!(message.contains("never uploaded"), "{message}");

    app.upload(parts[1]["uploadUrl"].as_str().unwrap(), two.to_vec())
        .await;
    let message = app
        .graphql_error(
            document("CompleteMultipartUploadArtifact"),
            complete(json!([{ "partNumber": 1, "hexMD5": hex(one) }])),
        )
        .await;
    assert!(message.contains("parts 1..=2"), "{message}");
    let data = app
        .graphql_ok(
            document("CompleteMultipartUploadArtifact"),
            complete(both.clone()),
        )
        .await;
    assert_eq!(
        data["completeMultipartUploadArtifact"]["digest"],
        b64_md5(&whole).as_str()
    );
    // The upload is over.
    let message = app
        .graphql_error(document("CompleteMultipartUploadArtifact"), complete(both))
        .await;
    assert!(message.contains("not found"), "{message}");

    let saved = save.commit(&app, id).await;
    assert_eq!(saved.version_index, 0);
}

/// A body PUT to an artifact file's URL must have the MD5 the file was announced with; a
/// commit checks the manifest against what was uploaded and leaves the version PENDING
/// when a file is missing.
#[tokio::test]
async fn uploads_must_match_their_announced_md5() {
    let app = TestApp::new().await;
    let save = Save::new("ds").file("a.txt", b"one");
    let id = save.create(&app).await["id"].as_str().unwrap().to_owned();
    let files = app
        .graphql_ok(document("CreateArtifactFiles"), save.files_input(&id, ""))
        .await;
    let url = files["createArtifactFiles"]["files"]["edges"][0]["node"]["uploadUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = app.request_url(Method::PUT, &url, b"two".to_vec()).await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    // Nothing was kept: a commit finds the file missing.
    let manifest = save.create_manifest(&app, &id, "", true).await;
    let manifest_url = manifest["file"]["uploadUrl"].as_str().unwrap();
    let body = json!({ "version": 1, "contents": {
        "a.txt": { "digest": b64_md5(b"one"), "size": 3 } } });
    app.upload(manifest_url, serde_json::to_vec(&body).unwrap())
        .await;
    let message = app
        .graphql_error(document("CommitArtifact"), json!({ "artifactID": id }))
        .await;
    assert!(message.contains("never uploaded"), "{message}");
    assert_eq!(version(&app, ADMIN_KEY, &id).await["state"], "PENDING");

    app.upload(&url, b"one".to_vec()).await;
    assert_eq!(save.commit(&app, id).await.version_index, 0);
}
