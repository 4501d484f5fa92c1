//! The requests inside `record_publish`/`record_communicate`: each answered from the run's
//! state, never written to the log. One function per request kind.
//!
//! Most are answered at once on the connection's thread: from the handler's state
//! (`history_step`, `get_summary`, `sampled_history`, `get_system_metrics`, each waiting
//! at most `run::QUERY_WAIT`), from the finished state (`poll_exit`, and the summary and
//! samples after `exit`), or from the pipeline and upload (`stop_status`, `operations`).
//! `partial_history` (`run.log`), `python_packages` and `probe_system_info` feed the
//! pipeline and are acknowledged empty. Two answer later, on their own: `log_artifact` once
//! the uploader has saved the artifact (a `cairn-artifact-wait` thread waits for it), and
//! the `internal_messages` poll once there is a warning or the run is over. Unknown kinds
//! get an empty answer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use cairn_core::artifact::ArtifactOutcome;
use cairn_core::client::operations::Operations;
use cairn_core::input::{Input, Query};
use cairn_proto::record::RecordType;
use cairn_proto::request::RequestType;
use cairn_proto::response::ResponseType;
use cairn_proto::{
    AttachRequest, AttachResponse, ErrorInfo, GetSummaryResponse, GetSystemMetricsResponse,
    HistoryStepResponse, InternalMessages, InternalMessagesResponse, LogArtifactRequest,
    NetworkStatusResponse, Operation, OperationStats, OperationStatsResponse, PollExitResponse,
    Record, RunExitResult, SampledHistoryResponse, StopStatusResponse, SystemMetricSample,
    SystemMetricsBuffer,
};

use super::answers::{log_artifact_answer, response, sample_items, summary_items};
use super::run::{Phase, Run, ask, feed, finished, lock};
use super::{files, records};
use crate::responder::Responder;

/// A request inside `record_publish`: answered, never persisted.
pub(super) fn request<S>(
    run: &Arc<Mutex<Run>>,
    request_id: &str,
    request: Option<RequestType>,
    reply: &Arc<Responder<S>>,
) where
    S: std::io::Write + Send + 'static,
{
    let answer = match request {
        Some(RequestType::PartialHistory(history)) => {
            feed(run, Input::Log(records::log_call(&history)));
            None
        }
        Some(RequestType::Attach(attach)) => Some(attach_response(run, &attach)),
        Some(RequestType::HistoryStep(_)) => Some(history_step(run)),
        Some(RequestType::GetSummary(_)) => Some(summary(run)),
        Some(RequestType::SampledHistory(_)) => Some(sampled_history(run)),
        Some(RequestType::GetSystemMetrics(_)) => Some(system_metrics(run)),
        Some(RequestType::PollExit(_)) => Some(poll_exit(run)),
        Some(RequestType::LogArtifact(log)) => return log_artifact(run, request_id, log, reply),
        Some(RequestType::PythonPackages(packages)) => {
            files::write_requirements(run, &packages);
            None
        }
        Some(RequestType::ProbeSystemInfo(_)) => {
            let settings = lock(run).settings.clone();
            files::probe_environment(run, &settings);
            None
        }
        Some(RequestType::StopStatus(_)) => Some(stop_status(run)),
        Some(RequestType::NetworkStatus(_)) => Some(ResponseType::NetworkStatusResponse(
            NetworkStatusResponse::default(),
        )),
        Some(RequestType::Operations(_)) => {
            let operations = lock(run).operations.clone();
            Some(ResponseType::OperationsResponse(operations_response(
                &operations,
            )))
        }
        Some(RequestType::InternalMessages(_)) => {
            return internal_messages(run, request_id, reply);
        }
        _ => None,
    };
    if !request_id.is_empty() {
        reply.send(&response(request_id, answer));
    }
}

/// `attach`: the run as its `run_result` answered it, or an error while it has not
/// started.
fn attach_response(run: &Mutex<Run>, attach: &AttachRequest) -> ResponseType {
    let answered = lock(run).answered.clone();
    ResponseType::AttachResponse(match answered {
        Some(run) => AttachResponse {
            run: Some(*run),
            error: None,
        },
        None => AttachResponse {
            run: None,
            error: Some(ErrorInfo {
                message: format!("run {:?} has not started", attach.attach_id),
                code: 3,
            }),
        },
    })
}

/// `history_step`: the step the next `run.log` gets (0 when the handler cannot say).
fn history_step(run: &Mutex<Run>) -> ResponseType {
    ResponseType::HistoryStepResponse(HistoryStepResponse {
        step: ask(run, Query::HistoryStep).unwrap_or(0),
    })
}

/// `get_summary`: the final summary once finished, else the handler's.
fn summary(run: &Mutex<Run>) -> ResponseType {
    let item = match finished(run, |f| f.summary.clone()) {
        Some(items) => items,
        None => ask(run, Query::Summary)
            .map(summary_items)
            .unwrap_or_default(),
    };
    ResponseType::GetSummaryResponse(GetSummaryResponse { item })
}

