//! `wandb sync` through the core: `init_sync` names the `.wandb` logs to upload, `sync`
//! uploads them and is answered when all are done, `sync_status` reports progress and new
//! messages meanwhile (the SDK asks every 0.1 s on the same connection).
//!
//! Inputs: `init_sync{path[], settings, cwd, new_entity, new_project, new_run_id, …}` is
//! kept under a new id (`sync-0`, `sync-1`, …) and answered at once. `sync{id,
//! parallelism}` starts a thread of its own — the connection reads on — that resolves each
//! path against `cwd`, reads the run record at the head of each log (its
//! `entity/project/id`, with the overrides, is the run's label), then uploads the runs on
//! up to `parallelism` threads (1 to 16) with cairn-core's [`sync_log`], the same upload
//! `cairn sync` does. Logs of the same run (a resumed run, or `--id` for several) go one
//! after the other, oldest first; different runs go in parallel, and a run that fails
//! never stops the others. The server and key come from the settings (else
//! `WANDB_API_KEY` / netrc for the settings' server).
//!
//! Outputs, as W&B's core words them: per run an INFO `[<label>] View run <name> at <url>`
//! (once the upload is done: only then are the server's entity and the name it gave the
//! run known) and `[<label>] Finished syncing <path>`, WARNINGs for what the upload
//! reported (damage read past, files it could not send), an ERROR naming the path for a
//! run that could not be read or uploaded, or whose log ends inside a record (what it held
//! is uploaded, but it is not marked synced). A run uploaded whole is marked, as W&B marks
//! it, with an empty `<log>.synced` beside the log, which `wandb sync` skips next time.
//! Messages not yet handed out by a `sync_status` go into the final `sync_response`;
//! `sync_status` also carries one `OperationStats` per run being uploaded (bytes of its
//! log read so far).
//!
//! How it ends: the upload threads end when their uploads end (sync_log gives up when the
//! retry policies run out); then the `sync_response` is sent and the sync is forgotten, so
//! a later `sync_status` for it is answered empty, as is one for an unknown id. The
//! job-type override and tag renames (`--job-type`, `--replace-tags`) are applied to every
//! run record uploaded. `live` (`wandb beta sync --live`) follows each log while it is being
//! written, reading on every second until its exit record arrives (a writer that died
//! without one keeps the sync waiting, as with W&B's core).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_core::client::{self, Connection, ConnectionConfig, Until};
use cairn_core::upload::{RunOverrides, UploadSettings, sync_log};
use cairn_proto::record::RecordType;
use cairn_proto::server_response::ServerResponseType;
use cairn_proto::server_sync_message::Severity;
use cairn_proto::{
    Operation, OperationStats, ServerInitSyncRequest, ServerInitSyncResponse, ServerResponse,
    ServerSyncMessage, ServerSyncRequest, ServerSyncResponse, ServerSyncStatusRequest,
    ServerSyncStatusResponse,
};
use cairn_store::LogReader;

use crate::responder::Responder;

/// Most runs uploaded at once, whatever the SDK asks for.
const MAX_PARALLELISM: u32 = 16;
/// How long the run's display name (for the "View run" line) may take to read.
const NAME_DEADLINE: Duration = Duration::from_secs(10);
/// How often a live sync reads on in a log still being written.
const LIVE_POLL: Duration = Duration::from_secs(1);

/// The syncs of the service, by id (`sync-0`, `sync-1`, …).
#[derive(Default)]
pub(crate) struct Syncs {
    next: AtomicU64,
    ops: Arc<Mutex<HashMap<String, Arc<SyncOp>>>>,
}

impl std::fmt::Debug for Syncs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncs").finish_non_exhaustive()
    }
}

/// One `init_sync`: its request until `sync` takes it, then the progress of the upload.
#[derive(Default)]
struct SyncOp {
    request: Mutex<Option<ServerInitSyncRequest>>,
    state: Mutex<OpState>,
}

#[derive(Default)]
struct OpState {
    /// Messages not yet handed out.
    messages: Vec<ServerSyncMessage>,
    /// The runs being uploaded now.
    active: Vec<Arc<Active>>,
}

/// A run being uploaded, for `sync_status`.
struct Active {
    label: String,
    started: Instant,
    read: Arc<AtomicU64>,
    size: u64,
}

