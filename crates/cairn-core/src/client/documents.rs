//! Every GraphQL document cairn's client side sends to a W&B-compatible server (W&B's own or
//! `cairn server`), one constant per operation, named after the operation.
//!
//! Users: the uploader, the resume check, the artifact transfers and [`server_features`] in
//! this crate; the service's API proxy, run start, history and console reads, exports,
//! writes and sync in `cairn-service`; the Rust SDK's artifacts in `cairn-sdk`. Each caller
//! passes the operation's name with the document ([`Connection::graphql`]); the tests below
//! check that every document defines exactly that one operation and declares every variable
//! it uses. Queries the SDK writes itself (the service's GraphQL proxy) pass through
//! untouched and are not here.
//!
//! The server side — what `cairn server` answers to these — is in `cairn-server`.
//!
//! [`server_features`]: super::Connection::server_features
//! [`Connection::graphql`]: super::Connection::graphql

// Runs: creating, updating and resuming them.

/// Creates or updates a run (its config, details and state) and answers where the server put
/// it; sent by the uploader (first and later upserts) and by the service's run start. Every
/// variable is nullable: each caller sends only what it has.
pub const UPSERT_BUCKET: &str =
    "mutation UpsertBucket($id: String, $name: String, $project: String, \
$entity: String, $groupName: String, $description: String, $displayName: String, $notes: String, \
$commit: String, $config: JSONString, $host: String, $program: String, $repo: String, \
$jobType: String, $state: String, $sweep: String, $tags: [String!], $summaryMetrics: JSONString) {
  upsertBucket(input: {id: $id, name: $name, groupName: $groupName, modelName: $project, \
entityName: $entity, description: $description, displayName: $displayName, notes: $notes, \
config: $config, commit: $commit, host: $host, jobProgram: $program, jobRepo: $repo, \
jobType: $jobType, state: $state, sweep: $sweep, tags: $tags, summaryMetrics: $summaryMetrics}) {
    bucket { id name displayName project { name entity { name } } historyLineCount }
    inserted
  }
}";

/// What the server holds of a run (last history rows, config, summary, line counts; no
/// bucket when it has none); sent by `upload::resume_status` before a resumed run starts and
/// by the uploader to learn where a resumed run's filestream lines continue.
pub const RUN_RESUME_STATUS: &str =
    "query RunResumeStatus($project: String, $entity: String, $name: String!) {
  model(name: $project, entityName: $entity) {
    bucket(name: $name, missingOk: true) { id historyLineCount historyTail config summaryMetrics \
eventsLineCount logLineCount }
  }
}";

/// Asks for signed upload URLs (and headers) for run files; sent by the uploader.
pub const CREATE_RUN_FILES: &str = "mutation CreateRunFiles($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
  createRunFiles(input: {entityName: $entity, projectName: $project, runName: $run, files: $files}) {
    runID uploadHeaders files { name uploadUrl }
  }
}";

/// Marks run files as uploaded; sent by the service for the SDK's
/// `mark_run_files_uploaded_request`.
pub const MARK_RUN_FILES_UPLOADED: &str = "mutation MarkRunFilesUploaded($entity: String!, \
$project: String!, $run: String!, $files: [String!]!) {
  markRunFilesUploaded(input: {entityName: $entity, projectName: $project, runName: $run, \
files: $files}) { success } }";

/// Raises a run's alert (`wandb.alert`); sent by the uploader for an alert record.
pub const NOTIFY_SCRIPTABLE_RUN_ALERT: &str = "mutation NotifyScriptableRunAlert($entityName: String!, $projectName: String!, \
$runName: String!, $title: String!, $text: String!, $severity: AlertSeverity = INFO, $waitDuration: Duration) {
  notifyScriptableRunAlert(input: {entityName: $entityName, projectName: $projectName, runName: $runName, \
title: $title, text: $text, severity: $severity, waitDuration: $waitDuration}) { success }
}";

/// Asks the server to stop a run by its storage id; sent by the service for the SDK's
/// `stop_run_request`.
pub const STOP_RUN: &str = "mutation StopRun($id: ID!) {
  stopRun(input: {id: $id}) { success } }";

// Runs: reading them back.

/// A run's display name; sent by the service's sync to name a run whose log has none.
pub const RUN_DISPLAY_NAME: &str =
    "query RunDisplayName($entity: String, $project: String, $name: String!) {
  project(name: $project, entityName: $entity) { run(name: $name) { displayName } }
}";

