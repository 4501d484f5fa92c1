//! Benchmark workload 2 of `bench/compare`: the cost of one `run.log` call, per call.
//!
//! `bench_log --metrics K [--calls N] [--warmup W]` (defaults 100, 2000, 100) starts a run
//! with the defaults a user gets (offline, console capture on, system metrics on), then
//! times each of `W + N` calls of `run.log` with `K` scalars with [`Instant`] and keeps
//! the last `N`. The keys are `train/m0`, `train/m1`, ... built once before the loop and
//! passed as `&str` (what a user writes: `run.log(names.iter().map(|n| (n.as_str(), x)))`;
//! the SDK turns each into an owned `String`, as it does for `&'static str` literals); the
//! values of each call are computed before its timer starts, as the Python side builds its
//! dict before timing `run.log(d)`.
//!
//! `--pace P` (default: half the input queue, [`DEFAULT_QUEUE_CAPACITY`] ÷ 2) waits,
//! untimed, after every `P` calls until the handler has taken every queued input (a
//! `run.step()` query, answered after every earlier input). The queue then never fills,
//! so no timed call waits for room: the times are the enqueue cost alone. `--pace 0`
//! logs back to back, as a training loop does: once the pipeline falls a queue's length
//! behind, each call waits for room, and the times include that wait.
//!
//! Prints one JSON object (nanoseconds: `p50_ns`, `p90_ns`, `p99_ns`, `mean_ns`, `max_ns`;
//! `drain_ms`: how long the pipeline took after the last call to handle what was still
//! queued) to the file named by `CAIRN_BENCH_RESULT`, or to stdout when it is unset.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cairn_core::pipeline::DEFAULT_QUEUE_CAPACITY;

#[path = "common/mod.rs"]
mod common;
use common::{arg, peak_rss_kib, report};

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[allow(
    clippy::print_stderr,
    reason = "a benchmark program reports its failures"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (
        arg(&args, "--metrics", 100),
        arg(&args, "--calls", 2000),
        arg(&args, "--warmup", 100),
        arg(&args, "--pace", (DEFAULT_QUEUE_CAPACITY / 2) as u64),
    );
    let (metrics, calls, warmup, pace) = match parsed {
        (Ok(m), Ok(c), Ok(w), Ok(p)) => (m as usize, c as usize, w as usize, p as usize),
        (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => {
            eprintln!(
                "bench_log: {e}\nusage: bench_log [--metrics K] [--calls N] [--warmup W] [--pace P]"
            );
            return ExitCode::from(2);
        }
    };
    let names: Vec<String> = (0..metrics).map(|k| format!("train/m{k}")).collect();
    let mut values = vec![0.0f64; metrics];
    let run = match cairn_sdk::init().project("cairn-bench").start() {
        Ok(run) => run,
        Err(e) => {
            eprintln!("bench_log: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut times: Vec<u64> = Vec::with_capacity(calls);
    let mut paused = Duration::ZERO;
    for i in 0..warmup + calls {
        let x = 1.0 / (i as f64 + 1.0);
        for (k, v) in values.iter_mut().enumerate() {
            *v = x * (k + 1) as f64;
        }
        let started = Instant::now();
        let result = run.log(names.iter().map(String::as_str).zip(values.iter().copied()));
        let took = started.elapsed();
        if let Err(e) = result {
            eprintln!("bench_log: {e}");
            return ExitCode::FAILURE;
        }
        if i >= warmup {
            times.push(took.as_nanos() as u64);
        }
        if pace > 0 && (i + 1) % pace == 0 {
            let waited = Instant::now();
            if let Err(e) = run.step() {
                eprintln!("bench_log: {e}");
                return ExitCode::FAILURE;
            }
            paused += waited.elapsed();
        }
    }
    let drain_started = Instant::now();
    if let Err(e) = run.step() {
        eprintln!("bench_log: {e}");
        return ExitCode::FAILURE;
    }
    let drain = drain_started.elapsed();
    let finish_started = Instant::now();
    if let Err(e) = run.finish() {
        eprintln!("bench_log: {e}");
        return ExitCode::FAILURE;
    }
    let finish = finish_started.elapsed();
    let mean = times.iter().sum::<u64>() as f64 / times.len().max(1) as f64;
    times.sort_unstable();
    report(&serde_json::json!({
        "sdk": "cairn",
        "metrics": metrics,
        "calls": calls,
        "warmup": warmup,
        "pace": pace,
        "queue_capacity": DEFAULT_QUEUE_CAPACITY,
        "paused_ms": paused.as_secs_f64() * 1e3,
        "p50_ns": percentile(&times, 50.0),
        "p90_ns": percentile(&times, 90.0),
        "p99_ns": percentile(&times, 99.0),
        "mean_ns": mean,
        "max_ns": times.last().copied().unwrap_or(0),
        "drain_ms": drain.as_secs_f64() * 1e3,
        "finish_ms": finish.as_secs_f64() * 1e3,
        "peak_rss_kib": peak_rss_kib(),
    }))
}
