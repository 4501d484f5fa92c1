//! Benchmark workloads 3–5 of `bench/compare`: end-to-end logging throughput, peak memory
//! and bytes on disk per logged value.
//!
//! `bench_throughput --steps S --metrics K` (defaults 2000 and 100) starts a run with the
//! defaults a user gets (offline, console capture on, system metrics on), logs `S` steps of
//! `K` scalars (keys `train/m0`, `train/m1`, ... built once and passed as `&str`; values
//! computed in the loop, as a training loop does) and finishes the run. The clock runs from
//! before `cairn_sdk::init()` to `finish` returning, when every value is in the `.wandb`
//! log and the run's files are written.
//!
//! Prints one JSON object to the file named by `CAIRN_BENCH_RESULT` (stdout when unset):
//! seconds for `init_s`, `loop_s`, `finish_s`, `total_s`; `values_per_s` (S × K ÷ total);
//! `log_bytes` (size of the `.wandb` file) and `bytes_per_value`; `peak_rss_kib`, the
//! process's peak resident set (`VmHWM`) at the end.

use std::process::ExitCode;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{arg, peak_rss_kib, report};

#[allow(
    clippy::print_stderr,
    reason = "a benchmark program reports its failures"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (steps, metrics) = match (arg(&args, "--steps", 2000), arg(&args, "--metrics", 100)) {
        (Ok(s), Ok(m)) => (s, m as usize),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("bench_throughput: {e}\nusage: bench_throughput [--steps S] [--metrics K]");
            return ExitCode::from(2);
        }
    };
    let names: Vec<String> = (0..metrics).map(|k| format!("train/m{k}")).collect();
    let started = Instant::now();
    let run = match cairn_sdk::init().project("cairn-bench").start() {
        Ok(run) => run,
        Err(e) => {
            eprintln!("bench_throughput: {e}");
            return ExitCode::FAILURE;
        }
    };
    let init = started.elapsed();
    let log_path = run.log_path().map(std::path::Path::to_path_buf);
    for step in 0..steps {
        let x = 1.0 / (step as f64 + 1.0);
        let row = names
            .iter()
            .enumerate()
            .map(|(k, name)| (name.as_str(), x * (k + 1) as f64));
        if let Err(e) = run.log(row) {
            eprintln!("bench_throughput: {e}");
            return ExitCode::FAILURE;
        }
    }
    let looped = started.elapsed();
    if let Err(e) = run.finish() {
        eprintln!("bench_throughput: {e}");
        return ExitCode::FAILURE;
    }
    let total = started.elapsed();
    let values = steps * metrics as u64;
    let log_bytes = log_path
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len());
    report(&serde_json::json!({
        "sdk": "cairn",
        "steps": steps,
        "metrics": metrics,
        "init_s": init.as_secs_f64(),
        "loop_s": (looped - init).as_secs_f64(),
        "finish_s": (total - looped).as_secs_f64(),
        "total_s": total.as_secs_f64(),
        "values_per_s": values as f64 / total.as_secs_f64(),
        "log_bytes": log_bytes,
        "bytes_per_value": log_bytes as f64 / values.max(1) as f64,
        "peak_rss_kib": peak_rss_kib(),
    }))
}