impl SyncOp {
    fn say(&self, severity: Severity, content: String) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .messages
            .push(ServerSyncMessage {
                severity: severity as i32,
                content,
            });
    }

    fn take_messages(&self) -> Vec<ServerSyncMessage> {
        std::mem::take(
            &mut self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .messages,
        )
    }

    fn status(&self) -> ServerSyncStatusResponse {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stats = state
            .active
            .iter()
            .map(|run| {
                let read = run.read.load(Ordering::Relaxed).min(run.size);
                OperationStats {
                    operations: vec![Operation {
                        desc: "syncing".to_owned(),
                        runtime_seconds: run.started.elapsed().as_secs_f64(),
                        progress: format!("{}/{}", human_bytes(read), human_bytes(run.size)),
                        ..Default::default()
                    }],
                    total_operations: 1,
                    label: run.label.clone(),
                }
            })
            .collect();
        ServerSyncStatusResponse {
            stats,
            new_messages: std::mem::take(&mut state.messages),
        }
    }
}

impl Syncs {
    /// `init_sync`: registers the paths; answered with the sync's id.
    pub(crate) fn init(&self, request_id: &str, init: ServerInitSyncRequest) -> ServerResponse {
        let id = format!("sync-{}", self.next.fetch_add(1, Ordering::SeqCst));
        let op = SyncOp {
            request: Mutex::new(Some(init)),
            state: Mutex::default(),
        };
        self.ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), Arc::new(op));
        ServerResponse {
            request_id: request_id.to_owned(),
            server_response_type: Some(ServerResponseType::InitSyncResponse(
                ServerInitSyncResponse { id },
            )),
        }
    }

    /// `sync`: uploads on threads of their own; answered on `reply` when all are done.
    pub(crate) fn sync<S>(
        &self,
        request_id: &str,
        sync: ServerSyncRequest,
        reply: &Arc<Responder<S>>,
    ) where
        S: std::io::Write + Send + 'static,
    {
        let op = self
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sync.id)
            .cloned();
        let init = op
            .as_ref()
            .and_then(|op| op.request.lock().unwrap_or_else(|e| e.into_inner()).take());
        let (Some(op), Some(init)) = (op, init) else {
            reply.error(
                request_id,
                format!("sync operation unknown or already started: {}", sync.id),
            );
            return;
        };
        let parallelism = sync.parallelism.clamp(1, MAX_PARALLELISM) as usize;
        let ops = self.ops.clone();
        let id = sync.id.clone();
        let answer_id = request_id.to_owned();
        let answer = reply.clone();
        let spawned = std::thread::Builder::new()
            .name("cairn-sync".into())
            .spawn(move || {
                run(&op, init, parallelism);
                // Forget the sync first: a later `sync_status` is answered empty, and
                // every message is in exactly one answer.
                ops.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                let messages = op.take_messages();
                answer.send(&ServerResponse {
                    request_id: answer_id,
                    server_response_type: Some(ServerResponseType::SyncResponse(
                        ServerSyncResponse { messages },
                    )),
                });
            });
        if let Err(err) = spawned {
            self.ops
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&sync.id);
            reply.error(request_id, format!("cannot start the sync: {err}"));
        }
    }

    /// `sync_status`: progress and the messages not yet reported (empty for unknown ids).
    pub(crate) fn status(
        &self,
        request_id: &str,
        status: ServerSyncStatusRequest,
    ) -> ServerResponse {
        let op = self
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&status.id)
            .cloned();
        let response = op.map(|op| op.status()).unwrap_or_default();
        ServerResponse {
            request_id: request_id.to_owned(),
            server_response_type: Some(ServerResponseType::SyncStatusResponse(response)),
        }
    }
}

/// What the head of a log says about its run (with the sync's overrides applied).
#[derive(Debug, Clone)]
struct RunInfo {
    entity: String,
    project: String,
    run_id: String,
    display_name: String,
    start: (i64, i32),
}