/// One page of a run's full history rows by step range; sent by the service for the SDK's
/// `scan_history()` of every key.
pub const HISTORY_PAGE: &str = "query HistoryPage($entity: String!, $project: String!, \
$run: String!, $minStep: Int64!, $maxStep: Int64!, $pageSize: Int!) {
  project(name: $project, entityName: $entity) { run(name: $run) {
    history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize) } } }";

/// One page of a run's history rows holding some keys; sent by the service for the SDK's
/// `scan_history(keys=…)`.
pub const SAMPLED_HISTORY_PAGE: &str = "query SampledHistoryPage($entity: String!, \
$project: String!, $run: String!, $spec: JSONString!) {
  project(name: $project, entityName: $entity) { run(name: $run) {
    sampledHistory(specs: [$spec]) } } }";

/// A page of a run's console lines from a cursor; sent by the service for the SDK's
/// `read_run_console_logs_request` without `last`.
pub const RUN_CONSOLE_LOG_PAGE: &str =
    "query RunConsoleLogPage($entity: String!, $project: String!, \
$runName: String!, $first: Int, $after: String) {
  project(name: $project, entityName: $entity) { run(name: $runName) { logLineCount
    logLines(first: $first, after: $after, useImprovedPagination: true) {
      edges { node { number timestamp level label line } }
      pageInfo { endCursor hasNextPage } } } } }";

/// The last lines of a run's console; sent by the service for the SDK's
/// `read_run_console_logs_request` with `last`.
pub const RUN_CONSOLE_LOG_TAIL: &str =
    "query RunConsoleLogTail($entity: String!, $project: String!, \
$runName: String!, $last: Int) {
  project(name: $project, entityName: $entity) { run(name: $runName) { logLineCount
    logLines(last: $last, useImprovedPagination: true) {
      edges { node { number timestamp level label line } } } } } }";

/// A run's history as parquet export URLs plus its live rows; sent by the service for the
/// SDK's `download_run_history_init`.
pub const RUN_PARQUET_HISTORY: &str = "query RunParquetHistory($entity: String!, \
$project: String!, $runName: String!, $liveKeys: [String!]!) {
  project(name: $project, entityName: $entity) { run(name: $runName) {
    parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } } } }";

// Artifacts.

/// Creates an artifact version (or finds the one with the same digest); sent by the
/// artifact save.
pub const CREATE_ARTIFACT: &str = "mutation CreateArtifact($input: CreateArtifactInput!) {
  createArtifact(input: $input) {
    artifact { id state versionIndex digest artifactSequence { latestArtifact { id } } }
  }
}";

/// Creates a version's manifest, with its upload URL when `$includeUpload`; sent by the
/// artifact save (before the files, then again with the final digest).
pub const CREATE_ARTIFACT_MANIFEST: &str = "mutation CreateArtifactManifest($artifactID: ID!, \
$baseArtifactID: ID, $name: String!, $digest: String!, $entityName: String!, $projectName: String!, \
$runName: String!, $manifestType: ArtifactManifestType!, $includeUpload: Boolean!) {
  createArtifactManifest(input: {artifactID: $artifactID, baseArtifactID: $baseArtifactID, \
name: $name, digest: $digest, entityName: $entityName, projectName: $projectName, \
runName: $runName, type: $manifestType}) {
    artifactManifest { id file { id uploadUrl @include(if: $includeUpload) uploadHeaders @include(if: $includeUpload) } }
  }
}";

/// Asks for upload URLs (multipart ones for large files) of a version's files; sent by the
/// artifact save to servers without `CAIRN_RESUMABLE_MULTIPART`. Same operation as
/// [`CREATE_ARTIFACT_FILES_RESUMABLE`], kept apart because W&B's schema has no `storedHexMD5`.
pub const CREATE_ARTIFACT_FILES: &str =
    "mutation CreateArtifactFiles($input: CreateArtifactFilesInput!) {
  createArtifactFiles(input: $input) {
    files { edges { node { storagePath uploadUrl uploadHeaders
      uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl } } artifact { id } } } }
  }
}";

