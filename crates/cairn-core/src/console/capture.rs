//! Capture of the process's real stdout and stderr (fd 1 and fd 2), Unix only.
//!
//! [`ConsoleCapture::start`] creates one pipe per stream, keeps a duplicate of the original
//! descriptor aside and `dup2`s the pipe's write end onto fd 1 / fd 2. One named thread per
//! stream (`cairn-console-stdout`, `cairn-console-stderr`) reads its pipe in chunks of up to
//! [`READ_BUFFER_BYTES`], writes each chunk straight through to the original descriptor (so the
//! user sees their output as before) and then calls the sink with `(stream, chunk, arrival
//! time)`. The hot path is `read`, `write`, sink: no scanning, no copying. Everything written to
//! fd 1/2 is captured, whatever wrote it: Rust's `print!`, C libraries, and child processes
//! started while the capture runs (they inherit the pipes).
//!
//! Latency and batching: output after a quiet moment is passed through at once. During a burst
//! (a chunk within [`BATCH_WINDOW`] of the previous one) the reader pauses for `BATCH_WINDOW`
//! (0.5 ms) after each chunk, so that a stream of small writes (`println!` is one `write(2)`
//! per line) is read in large chunks: the program then pays one pipe write per line instead of
//! also waking the reader for every line, which tripled the cost of a line in measurements. The
//! terminal lags by at most that half millisecond.
//!
//! Input: whatever the process writes to fd 1 and fd 2. Output: the sink calls, and the bytes
//! passed through. Per stream, chunks reach the sink in write order; between stdout and stderr
//! the order is only as good as the arrival timestamps (two threads read two pipes).
//!
//! Backpressure: none added. If the original descriptor is slow (a paused terminal, a full
//! pipe), the reader waits on it, the capture pipe fills and the program's writes block, exactly
//! as they would without capture. The sink runs on the reader thread, so it must be quick and
//! must never block on anything the program may hold, nor write to stdout/stderr itself (that
//! would loop back into the capture); the SDK's sink hands chunks to a channel. A sink that
//! panics is disabled (output keeps flowing to the terminal). If writing to the original
//! descriptor fails (e.g. the reading end of a shell pipe went away), pass-through stops and
//! capture goes on.
//!
//! Shutdown: [`ConsoleCapture::stop`] (or, best effort, `Drop`) flushes Rust's own
//! `std::io::stdout()`/`stderr()` buffers, restores fd 1/2 from the saved duplicates, then
//! wakes the readers, which drain their pipes and exit; it returns once both threads are done
//! with the sink. Everything written to fd 1/2 before `stop` is passed through and reaches the
//! sink. Text sitting in *other* user-space buffers (a C `FILE*`, a `BufWriter` around stdout,
//! another thread's `StdoutLock`) is not flushed by `stop`: the SDK flushes what it owns first.
//! A child process that still holds a pipe after `stop` (a background job) delays `stop` by at
//! most [`STOP_GRACE`] once it is quiet, [`STOP_DRAIN_LIMIT`] if it keeps writing: its reader
//! then stops calling the sink, keeps passing its output through until the child closes the
//! pipe, and is detached. `stop` drops the sink before returning.
//! Since `stop` waits for the pass-through, a terminal that takes no output (paused with
//! Ctrl-S) holds it up, as it would hold up the program's own writes.
//! If the process ends without `stop` (`std::process::exit`, an abort, a signal), what is still
//! in the pipes reaches neither the terminal nor the sink: usually nothing after a quiet moment,
//! at most about one [`BATCH_WINDOW`] of a burst. The SDK stops the capture on its exit paths
//! (finish, its panic hook) for that reason.
//!
//! Only one capture can be active per process ([`ConsoleError::AlreadyActive`]).

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use rustix::io::{Errno, read, write};
use rustix::pipe::{PipeFlags, pipe_with};

use super::Stream;

