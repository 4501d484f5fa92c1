//! The `ServerResponse`s the run roles send, and the handler's answers as the SDK's items.
//!
//! Pure constructors: no IO, no run state. Every answer to a record or request is
//! `Result{…}` under the request's id; a `run_result` carries the run or an error whose
//! code the SDK maps to its exception types.

use cairn_proto::response::ResponseType;
use cairn_proto::result::ResultType;
use cairn_proto::server_response::ServerResponseType;
use cairn_proto::{
    ErrorInfo, LogArtifactResponse, Response, RunRecord, RunUpdateResult, SampledHistoryItem,
    ServerResponse, SummaryItem,
};

use cairn_core::value::Value;

/// An answer to a record or request: `Result{…}` under the request's id.
pub(super) fn result(request_id: &str, result_type: ResultType) -> ServerResponse {
    ServerResponse {
        request_id: request_id.to_owned(),
        server_response_type: Some(ServerResponseType::ResultCommunicate(cairn_proto::Result {
            result_type: Some(result_type),
            ..Default::default()
        })),
    }
}

/// A request's answer: `Result{Response{response_type}}` (none: an empty acknowledgement).
pub(super) fn response(request_id: &str, response_type: Option<ResponseType>) -> ServerResponse {
    result(request_id, ResultType::Response(Response { response_type }))
}

/// The `run_result` of a started (or updated) run.
pub(super) fn run_result(request_id: &str, run: RunRecord) -> ServerResponse {
    result(
        request_id,
        ResultType::RunResult(RunUpdateResult {
            run: Some(run),
            error: None,
        }),
    )
}

/// A `run_result` error of code 0 (the SDK's `Error`).
pub(super) fn run_error(request_id: &str, record: &RunRecord, message: &str) -> ServerResponse {
    run_error_code(request_id, record, message, 0)
}

/// A `run_result` error: code 0 is the SDK's `Error`, 1 `CommError`, 2 authentication,
/// 3 usage.
pub(super) fn run_error_code(
    request_id: &str,
    record: &RunRecord,
    message: &str,
    code: i32,
) -> ServerResponse {
    result(
        request_id,
        ResultType::RunResult(RunUpdateResult {
            run: Some(record.clone()),
            error: Some(ErrorInfo {
                message: message.to_owned(),
                code,
            }),
        }),
    )
}

/// The answer to `log_artifact`: the saved artifact's id, or why it was not saved.
pub(super) fn log_artifact_answer(
    request_id: &str,
    artifact_id: String,
    error_message: String,
) -> ServerResponse {
    response(
        request_id,
        Some(ResponseType::LogArtifactResponse(LogArtifactResponse {
            artifact_id,
            error_message,
        })),
    )
}

/// The handler's summary (`Query::Summary`) as the SDK's items.
pub(super) fn summary_items(items: Vec<(Vec<String>, Value)>) -> Vec<SummaryItem> {
    items
        .into_iter()
        .map(|(path, value)| cairn_core::handler::summary_item(path, value.to_json()))
        .collect()
}

/// The handler's samples (`Query::SampledHistory`) as the SDK's items.
pub(super) fn sample_items(samples: Vec<(String, Vec<f32>)>) -> Vec<SampledHistoryItem> {
    samples
        .into_iter()
        .map(|(key, values_float)| SampledHistoryItem {
            key,
            values_float,
            ..Default::default()
        })
        .collect()
}