/// [`CREATE_ARTIFACT_FILES`] asking also which parts the server already stores
/// (`storedHexMD5`, cairn's extension); sent by the artifact save to servers announcing
/// `CAIRN_RESUMABLE_MULTIPART`.
pub const CREATE_ARTIFACT_FILES_RESUMABLE: &str = "mutation CreateArtifactFiles($input: CreateArtifactFilesInput!) {
  createArtifactFiles(input: $input) {
    files { edges { node { storagePath uploadUrl uploadHeaders
      uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl storedHexMD5 } } artifact { id } } } }
  }
}";

/// Completes (or aborts) a multipart upload of one file from its parts' ETags; sent by the
/// artifact save.
pub const COMPLETE_MULTIPART_UPLOAD_ARTIFACT: &str = "mutation CompleteMultipartUploadArtifact(\
$completeMultipartAction: CompleteMultipartAction!, $completedParts: [UploadPartsInput!]!, \
$artifactID: ID!, $storagePath: String!, $uploadID: String!) {
  completeMultipartUploadArtifact(input: {completeMultipartAction: $completeMultipartAction, \
completedParts: $completedParts, artifactID: $artifactID, storagePath: $storagePath, uploadID: $uploadID}) { digest }
}";

/// Commits a version once its files and manifest are uploaded; sent by the artifact save.
pub const COMMIT_ARTIFACT: &str = "mutation CommitArtifact($artifactID: ID!) {
  commitArtifact(input: {artifactID: $artifactID}) { artifact { id digest versionIndex } }
}";

/// The committed version `name:alias` names in a project; sent by `artifact::resolve` (the
/// SDKs' `use_artifact`).
pub const ARTIFACT_MEMBERSHIP_BY_NAME: &str = "query ArtifactMembershipByName($entity: String!, \
$project: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    artifactCollectionMembership(name: $name) {
      versionIndex
      artifactCollection { name project { name entity { name } } }
      artifact { id digest state size fileCount artifactType { name } }
    }
  }
}";

/// Records that a run used a version (lineage); sent by `artifact::record_use`.
pub const USE_ARTIFACT: &str = "mutation UseArtifact($input: UseArtifactInput!) {
  useArtifact(input: $input) { artifact { id } }
}";

/// The signed URL of a version's manifest; sent by the artifact download.
pub const FETCH_ARTIFACT_MANIFEST: &str = "query FetchArtifactManifest($id: ID!) {
  artifact(id: $id) { currentManifest { file { directUrl } } }
}";

/// A page of a version's files with their signed URLs; sent by the artifact download.
pub const GET_ARTIFACT_MEMBERSHIP_FILE_URLS: &str =
    "query GetArtifactMembershipFileUrls($entity: String!, $project: String!, \
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

/// Creates a custom chart preset; sent by the service for the SDK's
/// `create_custom_chart_request`.
pub const CREATE_CUSTOM_CHART: &str = "mutation CreateCustomChart($entity: String!, \
$chartName: String!, $displayName: String!, $chartType: String!, $access: String!, \
$spec: JSONString!) {
  createCustomChart(input: {entity: $entity, name: $chartName, displayName: $displayName, \
type: $chartType, access: $access, spec: $spec}) { chart { id } } }";

// The account and the server.

/// Who the API key belongs to (id, default entity, user name, email); sent by the service's
/// API authentication and by the Rust SDK for its default entity.
pub const VIEWER: &str = "query Viewer { viewer { id entity username email } }";

