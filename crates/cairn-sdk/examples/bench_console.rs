//! Benchmark workload 6 of `bench/compare`: the cost of console capture.
//!
//! `bench_console --lines N [--tracked]` (default 100,000 lines) prints `line 0`,
//! `line 1`, ... with `println!`. Untracked, that is all it does; with `--tracked` it
//! first starts a run with the defaults a user gets (offline, console capture on, system
//! metrics on) and finishes it after the last line. Run it with stdout sent to a file, so
//! that the terminal's speed is not measured and the file can be checked for every line.
//!
//! The clock starts at the first line (so run start-up, workload 1, is not counted) and
//! stops, untracked, when the last line is flushed, and tracked, when `finish` returns:
//! then every line has passed through to the real stdout and is in the run's log and
//! `output.log`. Prints one JSON object to the file named by `CAIRN_BENCH_RESULT` (stderr
//! when unset, since stdout is the workload): `print_s` (the printing loop), `finish_s`,
//! `total_s` (the two together), `peak_rss_kib` (`VmHWM` at the end).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
use common::{arg, peak_rss_kib, report};

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "printing is the workload; failures are reported"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lines = match arg(&args, "--lines", 100_000) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("bench_console: {e}\nusage: bench_console [--lines N] [--tracked]");
            return ExitCode::from(2);
        }
    };
    let tracked = args.iter().any(|a| a == "--tracked");
    let run = if tracked {
        match cairn_sdk::init().project("cairn-bench").start() {
            Ok(run) => Some(run),
            Err(e) => {
                eprintln!("bench_console: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let started = Instant::now();
    for i in 0..lines {
        println!("line {i}");
    }
    let _ = std::io::stdout().flush();
    let printed = started.elapsed();
    let mut finish = Duration::ZERO;
    if let Some(run) = run {
        let finish_started = Instant::now();
        if let Err(e) = run.finish() {
            eprintln!("bench_console: {e}");
            return ExitCode::FAILURE;
        }
        finish = finish_started.elapsed();
    }
    report(&serde_json::json!({
        "sdk": "cairn",
        "lines": lines,
        "tracked": tracked,
        "print_s": printed.as_secs_f64(),
        "finish_s": finish.as_secs_f64(),
        "total_s": (printed + finish).as_secs_f64(),
        "peak_rss_kib": peak_rss_kib(),
    }))
}
