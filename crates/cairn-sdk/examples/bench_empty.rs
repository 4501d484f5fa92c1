//! Benchmark workload 1 of `bench/compare`: an empty run, start to exit.
//!
//! `bench_empty` starts a run with the defaults a user gets (offline, console capture on,
//! system metrics on), finishes it and exits. `bench/compare` times the whole process,
//! from spawn to exit, and compares it with `wandb.init(); run.finish()` in Python.
//! Honours W&B's environment (`WANDB_DIR`, `WANDB_MODE`, ...).

use std::process::ExitCode;

#[allow(
    clippy::print_stderr,
    reason = "a benchmark program reports its failures"
)]
fn main() -> ExitCode {
    let run = match cairn_sdk::init().project("cairn-bench").start() {
        Ok(run) => run,
        Err(e) => {
            eprintln!("bench_empty: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run.finish() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_empty: {e}");
            ExitCode::FAILURE
        }
    }
}
