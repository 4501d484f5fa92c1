//! The public-API proxy: `wandb.login()`, `wandb.Api()` and the artifact code send their
//! GraphQL through the core in 0.31, as `api_init_request` (a session with a base URL and
//! key) then `api_request`s on it.
//!
//! Each request runs on a thread of its own with cairn-core's HTTP connection (its retry
//! policy; the deadline the SDK would wait), so a slow server holds up nothing else on the
//! connection, and is answered `api_response{…}` or `api_response{api_error_response}`.
//! Supported: `auth_request.authenticate_request` (the `viewer` query),
//! `graphql_request` passed through as it is (the field rewriting W&B's core does for old
//! servers is not needed by cairn's server), `features_request.server` (the server's
//! `serverInfo.features`, as W&B's core asks them), `read_run_history_request`
//! (`scan_history()`, see `history`; `download_history_exports()`, see `exports`),
//! `download_file_request` and `read_run_console_logs_request` (see `reads`),
//! `upload_file_request`, `mark_run_files_uploaded_request`, `stop_run_request` and
//! `create_custom_chart_request` (see `writes`). Not supported, answered with an error
//! naming the kind: identity-token exchange, organization features, W&B Launch queue
//! operations and OpenTelemetry forwarding. Sessions end with `api_cleanup_request`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cairn_core::client::{Connection, documents};
use cairn_proto::server_response::ServerResponseType;
use cairn_proto::{
    ApiErrorResponse, ApiRequest, ApiResponse, AuthResponse, AuthenticateResponse,
    FeaturesResponse, GraphQlResponse, ReadRunHistoryRequest, ReadRunHistoryResponse,
    ServerApiInitResponse, ServerFeature, ServerFeaturesRequest, ServerFeaturesResponse,
    ServerResponse, Settings, api_request, api_response, auth_request, auth_response,
    features_request, features_response, read_run_history_request, read_run_history_response,
};

use crate::remote::{ApiFailure, connection_config, until};
use crate::responder::Responder;

/// The API sessions of the service.
#[derive(Default)]
pub(crate) struct Apis {
    next: AtomicU64,
    sessions: Mutex<HashMap<String, Connection>>,
    /// Open `scan_history()` iterators and history downloads (of every session).
    reads: Arc<HistoryReads>,
}

/// The history reads that span several requests.
#[derive(Debug, Default)]
struct HistoryReads {
    scans: crate::history::Scans,
    exports: crate::exports::Exports,
}

impl std::fmt::Debug for Apis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apis").finish_non_exhaustive()
    }
}

fn answer(request_id: &str, response: api_response::Response) -> ServerResponse {
    ServerResponse {
        request_id: request_id.to_owned(),
        server_response_type: Some(ServerResponseType::ApiResponse(ApiResponse {
            response: Some(response),
        })),
    }
}

fn api_error(request_id: &str, failure: ApiFailure) -> ServerResponse {
    answer(
        request_id,
        api_response::Response::ApiErrorResponse(ApiErrorResponse {
            message: failure.message,
            error_type: failure.error_type.map(|t| t as i32),
            ..Default::default()
        }),
    )
}

/// The viewer's default entity, user name and email.
fn viewer(connection: &Connection) -> Result<AuthenticateResponse, String> {
    let until = until();
    let data = connection
        .graphql("Viewer", documents::VIEWER, serde_json::json!({}), &until)
        .map_err(|e| e.to_string())?;
    let viewer = &data["viewer"];
    if viewer.is_null() {
        return Err("the API key is not valid for this server".to_owned());
    }
    let text = |k: &str| viewer[k].as_str().unwrap_or_default().to_owned();
    Ok(AuthenticateResponse {
        default_entity: text("entity"),
        username: text("username"),
        email: text("email"),
        ..Default::default()
    })
}

impl Apis {
    /// `api_init_request`: a new session on the settings' server.
    pub(crate) fn init(&self, request_id: &str, settings: &Settings) -> ServerResponse {
        let id = format!("api-{}", self.next.fetch_add(1, Ordering::SeqCst));
        let connection = Connection::new(connection_config(settings));
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), connection);
        ServerResponse {
            request_id: request_id.to_owned(),
            server_response_type: Some(ServerResponseType::ApiInitResponse(
                ServerApiInitResponse {
                    api_id: id,
                    ..Default::default()
                },
            )),
        }
    }

    /// `api_cleanup_request`.
    pub(crate) fn cleanup(&self, api_id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(api_id);
    }

    /// `api_request`: answered from a thread of its own.
    pub(crate) fn request<S>(
        &self,
        request_id: &str,
        request: ApiRequest,
        reply: &Arc<Responder<S>>,
    ) where
        S: std::io::Write + Send + 'static,
    {
        let session = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&request.api_id)
            .cloned();
        let Some(connection) = session else {
            reply.send(&api_error(
                request_id,
                "WandbAPI is not initialized".to_owned().into(),
            ));
            return;
        };
        let request_id = request_id.to_owned();
        let reply = reply.clone();
        let reads = self.reads.clone();
        let _ = std::thread::Builder::new()
            .name("cairn-api".into())
            .spawn(move || {
                let response = handle(&connection, &reads, request.request);
                if !request_id.is_empty() {
                    reply.send(&match response {
                        Ok(response) => answer(&request_id, response),
                        Err(message) => api_error(&request_id, message),
                    });
                }
            });
    }
}

