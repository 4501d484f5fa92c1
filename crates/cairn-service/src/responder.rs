//! The writing half of an SDK connection, shared by whoever answers on it: the
//! connection's own thread and the threads that answer later (a run's finish, a deferred
//! artifact, an API request, a sync).
//!
//! Each answer is written as one whole frame under the writer lock, so answers from
//! different threads never interleave. A peer that is gone is not an error here: the
//! connection's reader sees the end of the stream and closes the connection. Nothing to
//! shut down: the writer closes when the last holder drops it.

use std::io::Write;
use std::sync::Mutex;

use cairn_proto::server_response::ServerResponseType;
use cairn_proto::{ServerErrorResponse, ServerResponse};

use crate::frame;

/// The writing half of a connection, shared by whoever answers on it.
pub(crate) struct Responder<S> {
    writer: Mutex<S>,
}

impl<S> std::fmt::Debug for Responder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl<S: Write> Responder<S> {
    /// Answers on `writer` (a second handle on the connection's socket).
    pub(crate) fn new(writer: S) -> Responder<S> {
        Responder {
            writer: Mutex::new(writer),
        }
    }

    /// Writes `response` as one frame; a peer that is gone is not an error here (its
    /// reader sees the end of the stream).
    pub(crate) fn send(&self, response: &ServerResponse) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = frame::write_response(&mut *writer, response);
    }

    /// Answers `request_id` with an `error_response` carrying `message`.
    pub(crate) fn error(&self, request_id: &str, message: String) {
        self.send(&ServerResponse {
            request_id: request_id.to_owned(),
            server_response_type: Some(ServerResponseType::ErrorResponse(ServerErrorResponse {
                message,
            })),
        });
    }
}
