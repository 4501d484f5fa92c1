//! Where the outcome of each logged artifact is published, for the SDK's handles to wait on.
//!
//! An [`ArtifactBoard`] is shared (`Arc`) between the uploader's artifact worker, which
//! publishes each outcome under the artifact's client id, and the handle `log_artifact`
//! returned, which waits there ([`ArtifactBoard::wait`]). It also carries the history step
//! each artifact was logged at, from the SDK to the worker. Memory: one outcome per logged
//! artifact. Nothing to shut down; a waiter gives up at its timeout.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::save::Saved;

/// What became of a logged artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtifactOutcome {
    /// Written to the log (offline: `cairn sync` uploads it later).
    Recorded,
    /// Committed on the server.
    Saved(Saved),
    /// Hashing or uploading failed.
    Failed(String),
}

/// Outcomes of a run's artifacts by client id, for the SDK's handles to wait on.
#[derive(Debug, Default)]
pub struct ArtifactBoard {
    outcomes: Mutex<HashMap<String, ArtifactOutcome>>,
    changed: Condvar,
    /// The history step each artifact was logged at, when its logger said (W&B's
    /// `log_artifact` request carries it; the log's artifact record does not).
    steps: Mutex<HashMap<String, i64>>,
}

impl ArtifactBoard {
    /// Notes that artifact `client_id` was logged at history step `step` (its version
    /// is then created with `historyStep`).
    pub fn set_history_step(&self, client_id: &str, step: i64) {
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        steps.insert(client_id.to_owned(), step);
    }

    /// The history step artifact `client_id` was logged at, if noted.
    pub fn history_step(&self, client_id: &str) -> Option<i64> {
        let steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        steps.get(client_id).copied()
    }

    /// Records the outcome of artifact `client_id` (replacing an earlier one).
    pub fn publish(&self, client_id: &str, outcome: ArtifactOutcome) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        outcomes.insert(client_id.to_owned(), outcome);
        self.changed.notify_all();
    }

    /// Waits up to `timeout` for an outcome of `client_id` that `done` accepts.
    pub fn wait(
        &self,
        client_id: &str,
        timeout: Option<Duration>,
        done: impl Fn(&ArtifactOutcome) -> bool,
    ) -> Option<ArtifactOutcome> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = outcomes.get(client_id).filter(|o| done(o)) {
                return Some(outcome.clone());
            }
            let wait = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            outcomes = self
                .changed
                .wait_timeout(outcomes, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_waits_for_an_accepted_outcome() {
        let board = std::sync::Arc::new(ArtifactBoard::default());
        assert_eq!(
            board.wait("x", Some(Duration::from_millis(10)), |_| true),
            None
        );
        let writer = board.clone();
        let t = std::thread::spawn(move || {
            writer.publish("x", ArtifactOutcome::Recorded);
            std::thread::sleep(Duration::from_millis(20));
            writer.publish("x", ArtifactOutcome::Failed("boom".to_owned()));
        });
        let got = board.wait("x", Some(Duration::from_secs(5)), |o| {
            !matches!(o, ArtifactOutcome::Recorded)
        });
        t.join().unwrap();
        assert_eq!(got, Some(ArtifactOutcome::Failed("boom".to_owned())));
    }
}
