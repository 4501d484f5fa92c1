//! What an upload is doing right now, for a progress display: W&B's SDK polls its core
//! for "operations" while `wandb.init` and `run.finish()` wait, and prints them ("updating
//! run metadata; uploading artifact model"), so a long finish is not a silent one.
//!
//! [`Operations`] is shared (`Arc`) between the uploader's threads, which register what
//! they start ([`Operations::start`] returns a [`Running`] that unregisters itself when
//! dropped, whatever way the work ends), and whoever displays them
//! ([`Operations::snapshot`]). It holds only the operations in flight: a few strings.
//!
//! While a request of an operation is being retried, the operation says why
//! (`error_status`, which W&B's SDK prints under it on a terminal): the HTTP layer calls
//! `note_retry` on the thread that started the operation, without knowing of it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The operations in flight of one upload.
#[derive(Debug, Default)]
pub struct Operations {
    next: AtomicU64,
    live: Mutex<Vec<Entry>>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    desc: String,
    started: Instant,
    progress: String,
    error_status: String,
}

thread_local! {
    /// The operations this thread has started and not ended, innermost last.
    static CURRENT: RefCell<Vec<(Weak<Operations>, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Tells the innermost operation this thread runs that a request is being retried, and
/// why (`None`: it went through).
pub(crate) fn note_retry(why: Option<&str>) {
    let current = CURRENT.with(|current| current.borrow().last().cloned());
    if let Some((operations, id)) = current
        && let Some(operations) = operations.upgrade()
        && let Some(entry) = operations.live().iter_mut().find(|entry| entry.id == id)
    {
        entry.error_status = why
            .map(|why| format!("retrying: {why}"))
            .unwrap_or_default();
    }
}

/// One operation in flight, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationView {
    /// What is being done (`uploading artifact model`).
    pub desc: String,
    /// How long it has been going.
    pub runtime: Duration,
    /// How far it is (`2/5 files`), or empty.
    pub progress: String,
    /// Why a request of it is being retried, or empty.
    pub error_status: String,
}

/// An operation registered with [`Operations::start`]; unregistered when dropped.
#[derive(Debug)]
pub struct Running {
    operations: Arc<Operations>,
    id: u64,
}

impl Operations {
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an operation described by `desc` until the returned guard is dropped.
    pub fn start(self: &Arc<Self>, desc: impl Into<String>) -> Running {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.live().push(Entry {
            id,
            desc: desc.into(),
            started: Instant::now(),
            progress: String::new(),
            error_status: String::new(),
        });
        CURRENT.with(|current| current.borrow_mut().push((Arc::downgrade(self), id)));
        Running {
            operations: self.clone(),
            id,
        }
    }

    /// The operations in flight, oldest first.
    pub fn snapshot(&self) -> Vec<OperationView> {
        let now = Instant::now();
        self.live()
            .iter()
            .map(|entry| OperationView {
                desc: entry.desc.clone(),
                runtime: now.saturating_duration_since(entry.started),
                progress: entry.progress.clone(),
                error_status: entry.error_status.clone(),
            })
            .collect()
    }
}

impl Running {
    /// Sets how far the operation is (`2/5 files`).
    pub fn progress(&self, progress: impl Into<String>) {
        if let Some(entry) = self
            .operations
            .live()
            .iter_mut()
            .find(|entry| entry.id == self.id)
        {
            entry.progress = progress.into();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.operations.live().retain(|entry| entry.id != self.id);
        let this = Arc::downgrade(&self.operations);
        CURRENT.with(|current| {
            current
                .borrow_mut()
                .retain(|(ops, id)| !(*id == self.id && Weak::ptr_eq(ops, &this)));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_listed_while_they_run() {
        let operations = Arc::new(Operations::default());
        let metadata = operations.start("updating run metadata");
        let files = operations.start("uploading 2 files");
        files.progress("1/2 files");
        let shown: Vec<(String, String)> = operations
            .snapshot()
            .into_iter()
            .map(|v| (v.desc, v.progress))
            .collect();
        assert_eq!(
            shown,
            [
                ("updating run metadata".to_owned(), String::new()),
                ("uploading 2 files".to_owned(), "1/2 files".to_owned()),
            ]
        );
        drop(metadata);
        assert_eq!(operations.snapshot().len(), 1);
        drop(files);
        assert!(operations.snapshot().is_empty());
    }

    #[test]
    fn a_retry_is_noted_on_the_threads_innermost_operation() {
        let operations = Arc::new(Operations::default());
        note_retry(Some("nothing runs")); // no operation: nothing happens
        let outer = operations.start("outer");
        let inner = operations.start("inner");
        note_retry(Some("HTTP 500"));
        let status: Vec<String> = operations
            .snapshot()
            .into_iter()
            .map(|v| v.error_status)
            .collect();
        assert_eq!(status, ["", "retrying: HTTP 500"]);
        std::thread::scope(|s| {
            // Another thread's retries are not this thread's operations'.
            s.spawn(|| note_retry(Some("elsewhere")));
        });
        drop(inner);
        note_retry(Some("HTTP 502"));
        assert_eq!(operations.snapshot()[0].error_status, "retrying: HTTP 502");
        note_retry(None);
        assert_eq!(operations.snapshot()[0].error_status, "");
        drop(outer);
    }
}
