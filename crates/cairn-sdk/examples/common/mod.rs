//! Helpers the example programs share: numeric flags, the peak memory of the process, and
//! writing a benchmark result where `bench/compare` reads it.

#![allow(dead_code, reason = "each example uses the part it needs")]

use std::process::ExitCode;

/// The number after flag `name` in `args`, or `default` when the flag is absent.
pub(crate) fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

/// Peak resident set size of this process so far, in KiB (`VmHWM`).
pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Writes a benchmark result as one JSON line to the file named by `CAIRN_BENCH_RESULT`,
/// or to stdout when it is unset.
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark program prints its result"
)]
pub(crate) fn report(result: &serde_json::Value) -> ExitCode {
    let text = result.to_string();
    match std::env::var_os("CAIRN_BENCH_RESULT") {
        Some(path) => match std::fs::write(&path, text + "\n") {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let program = std::env::args().next().unwrap_or_default();
                eprintln!("{program}: cannot write {}: {e}", path.to_string_lossy());
                ExitCode::FAILURE
            }
        },
        None => {
            println!("{text}");
            ExitCode::SUCCESS
        }
    }
}
