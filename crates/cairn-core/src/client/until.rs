//! How long a call to the server may keep trying: an optional deadline and an optional abort
//! flag ([`Until`]), checked before each attempt and during each wait.
//!
//! Waits are slept in slices of [`WAIT_SLICE`], so a raised flag is noticed within one slice.
//! Pure data plus a sleeping helper: no thread, nothing to shut down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Waits are slept in slices this long, so that an abort is noticed quickly.
pub const WAIT_SLICE: Duration = Duration::from_millis(50);

/// How long a call may keep trying.
#[derive(Debug, Clone, Default)]
pub struct Until {
    /// No attempt starts, and no wait ends, after this instant.
    pub deadline: Option<Instant>,
    /// When raised, the call stops at its next check and returns
    /// [`HttpError::GaveUp`](super::HttpError::GaveUp).
    pub abort: Option<Arc<AtomicBool>>,
}

impl Until {
    /// No deadline and no abort flag: retry until the policy runs out.
    pub fn forever() -> Self {
        Self::default()
    }

    /// Only a deadline.
    pub fn deadline(at: Instant) -> Self {
        Self {
            deadline: Some(at),
            abort: None,
        }
    }

    pub(crate) fn aborted(&self) -> bool {
        self.abort
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// Sleeps for `wait` in slices; false when aborted meanwhile. (Callers check beforehand
    /// that the wait ends by the deadline.)
    pub(crate) fn sleep(&self, wait: Duration) -> bool {
        let end = Instant::now().checked_add(wait);
        loop {
            if self.aborted() {
                return false;
            }
            let now = Instant::now();
            let left = match end {
                Some(end) if end <= now => return true,
                Some(end) => end - now,
                None => WAIT_SLICE,
            };
            std::thread::sleep(left.min(WAIT_SLICE));
        }
    }
}
