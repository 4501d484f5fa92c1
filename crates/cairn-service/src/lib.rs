//! cairn's core as a service: the process the unmodified `wandb` Python SDK starts as
//! `wandb-core` and talks to over a socket (the contract: `service-protocol.md` in the
//! project's shared references).
//!
//! [`serve`] takes the launch [`Flags`](launch::Flags): it checks that its parent is the
//! SDK process that started it (else it exits at once, as `wandb-core` does), opens the
//! listeners and writes the port file ([`listen`]), then serves every connection on its
//! own thread ([`connection`]), reading [`frame`]s of `ServerRequest`s and answering
//! `ServerResponse`s. A connection whose stream breaks is closed alone; the service goes on.
//!
//! It ends when the owning SDK process says `inform_teardown`, when its parent dies
//! (checked every 250 ms), or — detached — when no connection has been open for the idle
//! timeout. It then stops accepting, removes its socket folder, and — when no one tore it
//! down — lets the connections drain and finishes every open run, so every record it
//! received is in its run's log; then it returns the [`Outcome`]. What happened along the
//! way goes to a [`Reporter`], never to the terminal: the core's stdout and stderr are the
//! user's (the one exception is [`ServiceEvent::Footer`], the end of a run the script
//! never finished, which the binary prints as W&B's core does).
//!
//! Runs ([`runs`]) are cairn-core pipelines, one per `inform_init`: the SDK's records
//! become their inputs, its requests are answered from their state, and `exit` is answered
//! once the run is finished — online, once it is uploaded (cairn-core's uploader follows
//! the log). A child process attaches to a run (`inform_attach`, `attach`) and feeds the
//! same pipeline from its own connection. Resuming asks the server first (`resume` in the
//! settings). Handler warnings reach the user through the held `internal_messages` poll.
//! The public-API proxy ([`api`]) carries `wandb.login()` and `wandb.Api()`, including
//! `scan_history()` (`history`), `download_history_exports()` (`exports`), file downloads
//! and console reads (`reads`), and file uploads, `run.stop()` and custom charts
//! (`writes`). `wandb sync` runs through `sync` (`init_sync`, `sync`, `sync_status`). What
//! the proxy, a run's online start and `sync` share — the connection the settings name,
//! the deadline of a request on the SDK's behalf — is in `remote`; every answer goes
//! through its connection's `responder`. Request kinds that are not built (the sweep
//! scheduler, `authenticate`, and the API requests `api` lists) get an error naming their
//! kind.

mod api;
pub mod connection;
mod exports;
pub mod frame;
mod history;
pub mod launch;
pub mod listen;
mod reads;
mod remote;
mod responder;
mod runs;
mod shared;
pub mod spin;
mod sync;
mod writes;

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use launch::Flags;
use listen::Listeners;
use shared::Shared;
pub use shared::{Outcome, Reporter, ServiceEvent};

/// How often the parent and the idle timer are checked.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long connections may take to drain after the parent died.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// A failure to start serving.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// `--port-filename` is missing.
    #[error("--port-filename is required")]
    NoPortFile,
    /// The listeners could not be opened.
    #[error("cannot open the service socket: {0}")]
    Listen(#[source] io::Error),
    /// The port file could not be written.
    #[error("cannot write the port file {path}: {source}")]
    PortFile {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Serves until torn down, orphaned or idle (see the module doc).
pub fn serve(flags: &Flags, reporter: Arc<dyn Reporter>) -> Result<Outcome, ServiceError> {
    let pid_arg = flags.pid.unwrap_or(0);
    if !flags.detached
        && flags
            .pid
            .is_some_and(|pid| std::os::unix::process::parent_id() != pid)
    {
        return Ok(Outcome::NotMyParent);
    }
    let port_file = flags
        .port_filename
        .as_ref()
        .ok_or(ServiceError::NoPortFile)?;
    let listeners =
        Listeners::open(pid_arg, flags.listen_on_localhost).map_err(ServiceError::Listen)?;
    let text = listeners.port_file_text().map_err(ServiceError::Listen)?;
    listen::write_atomically(port_file, &text).map_err(|source| ServiceError::PortFile {
        path: port_file.display().to_string(),
        source,
    })?;
    let tcp_port = listeners
        .tcp
        .as_ref()
        .and_then(|t| t.local_addr().ok())
        .map(|a| a.port());
    let shared = Arc::new(Shared::new(listeners.unix_path.clone(), tcp_port, reporter));
    shared.reporter.report(ServiceEvent::Listening {
        unix: listeners.unix_path.display().to_string(),
        tcp: tcp_port,
    });
    let watcher = spawn_watcher(shared.clone(), flags);
    let mut next_id = 0u64;
    if let Some(tcp) = listeners.tcp.as_ref().and_then(|t| t.try_clone().ok()) {
        let shared = shared.clone();
        let first_id = u64::MAX / 2;
        let _ = thread::Builder::new()
            .name("cairn-core-tcp".into())
            .spawn(move || {
                for (n, stream) in (first_id..).zip(tcp.incoming()) {
                    if shared.stopping() {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let _ = stream.set_nodelay(true);
                        accept(&shared, n, stream);
                    }
                }
            });
    }
    for stream in listeners.unix.incoming() {
        if shared.stopping() {
            break;
        }
        if let Ok(stream) = stream {
            next_id += 1;
            accept(&shared, next_id, stream);
        }
    }
    listeners.close();
    // Not joined: it sees `stopping` within one period and ends by itself; waiting for it
    // would add up to that period to every exit of the SDK's process.
    drop(watcher);
    let outcome = shared.outcome();
    if matches!(outcome, Outcome::ParentGone | Outcome::Idle) {
        // Nobody will finish these runs: let the readers drain what the SDK already sent
        // (its sockets close with it), then finish every run so all of it is in the log.
        // W&B's core exits here and keeps nothing.
        let deadline = Instant::now() + DRAIN_WAIT;
        while shared.idle_for().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        shared.runs.finish_all(1, shared.reporter.as_ref());
    }
    Ok(outcome)
}

/// Starts a connection's thread.
fn accept<S>(shared: &Arc<Shared>, id: u64, stream: S)
where
    S: connection::Stream,
{
    shared.connection_opened();
    shared.reporter.report(ServiceEvent::Connected(id));
    let for_thread = shared.clone();
    let spawned = thread::Builder::new()
        .name(format!("cairn-conn-{id}"))
        .spawn(move || connection::serve(&for_thread, id, stream));
    if spawned.is_err() {
        shared.connection_closed();
    }
}

/// Watches the parent (unless detached) and the idle timer (when detached with one).
fn spawn_watcher(shared: Arc<Shared>, flags: &Flags) -> thread::JoinHandle<()> {
    let parent = (!flags.detached).then_some(flags.pid).flatten();
    let idle = flags.detached.then_some(flags.idle_timeout).flatten();
    thread::Builder::new()
        .name("cairn-core-watch".into())
        .spawn(move || {
            while !shared.stopping() {
                thread::sleep(WATCH_EVERY);
                if parent.is_some_and(|pid| std::os::unix::process::parent_id() != pid) {
                    shared.stop(Outcome::ParentGone);
                }
                if let (Some(limit), Some(idle_for)) = (idle, shared.idle_for())
                    && idle_for >= limit
                {
                    shared.stop(Outcome::Idle);
                }
            }
        })
        .unwrap_or_else(|_| thread::spawn(|| {}))
}