impl RunInfo {
    /// `entity/project/id`, empty parts left out (W&B's label for the run).
    fn label(&self) -> String {
        let id = if self.run_id.is_empty() {
            "<no ID>"
        } else {
            &self.run_id
        };
        [self.entity.as_str(), self.project.as_str(), id]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// One log to upload.
#[derive(Debug)]
struct Job {
    log: PathBuf,
    display: String,
    info: RunInfo,
}

/// What every upload of a sync shares.
struct Context {
    connection: ConnectionConfig,
    app_url: String,
    overrides: RunOverrides,
    /// Follow logs still being written, reading on at this interval.
    live: Option<Duration>,
}

/// The whole sync, on its own thread: returns when every run is done.
fn run(op: &SyncOp, init: ServerInitSyncRequest, parallelism: usize) {
    let settings = init.settings.clone().unwrap_or_default();
    let mut connection = crate::remote::connection_config(&settings);
    if connection.api_key.is_empty()
        && let Some(key) = client::credentials::api_key(&connection.base_url)
    {
        connection.api_key = key;
    }
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let context = Context {
        app_url: app_url(&settings, &connection.base_url),
        connection,
        live: init.live.then_some(LIVE_POLL),
        overrides: RunOverrides {
            entity: text(&init.new_entity),
            project: text(&init.new_project),
            run_id: text(&init.new_run_id),
            job_type: text(&init.new_job_type),
            tag_replacements: init.tag_replacements.clone(),
        },
    };
    let cwd = Path::new(&init.cwd);

    // Read each log's run record first, then group the logs by run, oldest first.
    let mut groups: Vec<Vec<Job>> = Vec::new();
    let mut by_label: HashMap<String, usize> = HashMap::new();
    for user_path in &init.path {
        let Some(log) = resolve(user_path, cwd) else {
            op.say(
                Severity::Error,
                format!("Failed to resolve {user_path:?}, skipping."),
            );
            continue;
        };
        let display = display_path(&log, cwd);
        match read_run_info(&log, &display, &context) {
            Ok(info) => {
                let job = Job { log, display, info };
                let label = job.info.label();
                match by_label.get(&label) {
                    Some(&i) => groups[i].push(job),
                    None => {
                        by_label.insert(label, groups.len());
                        groups.push(vec![job]);
                    }
                }
            }
            Err(message) => op.say(Severity::Error, message),
        }
    }
    if groups.is_empty() {
        return;
    }
    if context.connection.api_key.is_empty() {
        op.say(
            Severity::Error,
            format!(
                "No API key for {}: run `wandb login` or set WANDB_API_KEY.",
                context.connection.base_url
            ),
        );
        return;
    }
    for group in &mut groups {
        group.sort_by_key(|job| job.info.start);
    }

    let threads = parallelism.min(groups.len());
    let queue = Mutex::new(groups.into_iter());
    let work = || {
        loop {
            let next = queue.lock().ok().and_then(|mut q| q.next());
            let Some(group) = next else { break };
            for job in group {
                // A later log of the same run cannot go on after an earlier one failed.
                if !sync_one(op, &context, &job) {
                    break;
                }
            }
        }
    };
    std::thread::scope(|scope| {
        let mut spawned = 0;
        for _ in 0..threads {
            if std::thread::Builder::new()
                .name("cairn-sync-run".into())
                .spawn_scoped(scope, work)
                .is_ok()
            {
                spawned += 1;
            }
        }
        if spawned == 0 {
            work();
        }
    });
}

/// Uploads one log and reports how it went; whether it was uploaded whole.
fn sync_one(op: &SyncOp, context: &Context, job: &Job) -> bool {
    let label = job.info.label();
    let files_dir = job
        .log
        .parent()
        .map_or_else(|| PathBuf::from("files"), |p| p.join("files"));
    let mut settings = UploadSettings::new(context.connection.clone(), files_dir).with_retry_env();
    settings.overrides.clone_from(&context.overrides);
    let read = Arc::new(AtomicU64::new(0));
    let active = Arc::new(Active {
        label: label.clone(),
        started: Instant::now(),
        read: read.clone(),
        size: std::fs::metadata(&job.log).map_or(0, |m| m.len()),
    });
    op.state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active
        .push(active.clone());
    let outcome = sync_log(
        &job.log,
        settings,
        &Until::default(),
        read.clone(),
        context.live,
    );
    op.state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active
        .retain(|a| !Arc::ptr_eq(a, &active));
    let report = match outcome {
        Ok(report) => report,
        Err(err) => {
            op.say(
                Severity::Error,
                format!("Failed to sync {:?}: {err}", job.display),
            );
            return false;
        }
    };
    if let Some(path) = &report.path {
        let name = display_name(&context.connection, &job.info, path);
        op.say(
            Severity::Info,
            format!(
                "[{label}] View run {name} at {}",
                run_url(&context.app_url, path)
            ),
        );
    }
    for warning in report.damage.iter().chain(&report.warnings) {
        op.say(Severity::Warning, format!("[{label}] {warning}"));
    }
    if ends_inside_a_record(&job.log, read.load(Ordering::Relaxed)) {
        op.say(
            Severity::Error,
            format!(
                "Failed to sync all data from {:?}: the file ends with an incomplete record. \
                 If the run is still running, retry after it finishes.",
                job.display
            ),
        );
        return false;
    }
    let marker = PathBuf::from(format!("{}.synced", job.log.display()));
    if let Err(err) = std::fs::write(&marker, b"") {
        op.say(
            Severity::Warning,
            format!("[{label}] Could not mark {} as synced: {err}", job.display),
        );
    }
    op.say(
        Severity::Info,
        format!("[{label}] Finished syncing {}", job.display),
    );
    true
}

/// The run record at the head of `log`, with the overrides applied; an error message
/// naming the log when it cannot be read or holds no run.
fn read_run_info(log: &Path, display: &str, context: &Context) -> Result<RunInfo, String> {
    match std::fs::metadata(log) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(format!("Not a .wandb file: {display}")),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("File does not exist: {display}"));
        }
        Err(err) => return Err(format!("Failed to read {display:?}: {err}")),
    }
    let mut reader =
        LogReader::open(log).map_err(|e| format!("Failed to read {display:?}: {e}"))?;
    let mut run = None;
    while let Some(item) = reader.next() {
        match item {
            Ok(record) => {
                if let Ok(record) = record.decode()
                    && let Some(RecordType::Run(found)) = record.record_type
                {
                    run = Some(found);
                    break;
                }
            }
            // Damage is read past (the upload does the same); a torn tail ends the log.
            Err(err) if err.damage().is_some_and(|d| d.is_torn_tail()) => break,
            Err(_) => {}
        }
    }
    let Some(run) = run else {
        return Err(format!(
            "Failed to read {display:?}: the log holds no run record"
        ));
    };
    let run = context.overrides.rewrite(&run);
    let start = run
        .start_time
        .as_ref()
        .map_or((0, 0), |t| (t.seconds, t.nanos));
    Ok(RunInfo {
        entity: run.entity,
        project: run.project,
        run_id: run.run_id,
        display_name: run.display_name,
        start,
    })
}