/// `sampled_history`: the samples kept at the finish, else the handler's.
fn sampled_history(run: &Mutex<Run>) -> ResponseType {
    let item = finished(run, |f| f.samples.clone())
        .or_else(|| ask(run, Query::SampledHistory).map(sample_items))
        .unwrap_or_default();
    ResponseType::SampledHistoryResponse(SampledHistoryResponse { item })
}

/// `get_system_metrics`: the samples kept under `x_stats_buffer_size` (none by default, as
/// with W&B's core); a run no longer running has none to give.
fn system_metrics(run: &Mutex<Run>) -> ResponseType {
    let system_metrics = ask(run, Query::SystemMetrics)
        .unwrap_or_default()
        .into_iter()
        .map(|(key, samples)| {
            let record = samples
                .into_iter()
                .map(|(timestamp, value)| SystemMetricSample {
                    timestamp: Some(timestamp),
                    value,
                })
                .collect();
            (key, SystemMetricsBuffer { record })
        })
        .collect();
    ResponseType::GetSystemMetricsResponse(GetSystemMetricsResponse { system_metrics })
}

/// `poll_exit`: whether the finish is done, and online the files it uploaded.
fn poll_exit(run: &Mutex<Run>) -> ResponseType {
    let done = finished(run, |f| (f.timed_out, f.files));
    let files = done.and_then(|(_, files)| files);
    ResponseType::PollExitResponse(PollExitResponse {
        done: done.is_some(),
        exit_result: done.map(|(timed_out, _)| RunExitResult { timed_out }),
        file_counts: files.map(|(counts, _)| counts),
        pusher_stats: files.map(|(_, pusher)| pusher),
        ..Default::default()
    })
}

/// `stop_status`: whether the server asked the run to stop (`run.stop()`, W&B's button).
fn stop_status(run: &Mutex<Run>) -> ResponseType {
    let stop = match &lock(run).phase {
        Phase::Running(pipeline) => pipeline.should_stop().load(Ordering::SeqCst),
        _ => false,
    };
    ResponseType::StopStatusResponse(StopStatusResponse {
        run_should_stop: stop,
    })
}

/// `log_artifact`: persisted like an offline artifact — the uploader saves it from the log
/// and publishes the outcome; the answer waits for it on a thread of its own.
fn log_artifact<S>(
    run: &Mutex<Run>,
    request_id: &str,
    log: LogArtifactRequest,
    reply: &Arc<Responder<S>>,
) where
    S: std::io::Write + Send + 'static,
{
    let Some(artifact) = log.artifact else {
        if !request_id.is_empty() {
            reply.send(&log_artifact_answer(
                request_id,
                String::new(),
                "log_artifact without an artifact".to_owned(),
            ));
        }
        return;
    };
    let client_id = artifact.client_id.clone();
    let board = lock(run).artifacts.clone();
    if log.history_step > 0 {
        // The step the SDK copied from `history_step` (a media table logged at it);
        // 0 is left out, as W&B's core leaves it.
        board.set_history_step(&client_id, log.history_step);
    }
    feed(
        run,
        Input::Record(Box::new(Record {
            record_type: Some(RecordType::Artifact(artifact)),
            ..Default::default()
        })),
    );
    let request_id = request_id.to_owned();
    let reply = reply.clone();
    let _ = std::thread::Builder::new()
        .name("cairn-artifact-wait".into())
        .spawn(move || {
            let outcome = board.wait(&client_id, None, |o| {
                !matches!(o, ArtifactOutcome::Recorded)
            });
            let (id, error) = match outcome {
                Some(ArtifactOutcome::Saved(saved)) => (saved.id, String::new()),
                Some(ArtifactOutcome::Failed(why)) => (String::new(), why),
                _ => (String::new(), "the artifact was not saved".to_owned()),
            };
            if !request_id.is_empty() {
                reply.send(&log_artifact_answer(&request_id, id, error));
            }
        });
}

/// `internal_messages`: held until there is a warning to show or the run is over (then
/// answered empty, which ends the SDK's loop).
fn internal_messages<S>(run: &Mutex<Run>, request_id: &str, reply: &Arc<Responder<S>>)
where
    S: std::io::Write + Send + 'static,
{
    let messages = lock(run).messages.clone();
    let request_id = request_id.to_owned();
    let reply = reply.clone();
    messages.poll(Box::new(move |warning| {
        if request_id.is_empty() {
            return;
        }
        reply.send(&response(
            &request_id,
            Some(ResponseType::InternalMessagesResponse(
                InternalMessagesResponse {
                    messages: Some(InternalMessages { warning }),
                },
            )),
        ));
    }));
}

/// The upload's operations in flight, as the SDK's progress display reads them.
fn operations_response(operations: &Operations) -> OperationStatsResponse {
    let operations: Vec<Operation> = operations
        .snapshot()
        .into_iter()
        .map(|op| Operation {
            desc: op.desc,
            runtime_seconds: op.runtime.as_secs_f64(),
            progress: op.progress,
            error_status: op.error_status,
            ..Default::default()
        })
        .collect();
    OperationStatsResponse {
        operation_stats: Some(OperationStats {
            total_operations: i64::try_from(operations.len()).unwrap_or(i64::MAX),
            operations,
            label: String::new(),
        }),
    }
}
