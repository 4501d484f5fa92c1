//! The SDK's `internal_messages{wait}` long poll of one run: the handler's warnings as
//! they come, and an empty answer once the run is over (that ends the SDK's loop).
//!
//! Input: warnings ([`Messages::warn`], from the run's event thread), polls
//! ([`Messages::poll`], from the connection), and the end of the run
//! ([`Messages::close`], after its finish). Output: each poll's answer, given through the
//! callback it brought — at once when warnings wait or the run is over, else held until
//! one of those happens. At most one poll is held: a second one answers the first empty.
//! Callbacks run outside the lock.

use std::sync::Mutex;

/// A held poll: answers it with the warnings (none: the run is over).
pub(super) type HeldPoll = Box<dyn FnOnce(Vec<String>) + Send>;

/// The warnings of one run and its held poll.
#[derive(Default)]
pub(super) struct Messages {
    state: Mutex<MessagesState>,
}

#[derive(Default)]
struct MessagesState {
    warnings: Vec<String>,
    held: Option<HeldPoll>,
    closed: bool,
}

impl Messages {
    /// A poll: answered at once when there are warnings or the run is over, else held.
    pub(super) fn poll(&self, answer: HeldPoll) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed || !state.warnings.is_empty() {
            let warnings = std::mem::take(&mut state.warnings);
            drop(state);
            answer(warnings);
        } else if let Some(previous) = state.held.replace(answer) {
            // A second poll replaces the first (the SDK has stopped waiting on it).
            drop(state);
            previous(Vec::new());
        }
    }

    /// A warning for the user: released to a held poll at once.
    pub(super) fn warn(&self, warning: String) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return;
        }
        state.warnings.push(warning);
        if let Some(held) = state.held.take() {
            let warnings = std::mem::take(&mut state.warnings);
            drop(state);
            held(warnings);
        }
    }

    /// The run is over: a held poll is answered empty, and so is every later one.
    pub(super) fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        let held = state.held.take();
        drop(state);
        if let Some(held) = held {
            held(Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A poll whose answer goes to the returned receiver.
    fn poll(messages: &Messages) -> mpsc::Receiver<Vec<String>> {
        let (tx, rx) = mpsc::channel();
        messages.poll(Box::new(move |warnings| {
            let _ = tx.send(warnings);
        }));
        rx
    }

    #[test]
    fn a_poll_is_held_until_a_warning_or_the_end() {
        let messages = Messages::default();
        let first = poll(&messages);
        assert!(first.try_recv().is_err(), "held while nothing happened");
        messages.warn("disk full".to_owned());
        assert_eq!(first.try_recv().unwrap(), ["disk full"]);

        let second = poll(&messages);
        let third = poll(&messages);
        assert_eq!(second.try_recv().unwrap(), Vec::<String>::new(), "replaced");
        messages.close();
        assert_eq!(third.try_recv().unwrap(), Vec::<String>::new());
        messages.warn("too late".to_owned());
        assert_eq!(poll(&messages).try_recv().unwrap(), Vec::<String>::new());
    }
}