/// Whether the log goes on, after the `read` bytes the upload took, with a record it could
/// not read whole (a run still being written, or cut off by a crash).
fn ends_inside_a_record(log: &Path, read: u64) -> bool {
    let Ok(mut reader) = LogReader::open(log) else {
        return false;
    };
    if read > 0 && reader.seek_to(read).is_err() {
        return false;
    }
    while let Some(item) = reader.next() {
        if let Err(err) = item
            && err.damage().is_some_and(|d| d.is_torn_tail())
        {
            return true;
        }
    }
    false
}

/// The run's display name: the log's own, else the one the server gave it, else its id.
fn display_name(connection: &ConnectionConfig, info: &RunInfo, path: &str) -> String {
    if !info.display_name.is_empty() {
        return info.display_name.clone();
    }
    let mut parts = path.splitn(3, '/');
    let (entity, project, run) = (parts.next(), parts.next(), parts.next());
    let fallback = run.unwrap_or(path).to_owned();
    let (Some(entity), Some(project), Some(run)) = (entity, project, run) else {
        return fallback;
    };
    let until = Until {
        deadline: Some(Instant::now() + NAME_DEADLINE),
        abort: None,
    };
    Connection::new(connection.clone())
        .graphql(
            "RunDisplayName",
            client::documents::RUN_DISPLAY_NAME,
            serde_json::json!({"entity": entity, "project": project, "name": run}),
            &until,
        )
        .ok()
        .and_then(|data| {
            data["project"]["run"]["displayName"]
                .as_str()
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or(fallback)
}

/// Where the UI is: the settings' `app_url`, else the API's URL without `api.`.
fn app_url(settings: &cairn_proto::Settings, base_url: &str) -> String {
    if let Some(url) = settings.app_url.as_deref().filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_owned();
    }
    base_url
        .replacen("://api.", "://", 1)
        .trim_end_matches('/')
        .to_owned()
}

/// The run's page: `<app>/<entity>/<project>/runs/<id>` for `entity/project/id`.
fn run_url(app_url: &str, path: &str) -> String {
    match path.rsplit_once('/') {
        Some((project, run)) => format!("{app_url}/{project}/runs/{run}"),
        None => format!("{app_url}/{path}"),
    }
}

/// `user_path` made absolute with `cwd` and cleaned (`None` when neither is absolute).
fn resolve(user_path: &str, cwd: &Path) -> Option<PathBuf> {
    let path = Path::new(user_path);
    if path.is_absolute() {
        Some(clean(path))
    } else if cwd.is_absolute() {
        Some(clean(&cwd.join(path)))
    } else {
        None
    }
}

/// `path` with `.` and `..` resolved lexically.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The log as W&B prints it: its run folder when the folder is named for the run, relative
/// to `cwd` when that is shorter.
fn display_path(log: &Path, cwd: &Path) -> String {
    let shown = run_folder(log).unwrap_or(log);
    let full = shown.display().to_string();
    match relative(shown, cwd) {
        Some(rel) if rel.display().to_string().len() < full.len() => rel.display().to_string(),
        _ => full,
    }
}

/// The folder of `…/<folder>/run-<id>.wandb` when `<folder>` contains `<id>`.
fn run_folder(log: &Path) -> Option<&Path> {
    let name = log.file_name()?.to_str()?;
    let start = name.find("run-")? + 4;
    let rest = &name[start..];
    let end = rest.rfind(".wandb").filter(|&e| e > 0)?;
    let id = &rest[..end];
    let folder = log.parent()?;
    folder.file_name()?.to_str()?.contains(id).then_some(folder)
}

/// `path` relative to `base` (both absolute and clean).
fn relative(path: &Path, base: &Path) -> Option<PathBuf> {
    if !path.is_absolute() || !base.is_absolute() {
        return None;
    }
    let path: Vec<_> = path.components().collect();
    let base = clean(base);
    let base: Vec<_> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for component in &path[common..] {
        out.push(component);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Some(out)
}

/// `n` bytes for people: `512B`, `1.5KB`, `12.3MB`.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shown_as_w_and_b_shows_them() {
        let cwd = Path::new("/home/u/proj");
        let log = resolve("wandb/offline-run-1-abc/run-abc.wandb", cwd).unwrap();
        assert_eq!(
            log,
            Path::new("/home/u/proj/wandb/offline-run-1-abc/run-abc.wandb")
        );
        assert_eq!(display_path(&log, cwd), "wandb/offline-run-1-abc");
        // A log outside its run folder is shown itself.
        let moved = Path::new("/home/u/proj/elsewhere/run-abc.wandb");
        assert_eq!(display_path(moved, cwd), "elsewhere/run-abc.wandb");
        // Relative only when shorter.
        let far = Path::new("/x/offline-run-1-abc/run-abc.wandb");
        assert_eq!(display_path(far, cwd), "/x/offline-run-1-abc");
        assert_eq!(
            display_path(Path::new("/home/u/other/run-abc/run-abc.wandb"), cwd),
            "../other/run-abc"
        );
        assert_eq!(
            resolve("../a/./b/../run-x.wandb", cwd).unwrap(),
            Path::new("/home/u/a/run-x.wandb")
        );
        assert_eq!(resolve("run-x.wandb", Path::new("")), None);
        assert_eq!(
            resolve("/abs/run-x.wandb", Path::new("")).unwrap(),
            Path::new("/abs/run-x.wandb")
        );
    }

    #[test]
    fn labels_urls_and_sizes() {
        let info = RunInfo {
            entity: String::new(),
            project: "p".into(),
            run_id: "abc".into(),
            display_name: String::new(),
            start: (0, 0),
        };
        assert_eq!(info.label(), "p/abc");
        assert_eq!(
            run_url("http://h:1", "admin/p/abc"),
            "http://h:1/admin/p/runs/abc"
        );
        let settings = cairn_proto::Settings::default();
        assert_eq!(
            app_url(&settings, "https://api.wandb.ai"),
            "https://wandb.ai"
        );
        assert_eq!(human_bytes(999), "999B");
        assert_eq!(human_bytes(1500), "1.5KB");
        assert_eq!(human_bytes(12_345_678), "12.3MB");
    }
}
