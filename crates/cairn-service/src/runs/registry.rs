//! [`Runs`]: every run of the service by stream id, and where each SDK message about a
//! run goes.
//!
//! Input: the connection threads' `inform_init`, `inform_attach`, `inform_finish`,
//! `inform_teardown`, and every published record. The registry lock is held only to look
//! a run up, add it or remove it; a run works under its own lock, so one run's full queue
//! or slow finish holds up no other run. A record for an unknown run is answered with an
//! error (when it carries an id) and dropped.
//!
//! [`Runs::record`] dispatches by kind: the `run` record to `start`, `exit` to `finish`,
//! requests to `requests`, data records through `records` into the run's pipeline. A run
//! is forgotten at `inform_finish` when it is finished or was never started; teardown
//! finishes every run still running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cairn_core::input::Input;
use cairn_proto::record::RecordType;
use cairn_proto::server_response::ServerResponseType;
use cairn_proto::{Record, ServerInformAttachResponse, ServerResponse, Settings};

use super::answers::response;
use super::run::{Phase, Run, feed, lock};
use super::{finish, records, requests, start};
use crate::responder::Responder;

/// Every run of the service.
#[derive(Default)]
pub(crate) struct Runs {
    runs: Mutex<HashMap<String, Arc<Mutex<Run>>>>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs").finish_non_exhaustive()
    }
}

impl Runs {
    fn get(&self, id: &str) -> Option<Arc<Mutex<Run>>> {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// `inform_init`: registers run `id`; an error message when the id is in use.
    pub(crate) fn init(&self, id: &str, settings: Settings) -> Result<(), String> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.contains_key(id) {
            return Err(format!("run ID {id} is in use"));
        }
        runs.insert(id.to_owned(), Arc::new(Mutex::new(Run::pending(settings))));
        Ok(())
    }

    /// `inform_attach` from a child process: the run's settings, or an error when no run
    /// `id` is running here (W&B's core leaves that unanswered; the SDK would then wait
    /// 10 s for nothing).
    pub(crate) fn inform_attach<S>(&self, request_id: &str, id: &str, reply: &Arc<Responder<S>>)
    where
        S: std::io::Write + Send + 'static,
    {
        let settings = self.get(id).and_then(|run| {
            let run = lock(&run);
            match run.phase {
                Phase::Pending(_) | Phase::Running(_) => Some(run.settings.clone()),
                Phase::Finishing | Phase::Finished(_) => None,
            }
        });
        match settings {
            Some(settings) => reply.send(&ServerResponse {
                request_id: request_id.to_owned(),
                server_response_type: Some(ServerResponseType::InformAttachResponse(
                    ServerInformAttachResponse {
                        settings: Some(*settings),
                        info: None,
                    },
                )),
            }),
            None => reply.error(request_id, format!("no run {id:?} to attach to")),
        }
    }

    /// `inform_finish`: forgets a run once it is finished.
    pub(crate) fn forget(&self, id: &str) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(run) = runs.get(id) {
            let run = lock(run);
            if matches!(run.phase, Phase::Finished(_) | Phase::Pending(_)) {
                drop(run);
                runs.remove(id);
            }
        }
    }

    /// `inform_teardown` (or a parent gone): finishes every run the user never finished
    /// with `exit_code`, waits, and reports each one's footer (the SDK prints none then).
    pub(crate) fn finish_all(&self, exit_code: i32, reporter: &dyn crate::shared::Reporter) {
        let all: Vec<Arc<Mutex<Run>>> = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        finish::finish_unfinished(all, exit_code, reporter);
    }

    /// A record published on a connection, answered on `reply` when it carries an id.
    pub(crate) fn record<S>(&self, request_id: &str, record: Record, reply: &Arc<Responder<S>>)
    where
        S: std::io::Write + Send + 'static,
    {
        let id = record
            .info
            .as_ref()
            .map(|i| i.stream_id.clone())
            .unwrap_or_default();
        let Some(run) = self.get(&id) else {
            if !request_id.is_empty() {
                reply.error(
                    request_id,
                    format!("unknown run {id:?}: no inform_init for it"),
                );
            }
            return;
        };
        match record.record_type {
            Some(RecordType::Header(_)) => {}
            Some(RecordType::Run(run_record)) => start::start(&run, request_id, run_record, reply),
            Some(RecordType::Exit(exit)) => finish::exit(run, request_id, exit.exit_code, reply),
            Some(RecordType::Request(request)) => {
                requests::request(&run, request_id, request.request_type, reply);
            }
            Some(RecordType::Summary(summary)) => {
                feed(&run, Input::Summary(records::summary_change(&summary)));
            }
            Some(RecordType::Config(config)) => {
                feed(&run, Input::Config(records::config_change(&config)));
            }
            Some(RecordType::Metric(metric)) => feed(&run, Input::DefineMetric(Box::new(metric))),
            Some(kind) => {
                let record = records::persisted(kind, record.info);
                feed(&run, Input::Record(Box::new(record)));
                if !request_id.is_empty() {
                    reply.send(&response(request_id, None));
                }
            }
            None => {
                if !request_id.is_empty() {
                    reply.send(&response(request_id, None));
                }
            }
        }
    }
}