/// Size of each read from a capture pipe, and so the largest chunk a sink receives.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Capacity requested for each capture pipe (Linux only, best effort; the default is 64 KiB).
/// A larger pipe lets bursts of output proceed while the reader is busy.
pub const PIPE_CAPACITY_BYTES: usize = 1024 * 1024;

/// During a burst of output (a chunk arriving within this time of the previous one), how long a
/// reader lets output accumulate after each chunk before reading again (not when the chunk
/// filled the read buffer, nor while stopping). It turns a burst of small writes into a few
/// large reads instead of one reader wake-up per write; it adds at most this much latency to
/// what the terminal shows.
pub const BATCH_WINDOW: Duration = Duration::from_micros(500);

/// After `stop`, how long a reader keeps waiting for more output or end-of-file once its pipe is
/// empty: covers writes still in flight when the descriptors were restored.
pub const STOP_GRACE: Duration = Duration::from_millis(100);

/// After `stop`, the longest a reader keeps delivering output that keeps arriving (from a child
/// process that still holds the pipe) before it lets go; bounds how long `stop` can take.
pub const STOP_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Set while a capture is active: fd 1/2 can only be redirected once at a time.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The callback that receives captured chunks.
type BoxedSink = Box<dyn FnMut(Stream, &[u8], SystemTime) + Send>;

/// Errors of starting or stopping a capture.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Another `ConsoleCapture` is active in this process.
    #[error("console capture is already active in this process")]
    AlreadyActive,
    /// A system call failed (`op` names it).
    #[error("console capture: {op} failed")]
    Io {
        /// What was being done, e.g. `"dup2 stdout"`.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A reader thread panicked (a bug: sink panics are caught and disable the sink).
    #[error("console capture: the {stream} reader thread panicked")]
    ReaderPanicked {
        /// The stream of the reader.
        stream: Stream,
    },
}

impl ConsoleError {
    /// Whether starting failed only because another capture is active.
    pub fn is_already_active(&self) -> bool {
        matches!(self, ConsoleError::AlreadyActive)
    }

    fn io(op: &'static str) -> impl FnOnce(Errno) -> ConsoleError {
        move |errno| ConsoleError::Io {
            op,
            source: errno.into(),
        }
    }
}

/// The sink, shared by both reader threads.
struct SinkSlot {
    /// `None` once it panicked (it is not called again) or the capture stopped (`stop` drops it,
    /// so whatever it owns, e.g. a channel sender, is released even if a reader is detached).
    sink: Option<BoxedSink>,
}

impl std::fmt::Debug for SinkSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkSlot")
            .field("active", &self.sink.is_some())
            .finish()
    }
}

/// One stream's redirection and reader.
#[derive(Debug)]
struct Redirect {
    stream: Stream,
    /// The original fd 1/2, restored by `stop`.
    saved: OwnedFd,
    /// The reader thread; `None` once joined or detached.
    thread: Option<JoinHandle<()>>,
    /// The reader sends (or drops the sender) once it will not call the sink again.
    done: mpsc::Receiver<()>,
}

/// An active capture of fd 1 and fd 2; see the module docs. Stop it with
/// [`ConsoleCapture::stop`]; dropping it stops it too, ignoring errors.
#[derive(Debug)]
#[must_use = "dropping the capture stops it"]
pub struct ConsoleCapture {
    redirects: Vec<Redirect>,
    /// Write end of the wake pipe, polled by both readers; dropped by `stop` to tell them the
    /// descriptors are restored and they should drain and exit.
    wake: Option<OwnedFd>,
    /// The sink, emptied by `stop` once no reader calls it any more.
    sink: Arc<Mutex<SinkSlot>>,
}

