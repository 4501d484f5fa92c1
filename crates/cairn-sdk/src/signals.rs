//! SIGINT and SIGTERM finish the active runs before the process dies.
//!
//! The first run that asks installs one process-wide listener thread (`cairn-signals`,
//! through `signal-hook`). Runs register while active and unregister when they finish.
//! On a signal, the thread sends every active run an exit with code 128 + signal number
//! (130 for Ctrl-C, 143 for SIGTERM), waits for each pipeline to complete (at most
//! [`SIGNAL_DEADLINE`]), then performs the signal's default action, so the process ends
//! as it would have without cairn — with complete, readable runs behind it.
//!
//! Shutdown: the thread lives as long as the process.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use cairn_core::input::Input;
use cairn_core::pipeline::{Completion, RunInput};

/// Longest time a signal waits for the runs to finish before the process dies anyway.
pub(crate) const SIGNAL_DEADLINE: Duration = Duration::from_secs(10);

type Active = Mutex<Vec<(u64, RunInput, Completion)>>;

fn active() -> &'static Active {
    static ACTIVE: OnceLock<Active> = OnceLock::new();
    ACTIVE.get_or_init(|| Mutex::new(Vec::new()))
}

/// Registers a run; returns its registration id, or `None` if no listener could be
/// installed (the run then simply is not finished by signals).
pub(crate) fn register(input: RunInput, completion: Completion) -> Option<u64> {
    static LISTENER: OnceLock<bool> = OnceLock::new();
    if !*LISTENER.get_or_init(install) {
        return None;
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(mut runs) = active().lock() {
        runs.push((id, input, completion));
    }
    Some(id)
}

/// Forgets a run (it is finishing on its own).
pub(crate) fn unregister(id: u64) {
    if let Ok(mut runs) = active().lock() {
        runs.retain(|(i, _, _)| *i != id);
    }
}

#[cfg(unix)]
fn install() -> bool {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return false;
    };
    std::thread::Builder::new()
        .name("cairn-signals".to_owned())
        .spawn(move || {
            for signal in signals.forever() {
                let runs = active()
                    .lock()
                    .map(|mut r| std::mem::take(&mut *r))
                    .unwrap_or_default();
                for (_, input, _) in &runs {
                    let _ = input.try_send(Input::Exit {
                        exit_code: 128 + signal,
                    });
                }
                for (_, _, completion) in &runs {
                    completion.wait(SIGNAL_DEADLINE);
                }
                // Die as the signal would have killed us.
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            }
        })
        .is_ok()
}

#[cfg(not(unix))]
fn install() -> bool {
    false
}
