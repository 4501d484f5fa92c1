//! Console capture overhead: a program printing 100,000 lines with `println!` to a stdout
//! redirected to /dev/null, untracked and under [`ConsoleCapture`] with sinks of growing cost.
//!
//! `cargo run --release -p cairn-core --example console_overhead [runs]` is the driver: it runs
//! this binary once per mode and round (stdout on /dev/null), then prints the median and the
//! minimum wall time of each mode and their ratios to the untracked one. Given a mode name (`plain`, `capture`,
//! `model`, `records`), the binary is the measured program instead. Nothing is left running.

// The driver reports on stdout, and the measured program's `println!` is the point.
#![allow(clippy::print_stdout)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cairn_core::console::{ConsoleCapture, ConsoleModel};
use prost::Message as _;

const LINES: usize = 100_000;

const MODES: [(&str, &str); 4] = [
    ("plain", "untracked"),
    ("capture", "capture, sink counts bytes"),
    ("model", "capture, sink splits pieces + output.log model"),
    (
        "records",
        "capture, sink also encodes each piece as an output_raw record",
    ),
];

fn print_lines() {
    for i in 0..LINES {
        println!("step {i}: loss=0.{i:05} acc=0.{:05}", LINES - i);
    }
}

fn measured(mode: &str) {
    // What the sinks compute goes to `work`, so that none of it is optimised away.
    let work = Arc::new(AtomicUsize::new(0));
    let sink_work = Arc::clone(&work);
    let capture = match mode {
        "plain" => None,
        "capture" => Some(ConsoleCapture::start(move |_, chunk, _| {
            sink_work.fetch_add(chunk.len(), Ordering::Relaxed);
        })),
        "model" => {
            let mut model = ConsoleModel::new();
            Some(ConsoleCapture::start(move |stream, chunk, _| {
                let pieces = model.push(stream, chunk).len();
                let lines = model.take_completed_lines().len();
                sink_work.fetch_add(pieces + lines, Ordering::Relaxed);
            }))
        }
        "records" => {
            let mut model = ConsoleModel::new();
            Some(ConsoleCapture::start(move |stream, chunk, time| {
                for piece in model.push(stream, chunk) {
                    let encoded = piece.to_record(time).encode_to_vec();
                    sink_work.fetch_add(encoded.len(), Ordering::Relaxed);
                }
                let lines = model.take_completed_lines().len();
                sink_work.fetch_add(lines, Ordering::Relaxed);
            }))
        }
        other => panic!("unknown mode {other}"),
    };
    let capture = capture.transpose().expect("start capture");
    print_lines();
    if let Some(capture) = capture {
        capture.stop().expect("stop capture");
    }
    std::hint::black_box(work.load(Ordering::Relaxed));
}

fn run_once(exe: &std::path::Path, mode: &str) -> Duration {
    let started = Instant::now();
    let status = Command::new(exe)
        .arg(mode)
        .stdout(Stdio::null())
        .status()
        .expect("run measured program");
    let took = started.elapsed();
    assert!(status.success(), "{mode}: {status}");
    took
}

/// Median and minimum: on a shared machine the minimum is the least disturbed run.
fn stats(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0])
}

fn main() {
    let arg = std::env::args().nth(1);
    if let Some(mode) = arg.as_deref().filter(|a| MODES.iter().any(|(m, _)| m == a)) {
        measured(mode);
        return;
    }
    let rounds: usize = arg.and_then(|a| a.parse().ok()).unwrap_or(21);
    let exe = std::env::current_exe().expect("current exe");
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); MODES.len()];
    for (mode, _) in MODES {
        run_once(&exe, mode); // Warm-up.
    }
    for _ in 0..rounds {
        for (i, (mode, _)) in MODES.iter().enumerate() {
            times[i].push(run_once(&exe, mode));
        }
    }
    let (plain, plain_min) = stats(&mut times[0]);
    println!("{LINES} println! lines to /dev/null, {rounds} runs per mode (median, minimum):");
    for (i, (mode, what)) in MODES.iter().enumerate() {
        let (median, min) = stats(&mut times[i]);
        let ratio = median.as_secs_f64() / plain.as_secs_f64();
        let min_ratio = min.as_secs_f64() / plain_min.as_secs_f64();
        println!(
            "  {mode:<8} {:>7.1} ms x{ratio:.2}   {:>7.1} ms x{min_ratio:.2}   ({what})",
            median.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
        );
    }
}