impl ConsoleCapture {
    /// Redirects fd 1 and fd 2 into pipes read by two threads; see the module docs.
    ///
    /// `sink` is called from the reader threads (one call at a time) with each chunk as it
    /// arrives. Rust's `std::io::stdout()` is flushed first, so earlier output is not captured.
    pub fn start(
        sink: impl FnMut(Stream, &[u8], SystemTime) + Send + 'static,
    ) -> Result<ConsoleCapture, ConsoleError> {
        if ACTIVE
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(ConsoleError::AlreadyActive);
        }
        let result = Self::start_inner(Box::new(sink));
        if result.is_err() {
            ACTIVE.store(false, Ordering::Release);
        }
        result
    }

    fn start_inner(sink: BoxedSink) -> Result<ConsoleCapture, ConsoleError> {
        let sink = Arc::new(Mutex::new(SinkSlot { sink: Some(sink) }));
        let (wake_read, wake_write) =
            pipe_with(PipeFlags::CLOEXEC).map_err(ConsoleError::io("pipe"))?;
        let mut capture = ConsoleCapture {
            redirects: Vec::new(),
            wake: Some(wake_write),
            sink: Arc::clone(&sink),
        };
        let mut write_ends = Vec::new();
        for stream in Stream::ALL {
            let (saved, pipe_read, pipe_write) = open_stream(stream)?;
            let passthrough = saved.try_clone().map_err(|source| ConsoleError::Io {
                op: "dup saved descriptor",
                source,
            })?;
            let wake = wake_read.try_clone().map_err(|source| ConsoleError::Io {
                op: "dup wake pipe",
                source,
            })?;
            let (done_tx, done) = mpsc::channel();
            let reader = Reader {
                stream,
                pipe: pipe_read,
                wake,
                passthrough: Some(passthrough),
                sink: Arc::clone(&sink),
                done: Some(done_tx),
            };
            let thread = std::thread::Builder::new()
                .name(format!("cairn-console-{stream}"))
                .spawn(move || reader.run())
                .map_err(|source| ConsoleError::Io {
                    op: "spawn reader thread",
                    source,
                })?;
            // On an error below, dropping `capture` wakes and joins the readers started so far.
            capture.redirects.push(Redirect {
                stream,
                saved,
                thread: Some(thread),
                done,
            });
            write_ends.push(pipe_write);
        }
        // Output buffered before the capture belongs to the terminal only.
        flush_std();
        for (redirect, write_end) in capture.redirects.iter().zip(&write_ends) {
            let result = match redirect.stream {
                Stream::Stdout => rustix::stdio::dup2_stdout(write_end),
                Stream::Stderr => rustix::stdio::dup2_stderr(write_end),
            };
            // On error, dropping `capture` restores whichever descriptor was already redirected.
            result.map_err(ConsoleError::io(match redirect.stream {
                Stream::Stdout => "dup2 stdout",
                Stream::Stderr => "dup2 stderr",
            }))?;
        }
        // fd 1/2 now hold the only write ends: once `stop` restores them (and children that
        // inherited them exit), the readers see end-of-file.
        drop(write_ends);
        Ok(capture)
    }

    /// Stops capturing: flushes Rust's stdout/stderr buffers, restores fd 1/2 and waits until
    /// every byte written before this call has been passed through and given to the sink.
    ///
    /// `std::io::stdout()` is line-buffered: a `print!` without a newline sits in its buffer
    /// until a flush, so this flushes it (and stderr) first. Other buffers are the caller's to
    /// flush beforehand: a `BufWriter` around stdout, C's `stdout` (`FILE*`), Python's
    /// `sys.stdout`. A thread holding `std::io::stdout().lock()` makes this wait for it.
    pub fn stop(mut self) -> Result<(), ConsoleError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ConsoleError> {
        let Some(wake) = self.wake.take() else {
            return Ok(()); // Already stopped.
        };
        let mut first_error = None;
        flush_std();
        for redirect in &self.redirects {
            let result = match redirect.stream {
                Stream::Stdout => rustix::stdio::dup2_stdout(&redirect.saved),
                Stream::Stderr => rustix::stdio::dup2_stderr(&redirect.saved),
            };
            if let Err(errno) = result {
                first_error.get_or_insert(ConsoleError::Io {
                    op: "restore descriptor",
                    source: errno.into(),
                });
            }
        }
        drop(wake); // Readers see the wake pipe hang up: drain, then exit.
        for redirect in &mut self.redirects {
            // `Err` means the reader already dropped its sender: it is done too.
            let _ = redirect.done.recv();
            let Some(thread) = redirect.thread.take() else {
                continue;
            };
            if thread.is_finished() {
                if thread.join().is_err() {
                    first_error.get_or_insert(ConsoleError::ReaderPanicked {
                        stream: redirect.stream,
                    });
                }
            } else {
                // Still passing through the output of a child that holds the pipe: detach.
                drop(thread);
            }
        }
        // No reader calls the sink any more: release what it owns now.
        let sink = match self.sink.lock() {
            Ok(mut slot) => slot.sink.take(),
            Err(poisoned) => poisoned.into_inner().sink.take(),
        };
        drop(sink);
        ACTIVE.store(false, Ordering::Release);
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for ConsoleCapture {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Duplicates the original descriptor of `stream` and creates its capture pipe (read end
/// non-blocking, so the reader can poll it together with the wake pipe).
fn open_stream(stream: Stream) -> Result<(OwnedFd, OwnedFd, OwnedFd), ConsoleError> {
    let original = match stream {
        Stream::Stdout => std::io::stdout().as_fd().try_clone_to_owned(),
        Stream::Stderr => std::io::stderr().as_fd().try_clone_to_owned(),
    };
    let saved = original.map_err(|source| ConsoleError::Io {
        op: match stream {
            Stream::Stdout => "dup stdout",
            Stream::Stderr => "dup stderr",
        },
        source,
    })?;
    let (pipe_read, pipe_write) =
        pipe_with(PipeFlags::CLOEXEC).map_err(ConsoleError::io("pipe"))?;
    let flags = fcntl_getfl(&pipe_read).map_err(ConsoleError::io("fcntl"))?;
    fcntl_setfl(&pipe_read, flags | OFlags::NONBLOCK).map_err(ConsoleError::io("fcntl"))?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Best effort: the limit for unprivileged users is /proc/sys/fs/pipe-max-size (1 MiB).
        let _ = rustix::pipe::fcntl_setpipe_size(&pipe_write, PIPE_CAPACITY_BYTES);
    }
    Ok((saved, pipe_read, pipe_write))
}

/// Flushes the buffers of Rust's own stdout and stderr handles (errors are the terminal's).
fn flush_std() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// What a reader does with the chunks it reads.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Pass through and deliver; pause during bursts.
    Capturing,
    /// `stop` restored the descriptors: deliver what is left in the pipe, without pauses.
    Draining {
        /// When the wake pipe hung up.
        started: Instant,
        /// How long to wait for more once the pipe is empty.
        quiet_until: Instant,
    },
    /// A child process still holds the pipe after `stop`: pass its output through only.
    PassingThrough,
}

/// State of one reader thread.
struct Reader {
    stream: Stream,
    /// Read end of the capture pipe (non-blocking).
    pipe: OwnedFd,
    /// Read end of the wake pipe; hangs up when `stop` has restored the descriptors.
    wake: OwnedFd,
    /// Duplicate of the original descriptor; `None` after a failed write.
    passthrough: Option<OwnedFd>,
    sink: Arc<Mutex<SinkSlot>>,
    /// Signals `stop` (by sending, or by being dropped) that the sink will not be called again.
    done: Option<mpsc::Sender<()>>,
}

impl Reader {
    fn run(mut self) {
        let mut buffer = vec![0u8; READ_BUFFER_BYTES];
        let mut phase = Phase::Capturing;
        // When the previous chunk was handed over: a chunk soon after it is part of a burst.
        let mut last_chunk_done: Option<Instant> = None;
        loop {
            match read(&self.pipe, &mut buffer) {
                Ok(0) => break, // Every write end is closed.
                Ok(n) => {
                    let arrived = SystemTime::now();
                    let bursting =
                        last_chunk_done.is_some_and(|done| done.elapsed() < BATCH_WINDOW);
                    let chunk = &buffer[..n];
                    self.pass_through(chunk);
                    match phase {
                        Phase::Capturing => {
                            self.deliver(chunk, arrived);
                            if bursting && n < buffer.len() {
                                // Let the burst accumulate (a full buffer: more is waiting).
                                std::thread::sleep(BATCH_WINDOW);
                            }
                        }
                        Phase::Draining { started, .. } => {
                            self.deliver(chunk, arrived);
                            if started.elapsed() > STOP_DRAIN_LIMIT {
                                // A child keeps writing: stop capturing, keep passing through.
                                phase = self.detach();
                            }
                        }
                        Phase::PassingThrough => {}
                    }
                    last_chunk_done = Some(Instant::now());
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => match phase {
                    Phase::Capturing => {
                        if self.wait_for_data_or_wake() {
                            let started = Instant::now();
                            let quiet_until = started + STOP_GRACE;
                            phase = Phase::Draining {
                                started,
                                quiet_until,
                            };
                        }
                    }
                    Phase::Draining { quiet_until, .. } => {
                        // Everything written before `stop` has been read; wait briefly for
                        // writes that were in flight, then let a lingering child's output go.
                        let left = quiet_until.saturating_duration_since(Instant::now());
                        if left.is_zero() || !self.wait_for_data(Some(left)) {
                            phase = self.detach();
                        }
                    }
                    Phase::PassingThrough => {
                        self.wait_for_data(None);
                    }
                },
                Err(_) => break,
            }
        }
    }

    /// Stops calling the sink and tells `stop` so; the reader keeps passing output through.
    fn detach(&mut self) -> Phase {
        self.done = None;
        Phase::PassingThrough
    }

    /// Blocks until the pipe is readable (true: then the wake pipe also hung up) or the wake
    /// pipe hangs up; returns whether it did.
    fn wait_for_data_or_wake(&self) -> bool {
        let mut fds = [
            PollFd::new(&self.pipe, PollFlags::IN),
            PollFd::new(&self.wake, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => !fds[1].revents().is_empty(),
            Err(_) => false, // EINTR: the caller reads again.
        }
    }

    /// Blocks until the pipe is readable or hangs up, or `timeout` passes (returns false).
    fn wait_for_data(&self, timeout: Option<Duration>) -> bool {
        let timeout = timeout.and_then(|t| Timespec::try_from(t).ok());
        let mut fds = [PollFd::new(&self.pipe, PollFlags::IN)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(ready) => ready > 0,
            Err(_) => true, // EINTR: read again.
        }
    }

    /// Writes `chunk` to the original descriptor; gives up on it after an error.
    fn pass_through(&mut self, mut chunk: &[u8]) {
        let Some(out) = &self.passthrough else {
            return;
        };
        while !chunk.is_empty() {
            match write(out, chunk) {
                Ok(n) => chunk = &chunk[n..],
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    // The original descriptor is non-blocking (someone set O_NONBLOCK on a
                    // shared terminal): wait until it takes more.
                    let mut fds = [PollFd::new(out, PollFlags::OUT)];
                    let _ = poll(&mut fds, None);
                }
                Err(_) => {
                    self.passthrough = None;
                    return;
                }
            }
        }
    }

    /// Calls the sink, disabling it if it panics.
    fn deliver(&self, chunk: &[u8], arrived: SystemTime) {
        let Ok(mut slot) = self.sink.lock() else {
            return; // Poisoned: cannot happen since panics are caught inside the lock.
        };
        let Some(sink) = slot.sink.as_mut() else {
            return;
        };
        let stream = self.stream;
        if catch_unwind(AssertUnwindSafe(|| sink(stream, chunk, arrived))).is_err() {
            slot.sink = None;
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}
