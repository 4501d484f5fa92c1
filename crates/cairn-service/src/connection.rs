//! One SDK connection: a thread that reads `ServerRequest` frames until the stream ends
//! and answers each request that carries an id. Reads go through a
//! [`SpinReader`](crate::spin::SpinReader) (waits briefly before sleeping) and a buffer
//! that takes every waiting frame in one read.
//!
//! Each request goes to the part of the service it is for — runs (`inform_*`, records),
//! the public-API proxy (`api_*`), `wandb sync` (`*sync*`) — with the connection's
//! [`Responder`], which writes each answer whole, so answers given from other threads
//! later (a run's finish, a deferred artifact) never interleave with these.
//! A stream that breaks (bad magic, a cut or oversized frame, bytes that are not a
//! `ServerRequest`) ends this connection only, with the reason reported; other connections
//! and the service go on. `inform_teardown` from the owning process ends the service.

use std::io::{BufReader, Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;

use cairn_proto::server_request::ServerRequestType;
use cairn_proto::{ServerRequest, ServerResponse};

use crate::frame;
use crate::responder::Responder;
use crate::shared::{Outcome, ServiceEvent, Shared};
use crate::spin::SpinReader;

/// A socket a connection can read and answer on (Unix or TCP).
pub trait Stream: Read + Write + AsFd + Send + Sized + 'static {
    /// A second handle on the same socket, for answering while the first one reads.
    fn try_clone(&self) -> std::io::Result<Self>;
}

impl Stream for std::os::unix::net::UnixStream {
    fn try_clone(&self) -> std::io::Result<Self> {
        std::os::unix::net::UnixStream::try_clone(self)
    }
}

impl Stream for std::net::TcpStream {
    fn try_clone(&self) -> std::io::Result<Self> {
        std::net::TcpStream::try_clone(self)
    }
}

/// The name of a request's kind, as the protocol's oneof calls it.
pub fn kind(request: &ServerRequest) -> &'static str {
    match &request.server_request_type {
        None => "an empty request",
        Some(kind) => match kind {
            ServerRequestType::RecordPublish(_) => "record_publish",
            ServerRequestType::RecordCommunicate(_) => "record_communicate",
            ServerRequestType::InformInit(_) => "inform_init",
            ServerRequestType::InformFinish(_) => "inform_finish",
            ServerRequestType::InformAttach(_) => "inform_attach",
            ServerRequestType::InformDetach(_) => "inform_detach",
            ServerRequestType::InformTeardown(_) => "inform_teardown",
            ServerRequestType::Authenticate(_) => "authenticate",
            ServerRequestType::InitSync(_) => "init_sync",
            ServerRequestType::Sync(_) => "sync",
            ServerRequestType::SyncStatus(_) => "sync_status",
            ServerRequestType::ApiInitRequest(_) => "api_init_request",
            ServerRequestType::ApiRequest(_) => "api_request",
            ServerRequestType::Cancel(_) => "cancel",
            ServerRequestType::ApiCleanupRequest(_) => "api_cleanup_request",
            ServerRequestType::SweepSchedulerInit(_) => "sweep_scheduler_init",
            ServerRequestType::SweepSchedulerNextTask(_) => "sweep_scheduler_next_task",
            ServerRequestType::SweepSchedulerStop(_) => "sweep_scheduler_stop",
        },
    }
}

/// Serves connection `id` on `stream` until it ends (see the module doc).
pub(crate) fn serve<S: Stream>(shared: &Shared, id: u64, stream: S) {
    let error = match stream.try_clone() {
        Ok(writer) => {
            let responder = Arc::new(Responder::new(writer));
            let spin = SpinReader::new(stream);
            let mut reader = BufReader::with_capacity(1 << 16, spin);
            read_requests(shared, id, &mut reader, &responder)
        }
        Err(err) => Some(format!("cannot share the socket: {err}")),
    };
    shared.reporter.report(ServiceEvent::Disconnected {
        connection: id,
        error,
    });
    shared.connection_closed();
}

/// Reads and answers until the stream ends; the reason it broke, if it did.
fn read_requests<S: Stream>(
    shared: &Shared,
    id: u64,
    stream: &mut impl Read,
    responder: &Arc<Responder<S>>,
) -> Option<String> {
    loop {
        let request = match frame::read_request(stream) {
            Ok(Some(request)) => request,
            Ok(None) => return None,
            Err(err) => return Some(err.to_string()),
        };
        let kind = kind(&request);
        let id_of = |info: Option<&cairn_proto::RecordInfo>| {
            info.map(|i| i.stream_id.clone()).unwrap_or_default()
        };
        match request.server_request_type {
            Some(ServerRequestType::InformTeardown(teardown)) => {
                // Runs the user never finished are finished now, then the service ends.
                shared
                    .runs
                    .finish_all(teardown.exit_code, shared.reporter.as_ref());
                shared.stop(Outcome::TornDown {
                    exit_code: teardown.exit_code,
                });
                return None;
            }
            Some(ServerRequestType::InformInit(init)) => {
                let run = id_of(init.info.as_ref());
                let settings = init.settings.unwrap_or_default();
                match shared.runs.init(&run, settings) {
                    // A bare envelope: only the id.
                    Ok(()) => responder.send(&ServerResponse {
                        request_id: request.request_id.clone(),
                        server_response_type: None,
                    }),
                    Err(message) => responder.error(&request.request_id, message),
                }
            }
            Some(ServerRequestType::InformFinish(finish)) => {
                shared.runs.forget(&id_of(finish.info.as_ref()));
            }
            Some(
                ServerRequestType::RecordPublish(record)
                | ServerRequestType::RecordCommunicate(record),
            ) => shared.runs.record(&request.request_id, record, responder),
            Some(ServerRequestType::ApiInitRequest(init)) => {
                let settings = init.settings.unwrap_or_default();
                responder.send(&shared.apis.init(&request.request_id, &settings));
            }
            Some(ServerRequestType::ApiRequest(api)) => {
                shared.apis.request(&request.request_id, api, responder);
            }
            Some(ServerRequestType::InformAttach(attach)) => {
                let run = id_of(attach.info.as_ref());
                shared
                    .runs
                    .inform_attach(&request.request_id, &run, responder);
            }
            Some(ServerRequestType::InitSync(init)) => {
                responder.send(&shared.syncs.init(&request.request_id, init));
            }
            Some(ServerRequestType::Sync(sync)) => {
                shared.syncs.sync(&request.request_id, sync, responder);
            }
            Some(ServerRequestType::SyncStatus(status)) => {
                responder.send(&shared.syncs.status(&request.request_id, status));
            }
            Some(ServerRequestType::ApiCleanupRequest(cleanup)) => {
                shared.apis.cleanup(&cleanup.api_id);
            }
            // Cancelling a request nothing holds is allowed (the SDK cancels what it
            // stopped waiting for, answered or not).
            Some(ServerRequestType::Cancel(_)) => {}
            _ if request.request_id.is_empty() => {
                shared.reporter.report(ServiceEvent::Ignored {
                    connection: id,
                    kind,
                });
            }
            _ => {
                shared.reporter.report(ServiceEvent::Unsupported {
                    connection: id,
                    kind,
                });
                responder.error(
                    &request.request_id,
                    format!("cairn core does not support {kind} yet"),
                );
            }
        }
    }
}
