//! Simulates a training loop with cairn's SDK.
//!
//! `cargo run --release -p cairn-sdk --example train -- --steps N --metrics K`
//! (defaults 1000 and 10). Honours W&B's environment (`WANDB_DIR`, `WANDB_PROJECT`,
//! `WANDB_MODE`, `WANDB_RUN_ID`, `WANDB_BASE_URL`, `WANDB_API_KEY`, ...) and prints the
//! run's folder at the end. Online, it stops early when the server asks the run to stop.
//! `TRAIN_STEP_DELAY_MS` sleeps between steps (to simulate a slow model in tests).

use std::process::ExitCode;

#[path = "common/mod.rs"]
mod common;
use common::arg;

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example program"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (steps, metrics) = match (arg(&args, "--steps", 1000), arg(&args, "--metrics", 10)) {
        (Ok(s), Ok(m)) => (s, m),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("train: {e}\nusage: train [--steps N] [--metrics K]");
            return ExitCode::from(2);
        }
    };
    let run = match cairn_sdk::init()
        .project(std::env::var("WANDB_PROJECT").unwrap_or_else(|_| "cairn-examples".to_owned()))
        .config("steps", steps)
        .config("metrics", metrics)
        .config("lr", 3e-4)
        .start()
    {
        Ok(run) => run,
        Err(e) => {
            eprintln!("train: {e}");
            return ExitCode::FAILURE;
        }
    };
    run.define_metric("loss").summary("min,last").apply().ok();
    let names: Vec<String> = (0..metrics).map(|k| format!("train/m{k}")).collect();
    let mut row: Vec<(String, f64)> = Vec::with_capacity(names.len() + 1);
    let delay = std::env::var("TRAIN_STEP_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis);
    let loop_start = std::time::Instant::now();
    let mut logged = 0u64;
    // Each `log` call's latency, for the p50/p99 the loop reports.
    let mut call_nanos: Vec<u64> = Vec::with_capacity(steps.min(10_000_000) as usize);
    for step in 0..steps {
        if run.should_stop() {
            eprintln!("train: the server asked the run to stop at step {step}");
            break;
        }
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
        row.clear();
        let loss = 1.0 / (step as f64 + 1.0);
        row.push(("loss".to_owned(), loss));
        for (k, name) in names.iter().enumerate().skip(1) {
            row.push((name.clone(), loss * k as f64));
        }
        logged += row.len() as u64;
        let call = std::time::Instant::now();
        let outcome = run.log(row.drain(..));
        call_nanos.push(call.elapsed().as_nanos() as u64);
        if let Err(e) = outcome {
            eprintln!("train: {e}");
            return ExitCode::FAILURE;
        }
    }
    let loop_secs = loop_start.elapsed().as_secs_f64();
    call_nanos.sort_unstable();
    let percentile = |p: f64| {
        call_nanos
            .get(((call_nanos.len() as f64 * p) as usize).min(call_nanos.len().saturating_sub(1)))
            .map_or(0.0, |n| *n as f64 / 1000.0)
    };
    eprintln!(
        "train: logged {logged} values in {loop_secs:.3} s ({:.0} values/s); log p50 {:.2} µs, p99 {:.2} µs",
        logged as f64 / loop_secs.max(1e-9),
        percentile(0.50),
        percentile(0.99)
    );
    let dir = run
        .dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    match run.finish() {
        Ok(report) => {
            if let Some(report) = report {
                match &report.upload {
                    Some(Err(e)) => {
                        eprintln!("train: the upload did not finish ({e}): run `cairn sync {dir}`")
                    }
                    None if report.timed_out => eprintln!(
                        "train: the upload did not finish in time: run `cairn sync {dir}`"
                    ),
                    _ => {}
                }
            }
            println!("{dir}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("train: {e}");
            ExitCode::FAILURE
        }
    }
}
