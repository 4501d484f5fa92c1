//! What the service loop and its connection threads share: [`Shared`] (the runs, the API
//! proxy's and `sync`'s state, the reporter, the open-connection count and the stop
//! flag), and what the service reports and returns ([`ServiceEvent`], [`Reporter`],
//! [`Outcome`]). Connection threads read it and call [`Shared::stop`]; the loop in
//! [`crate::serve`] owns the `Arc` and ends when `stop` wakes it. No threads of its own.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{api, runs, sync};

/// What the service tells its operator (the binary writes these to its log file).
#[derive(Debug)]
pub enum ServiceEvent {
    /// Listening; the port file is written.
    Listening { unix: String, tcp: Option<u16> },
    /// A connection was opened (its number) or closed, with the reason when it broke.
    Connected(u64),
    /// A connection ended: cleanly (`None`) or because its stream broke.
    Disconnected {
        connection: u64,
        error: Option<String>,
    },
    /// A request this service cannot answer yet, or does not know.
    Unsupported { connection: u64, kind: &'static str },
    /// A request without an id that nothing answers (logged, dropped).
    Ignored { connection: u64, kind: &'static str },
    /// A run the user never finished was finished by the service: what the SDK would
    /// have printed at its end (where the run is, where its logs are), for the user's
    /// terminal.
    Footer { run: String, lines: Vec<String> },
}

/// Where [`ServiceEvent`]s go.
pub trait Reporter: Send + Sync {
    /// Records one event.
    fn report(&self, event: ServiceEvent);
}

/// Why the service stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its parent is not the `--pid` process: `wandb-core` exits at once then.
    NotMyParent,
    /// The owning SDK process tore it down, with its exit code.
    TornDown { exit_code: i32 },
    /// The parent process died.
    ParentGone,
    /// Detached, and no connection for the idle timeout.
    Idle,
}

/// State every connection thread shares with the service loop.
pub(crate) struct Shared {
    stopping: AtomicBool,
    outcome: Mutex<Option<Outcome>>,
    open_connections: Mutex<(usize, Instant)>,
    unix_path: std::path::PathBuf,
    tcp_port: Option<u16>,
    pub(crate) runs: runs::Runs,
    pub(crate) apis: api::Apis,
    pub(crate) syncs: sync::Syncs,
    pub(crate) reporter: Arc<dyn Reporter>,
}

impl Shared {
    /// The state of a service listening on `unix_path` (and `tcp_port`), reporting to
    /// `reporter`.
    pub(crate) fn new(
        unix_path: std::path::PathBuf,
        tcp_port: Option<u16>,
        reporter: Arc<dyn Reporter>,
    ) -> Shared {
        Shared {
            stopping: AtomicBool::new(false),
            outcome: Mutex::new(None),
            open_connections: Mutex::new((0, Instant::now())),
            unix_path,
            tcp_port,
            runs: runs::Runs::default(),
            apis: api::Apis::default(),
            syncs: sync::Syncs::default(),
            reporter,
        }
    }

    /// Ends the service with `outcome` (the first one given wins) and wakes the accept
    /// loop by connecting to it.
    pub(crate) fn stop(&self, outcome: Outcome) {
        {
            let mut slot = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(outcome);
        }
        if !self.stopping.swap(true, Ordering::SeqCst) {
            let _ = UnixStream::connect(&self.unix_path);
            if let Some(port) = self.tcp_port {
                let _ = std::net::TcpStream::connect(("127.0.0.1", port));
            }
        }
    }

    /// Why the service stopped (torn down with code 0 when no one said).
    pub(crate) fn outcome(&self) -> Outcome {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(Outcome::TornDown { exit_code: 0 })
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub(crate) fn connection_opened(&self) {
        let mut open = self
            .open_connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.0 += 1;
    }

    pub(crate) fn connection_closed(&self) {
        let mut open = self
            .open_connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        open.1 = Instant::now();
    }

    /// How long no connection has been open (`None` while one is).
    pub(crate) fn idle_for(&self) -> Option<Duration> {
        let open = self
            .open_connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (open.0 == 0).then(|| open.1.elapsed())
    }
}
