//! `run.download_history_exports(dir)` through the core: the parquet files a server has
//! exported of a run's history, fetched into a folder. Three `read_run_history_request`s
//! on an API session:
//!
//! * `download_run_history_init{entity, project, run_id, download_dir,
//!   require_complete_history}`: one `RunParquetHistory` query (`liveKeys: ["_step"]`, as
//!   W&B's core asks) gives the export URLs and the live rows (history not exported yet).
//!   Live rows with `require_complete_history` are an error of type
//!   `INCOMPLETE_RUN_HISTORY_ERROR` (the SDK raises `IncompleteRunHistoryError`);
//!   otherwise the answer is a download id and `contains_live_data`.
//! * `download_run_history{request_id}`: fetches each URL into
//!   `download_dir/<entity>_<project>_<run>_<i>.runhistory.parquet` (W&B's names), one at
//!   a time, each whole or not at all (see `reads::fetch`), and answers the paths written
//!   and an error per file that failed. The download is forgotten then.
//! * `download_run_history_status{request_id}`: the progress of that download
//!   (`"2/5 files"`); an unknown or finished id gets empty stats.
//!
//! Pending downloads hold only their URLs and destination; nothing is kept once answered.
//! cairn's server exports no parquet: it names its first live step, so a run with history
//! is "incomplete" and one without is empty, both with no files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cairn_core::client::{Connection, documents};
use cairn_proto::{
    DownloadRunHistoryInit, DownloadRunHistoryInitResponse, DownloadRunHistoryResponse,
    DownloadRunHistoryStatusResponse, ErrorType, Operation, OperationStats,
};
use serde_json::{Value, json};

use crate::remote::{ApiFailure, run_query, until};

/// A download announced by `download_run_history_init`.
#[derive(Debug)]
struct Pending {
    /// Where each URL goes.
    files: Vec<(String, PathBuf)>,
    /// How many files are done (written or failed).
    done: Arc<AtomicUsize>,
    /// Whether `download_run_history` has taken it.
    started: bool,
}

/// The history downloads of every API session.
#[derive(Debug, Default)]
pub(crate) struct Exports {
    next: AtomicI32,
    pending: Mutex<HashMap<i32, Pending>>,
}

impl Exports {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `download_run_history_init` (see the module doc).
    pub(crate) fn init(
        &self,
        connection: &Connection,
        request: &DownloadRunHistoryInit,
    ) -> Result<DownloadRunHistoryInitResponse, ApiFailure> {
        let path = format!("{}/{}/{}", request.entity, request.project, request.run_id);
        let run = run_query(
            connection,
            "RunParquetHistory",
            documents::RUN_PARQUET_HISTORY,
            json!({
                "entity": request.entity, "project": request.project,
                "runName": request.run_id, "liveKeys": ["_step"],
            }),
            &until(),
            &path,
        )?;
        let history = &run["parquetHistory"];
        if !history.is_object() {
            return Err(format!("the server has no history exports for run {path}").into());
        }
        let contains_live_data = history["liveData"]
            .as_array()
            .is_some_and(|rows| !rows.is_empty());
        if contains_live_data && request.require_complete_history {
            return Err(ApiFailure {
                message: format!(
                    "run {path} has history that is not exported yet (pass \
                     require_complete_history=False to download what is)"
                ),
                error_type: Some(ErrorType::IncompleteRunHistoryError),
            });
        }
        let dir = PathBuf::from(&request.download_dir);
        let files = history["parquetUrls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .enumerate()
            .map(|(i, url)| {
                let name = format!(
                    "{}_{}_{}_{i}.runhistory.parquet",
                    request.entity, request.project, request.run_id
                );
                (url.to_owned(), dir.join(name))
            })
            .collect();
        let request_id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.pending().insert(
            request_id,
            Pending {
                files,
                done: Arc::default(),
                started: false,
            },
        );
        Ok(DownloadRunHistoryInitResponse {
            request_id,
            contains_live_data,
        })
    }

    /// `download_run_history` (see the module doc).
    pub(crate) fn download(
        &self,
        connection: &Connection,
        request_id: i32,
    ) -> Result<DownloadRunHistoryResponse, ApiFailure> {
        let (files, done) = match self.pending().get_mut(&request_id) {
            Some(pending) if !pending.started => {
                pending.started = true;
                (pending.files.clone(), pending.done.clone())
            }
            Some(_) => {
                return Err(format!("history download {request_id} is already running").into());
            }
            None => return Err(format!("no history download {request_id}").into()),
        };
        let mut response = DownloadRunHistoryResponse::default();
        for (url, dest) in files {
            match crate::reads::fetch(connection, &url, &dest) {
                Ok(()) => response
                    .downloaded_files
                    .push(dest.to_string_lossy().into_owned()),
                Err(message) => {
                    response
                        .errors
                        .insert(dest.to_string_lossy().into_owned(), message);
                }
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
        self.pending().remove(&request_id);
        Ok(response)
    }

    /// `download_run_history_status` (see the module doc).
    pub(crate) fn status(&self, request_id: i32) -> DownloadRunHistoryStatusResponse {
        let pending = self.pending();
        let Some(pending) = pending.get(&request_id) else {
            return DownloadRunHistoryStatusResponse::default();
        };
        let total = pending.files.len();
        let done = pending.done.load(Ordering::Relaxed).min(total);
        DownloadRunHistoryStatusResponse {
            operation_stats: Some(OperationStats {
                operations: vec![Operation {
                    desc: "downloading history exports".to_owned(),
                    progress: format!("{done}/{total} files"),
                    ..Default::default()
                }],
                total_operations: 1,
                label: String::new(),
            }),
        }
    }
}
