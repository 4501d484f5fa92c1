//! The writes the 0.31 public API hands to the core, each one HTTP exchange with the
//! session's server, answered when it is done:
//!
//! * `upload_file_request{path, url, headers}` (`run.upload_file()`, after the SDK's own
//!   `createRunFiles`): PUT the file at `path` to the signed `url` with the server's upload
//!   `headers`; no credentials are sent. Answered `UploadFileResponse{}`.
//! * `mark_run_files_uploaded_request{entity, project, run_id, files}` (sent by the SDK only
//!   when the server announces `MARK_RUN_FILES_UPLOADED`): the `markRunFilesUploaded`
//!   mutation, which commits uploaded files on servers that learn of uploads no other way.
//! * `stop_run_request{storage_id}` (`run.stop()`): the `stopRun` mutation; the running
//!   script is interrupted at its next filestream answer.
//! * `create_custom_chart_request{entity, name, display_name, spec_type, access, spec}`
//!   (`Api.create_custom_chart()`): the `createCustomChart` mutation; answered with the
//!   new chart's id.
//!
//! The operation names and shapes are W&B's core's, so a server sees the same requests
//! under either core. Errors (a failed transfer, a GraphQL error, a server that answers
//! `success: false`) name the file, URL or run, and reach the user as the SDK's
//! `CommError`/`WandbApiFailedError`.

use std::path::Path;

use cairn_core::client::{Connection, Until, documents};
use cairn_proto::{
    CreateCustomChartRequest, CreateCustomChartResponse, MarkRunFilesUploadedRequest,
    MarkRunFilesUploadedResponse, StopRunRequest, StopRunResponse, UploadFileRequest,
    UploadFileResponse,
};
use serde_json::{Value, json};

use crate::remote::{is_http_url, shown_url, until};

/// Runs a mutation whose answer is `{field: {success}}`; `what` names its subject in
/// errors. A missing `success` is taken as done (the server said nothing against it).
fn succeed(
    connection: &Connection,
    operation: &str,
    query: &str,
    variables: Value,
    field: &str,
    what: &str,
) -> Result<(), String> {
    let data = connection
        .graphql(operation, query, variables, &until())
        .map_err(|e| format!("{what}: {e}"))?;
    if data[field]["success"].as_bool() == Some(false) {
        return Err(format!(
            "{what}: the server answered {field} without success"
        ));
    }
    Ok(())
}

/// Answers `upload_file_request` (see the module doc).
pub(crate) fn upload_file(
    connection: &Connection,
    request: &UploadFileRequest,
) -> Result<UploadFileResponse, String> {
    let shown = shown_url(&request.url);
    let fail = |why: String| format!("cannot upload {} to {shown}: {why}", request.path);
    if request.path.is_empty() {
        return Err("upload_file_request names no file".to_owned());
    }
    if !is_http_url(&request.url) {
        return Err(fail("not an absolute http(s) URL".to_owned()));
    }
    let path = Path::new(&request.path);
    if !path.is_file() {
        return Err(fail("no such file".to_owned()));
    }
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    headers.sort();
    // The SDK waits as long as a transfer takes; the file-transfer policy bounds the retries.
    connection
        .put_file(&request.url, path, &headers, &Until::forever())
        .map_err(|e| fail(e.to_string()))?;
    Ok(UploadFileResponse {})
}

/// Answers `mark_run_files_uploaded_request` (see the module doc).
pub(crate) fn mark_run_files_uploaded(
    connection: &Connection,
    request: &MarkRunFilesUploadedRequest,
) -> Result<MarkRunFilesUploadedResponse, String> {
    let path = format!("{}/{}/{}", request.entity, request.project, request.run_id);
    succeed(
        connection,
        "MarkRunFilesUploaded",
        documents::MARK_RUN_FILES_UPLOADED,
        json!({
            "entity": request.entity, "project": request.project,
            "run": request.run_id, "files": request.files,
        }),
        "markRunFilesUploaded",
        &format!(
            "cannot mark the files {:?} of run {path} uploaded",
            request.files
        ),
    )?;
    Ok(MarkRunFilesUploadedResponse {})
}

/// Answers `stop_run_request` (see the module doc).
pub(crate) fn stop_run(
    connection: &Connection,
    request: &StopRunRequest,
) -> Result<StopRunResponse, String> {
    if request.storage_id.is_empty() {
        return Err("stop_run_request names no run".to_owned());
    }
    succeed(
        connection,
        "StopRun",
        documents::STOP_RUN,
        json!({ "id": request.storage_id }),
        "stopRun",
        &format!("cannot stop run {}", request.storage_id),
    )?;
    Ok(StopRunResponse {})
}

/// Answers `create_custom_chart_request` (see the module doc).
pub(crate) fn create_custom_chart(
    connection: &Connection,
    request: &CreateCustomChartRequest,
) -> Result<CreateCustomChartResponse, String> {
    let what = format!(
        "cannot create custom chart {}/{}",
        request.entity, request.name
    );
    let data = connection
        .graphql(
            "CreateCustomChart",
            documents::CREATE_CUSTOM_CHART,
            json!({
                "entity": request.entity, "chartName": request.name,
                "displayName": request.display_name, "chartType": request.spec_type,
                "access": request.access, "spec": request.spec,
            }),
            &until(),
        )
        .map_err(|e| format!("{what}: {e}"))?;
    match &data["createCustomChart"]["chart"]["id"] {
        Value::String(id) => Ok(CreateCustomChartResponse {
            chart_id: id.clone(),
        }),
        _ => Err(format!("{what}: the server answered no chart id")),
    }
}