/// Which features the server has enabled; sent by [`server_features`] (the uploader asks
/// after its first upsert).
///
/// [`server_features`]: super::Connection::server_features
pub const SERVER_FEATURES_QUERY: &str = "query ServerFeaturesQuery {
  serverInfo { features { name isEnabled } }
}";

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;
    use crate::client::operation_name;

    /// Every document with the operation name its callers pass to `Connection::graphql`.
    const ALL: &[(&str, &str)] = &[
        ("UpsertBucket", UPSERT_BUCKET),
        ("RunResumeStatus", RUN_RESUME_STATUS),
        ("CreateRunFiles", CREATE_RUN_FILES),
        ("MarkRunFilesUploaded", MARK_RUN_FILES_UPLOADED),
        ("NotifyScriptableRunAlert", NOTIFY_SCRIPTABLE_RUN_ALERT),
        ("StopRun", STOP_RUN),
        ("RunDisplayName", RUN_DISPLAY_NAME),
        ("HistoryPage", HISTORY_PAGE),
        ("SampledHistoryPage", SAMPLED_HISTORY_PAGE),
        ("RunConsoleLogPage", RUN_CONSOLE_LOG_PAGE),
        ("RunConsoleLogTail", RUN_CONSOLE_LOG_TAIL),
        ("RunParquetHistory", RUN_PARQUET_HISTORY),
        ("CreateArtifact", CREATE_ARTIFACT),
        ("CreateArtifactManifest", CREATE_ARTIFACT_MANIFEST),
        ("CreateArtifactFiles", CREATE_ARTIFACT_FILES),
        ("CreateArtifactFiles", CREATE_ARTIFACT_FILES_RESUMABLE),
        (
            "CompleteMultipartUploadArtifact",
            COMPLETE_MULTIPART_UPLOAD_ARTIFACT,
        ),
        ("CommitArtifact", COMMIT_ARTIFACT),
        ("ArtifactMembershipByName", ARTIFACT_MEMBERSHIP_BY_NAME),
        ("UseArtifact", USE_ARTIFACT),
        ("FetchArtifactManifest", FETCH_ARTIFACT_MANIFEST),
        (
            "GetArtifactMembershipFileUrls",
            GET_ARTIFACT_MEMBERSHIP_FILE_URLS,
        ),
        ("CreateCustomChart", CREATE_CUSTOM_CHART),
        ("Viewer", VIEWER),
        ("ServerFeaturesQuery", SERVER_FEATURES_QUERY),
    ];

    /// Operations more than one document defines, each documented on its constants.
    const SHARED: &[&str] = &["CreateArtifactFiles"];

    /// Where the first top-level `{…}` of `document` closes (past its `}`), `None` when the
    /// brackets do not balance. The documents hold no strings or comments.
    fn first_block_end(document: &str) -> Option<usize> {
        let mut depth = 0usize;
        let mut opened = false;
        for (at, b) in document.bytes().enumerate() {
            match b {
                b'{' | b'(' | b'[' => {
                    opened |= b == b'{' && depth == 0;
                    depth += 1;
                }
                b'}' | b')' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 && b == b'}' && opened {
                        return Some(at + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The variables `document` uses (`$x` not followed by `:`) and those it declares
    /// (`$x:`).
    fn variables(document: &str) -> (BTreeSet<&str>, BTreeSet<&str>) {
        let (mut used, mut declared) = (BTreeSet::new(), BTreeSet::new());
        let is_name = |b: u8| b == b'_' || b.is_ascii_alphanumeric();
        let bytes = document.as_bytes();
        for (at, _) in document.match_indices('$') {
            let start = at + 1;
            let end = start + bytes[start..].iter().take_while(|b| is_name(**b)).count();
            let name = &document[start..end];
            assert!(!name.is_empty(), "a bare `$` at {at} in {document}");
            if document[end..].trim_start().starts_with(':') {
                declared.insert(name);
            } else {
                used.insert(name);
            }
        }
        (used, declared)
    }

    #[test]
    fn every_document_is_one_operation_named_as_its_callers_say() {
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (name, document) in ALL {
            let trimmed = document.trim_start();
            assert!(
                trimmed.starts_with("query ") || trimmed.starts_with("mutation "),
                "{name}: not a query or mutation: {document}"
            );
            assert_eq!(operation_name(document), Some(*name), "{document}");
            let end = first_block_end(document)
                .unwrap_or_else(|| panic!("{name}: unbalanced brackets: {document}"));
            assert_eq!(
                document[end..].trim(),
                "",
                "{name}: more than one definition"
            );
            *names.entry(name).or_default() += 1;
        }
        for (name, count) in names {
            assert!(
                count == 1 || SHARED.contains(&name),
                "{count} documents define {name}: document why or merge them"
            );
        }
    }

    #[test]
    fn every_variable_used_is_declared_and_every_declared_one_used() {
        for (name, document) in ALL {
            let (used, declared) = variables(document);
            assert_eq!(used, declared, "{name}: used vs declared variables");
        }
    }

    #[test]
    fn the_scans_see_what_they_should() {
        assert_eq!(first_block_end("query A { b { c } } "), Some(19));
        assert_eq!(first_block_end("query A($x: [Int]) { b(x: $x) }"), Some(31));
        assert_eq!(first_block_end("query A { b"), None);
        let (used, declared) = variables("query A($x: Int, $y: [Int!]) { b(x: $x) @c(if: $z) }");
        assert_eq!(used, BTreeSet::from(["x", "z"]));
        assert_eq!(declared, BTreeSet::from(["x", "y"]));
    }
}