fn handle(
    connection: &Connection,
    reads: &HistoryReads,
    request: Option<api_request::Request>,
) -> Result<api_response::Response, ApiFailure> {
    use api_request::Request as R;
    use api_response::Response as A;
    Ok(match request {
        Some(R::ReadRunHistoryRequest(read)) => {
            A::ReadRunHistoryResponse(read_history(connection, reads, read)?)
        }
        Some(R::DownloadFileRequest(download)) => {
            A::DownloadFileResponse(crate::reads::download_file(connection, &download)?)
        }
        Some(R::ReadRunConsoleLogsRequest(read)) => {
            A::ReadRunConsoleLogsResponse(crate::reads::read_console_logs(connection, &read)?)
        }
        Some(R::UploadFileRequest(upload)) => {
            A::UploadFileResponse(crate::writes::upload_file(connection, &upload)?)
        }
        Some(R::MarkRunFilesUploadedRequest(mark)) => A::MarkRunFilesUploadedResponse(
            crate::writes::mark_run_files_uploaded(connection, &mark)?,
        ),
        Some(R::StopRunRequest(stop)) => {
            A::StopRunResponse(crate::writes::stop_run(connection, &stop)?)
        }
        Some(R::CreateCustomChartRequest(chart)) => {
            A::CreateCustomChartResponse(crate::writes::create_custom_chart(connection, &chart)?)
        }
        Some(R::AuthRequest(auth)) => match auth.request {
            Some(auth_request::Request::AuthenticateRequest(_)) => {
                let viewer = viewer(connection)?;
                A::AuthResponse(AuthResponse {
                    response: Some(auth_response::Response::AuthenticateResponse(viewer)),
                })
            }
            _ => {
                return Err(
                    "cairn core does not exchange identity tokens (use an API key)"
                        .to_owned()
                        .into(),
                );
            }
        },
        Some(R::GraphqlRequest(graphql)) => {
            let variables: serde_json::Value = if graphql.variables_json.trim().is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_str(&graphql.variables_json)
                    .map_err(|e| format!("the GraphQL variables are not JSON: {e}"))?
            };
            let until = until();
            let data = connection
                .graphql("", &graphql.query, variables, &until)
                .map_err(|e| e.to_string())?;
            A::GraphqlResponse(GraphQlResponse {
                data_json: data.to_string(),
            })
        }
        Some(R::FeaturesRequest(features)) => match features.request {
            Some(features_request::Request::Server(asked)) => {
                A::FeaturesResponse(FeaturesResponse {
                    response: Some(features_response::Response::Server(server_features(
                        connection, &asked,
                    )?)),
                })
            }
            _ => {
                return Err("cairn core does not read organization features"
                    .to_owned()
                    .into());
            }
        },
        Some(other) => {
            return Err(format!(
                "cairn core does not support this API request: {}",
                request_kind(&other)
            )
            .into());
        }
        None => return Err("an empty api_request".to_owned().into()),
    })
}

/// The name of an API request kind, for errors.
fn request_kind(request: &api_request::Request) -> &'static str {
    use api_request::Request as R;
    match request {
        R::ReadRunHistoryRequest(_) => "read_run_history_request",
        R::FeaturesRequest(_) => "features_request",
        R::GraphqlRequest(_) => "graphql_request",
        R::DownloadFileRequest(_) => "download_file_request",
        R::UploadFileRequest(_) => "upload_file_request",
        R::MarkRunFilesUploadedRequest(_) => "mark_run_files_uploaded_request",
        R::StopRunRequest(_) => "stop_run_request",
        R::AuthRequest(_) => "auth_request",
        R::CreateCustomChartRequest(_) => "create_custom_chart_request",
        R::RunQueueOperationRequest(_) => "run_queue_operation_request (W&B Launch)",
        R::OpenTelemetryRequest(_) => "open_telemetry_request",
        R::ReadRunConsoleLogsRequest(_) => "read_run_console_logs_request",
    }
}

/// A `read_run_history_request`: scans go to `history`, export downloads to `exports`.
fn read_history(
    connection: &Connection,
    reads: &HistoryReads,
    read: ReadRunHistoryRequest,
) -> Result<ReadRunHistoryResponse, ApiFailure> {
    use read_run_history_request::Request as R;
    use read_run_history_response::Response as A;
    let response = match read.request {
        Some(R::DownloadRunHistoryInit(init)) => {
            A::DownloadRunHistoryInit(reads.exports.init(connection, &init)?)
        }
        Some(R::DownloadRunHistory(download)) => {
            A::DownloadRunHistory(reads.exports.download(connection, download.request_id)?)
        }
        Some(R::DownloadRunHistoryStatus(status)) => {
            A::DownloadRunHistoryStatus(reads.exports.status(status.request_id))
        }
        scan => {
            return Ok(reads
                .scans
                .handle(connection, ReadRunHistoryRequest { request: scan })?);
        }
    };
    Ok(ReadRunHistoryResponse {
        response: Some(response),
    })
}

/// The features of `asked` the server announces as enabled (all it announces that the
/// SDK knows, when `asked` is empty); W&B's core answers the same from the same query.
fn server_features(
    connection: &Connection,
    asked: &ServerFeaturesRequest,
) -> Result<ServerFeaturesResponse, String> {
    let until = until();
    let announced = connection
        .server_features(&until)
        .map_err(|e| e.to_string())?;
    let enabled = announced
        .iter()
        .filter_map(|name| ServerFeature::from_str_name(name))
        .filter(|feature| asked.features.is_empty() || asked.features.contains(&(*feature as i32)))
        .map(|feature| feature as i32)
        .collect();
    Ok(ServerFeaturesResponse { enabled })
}
