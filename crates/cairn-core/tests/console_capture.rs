//! Console capture of the real fd 1 and fd 2, tested in child processes.
//!
//! Redirecting fd 1 inside the test harness would swallow libtest's own output, so each test
//! re-executes this test binary, filtered to the `child` test, with a scenario name in
//! `CAIRN_CONSOLE_SCENARIO`. The child starts a capture, prints (`println!`, `eprintln!`, raw
//! `write(1)`, a subprocess), stops, and writes what its sink received to files in
//! `CAIRN_CONSOLE_OUT`. The parent checks those files and the child's real stdout and stderr
//! (the pass-through). Without the variable, `child` does nothing.

// Printing to the real stdout and stderr is what these tests exercise.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_core::console::{ConsoleCapture, ConsoleModel, Stream};

const SCENARIO_ENV: &str = "CAIRN_CONSOLE_SCENARIO";
const OUT_ENV: &str = "CAIRN_CONSOLE_OUT";

/// Chunks received by a sink, per stream, in arrival order.
type Received = Arc<Mutex<Vec<(Stream, Vec<u8>)>>>;

/// A capture whose sink records every chunk.
fn start_recording() -> (ConsoleCapture, Received) {
    let received = Received::default();
    let sink_received = Arc::clone(&received);
    let capture = ConsoleCapture::start(move |stream, bytes, _time| {
        sink_received.lock().unwrap().push((stream, bytes.to_vec()));
    })
    .unwrap();
    (capture, received)
}

/// Writes each stream's captured bytes to `<out>/stdout` and `<out>/stderr`.
fn save(out: &Path, received: &Received) {
    for stream in Stream::ALL {
        let bytes: Vec<u8> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| *s == stream)
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect();
        std::fs::write(out.join(stream.name()), bytes).unwrap();
    }
}

/// Writes `text` with one `write(2)` call to the raw descriptor, bypassing Rust's buffers.
fn raw_write(stream: Stream, text: &str) {
    let n = match stream {
        Stream::Stdout => rustix::io::write(rustix::stdio::stdout(), text.as_bytes()),
        Stream::Stderr => rustix::io::write(rustix::stdio::stderr(), text.as_bytes()),
    };
    assert_eq!(n.unwrap(), text.len());
}

/// The child side: runs the scenario named in the environment, if any.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO_ENV) else {
        return;
    };
    let out = PathBuf::from(std::env::var(OUT_ENV).unwrap());
    match scenario.as_str() {
        "basic" => child_basic(&out),
        "heavy" => child_heavy(&out),
        "drop" => child_drop(&out),
        "restart" => child_restart(&out),
        "lingering" => child_lingering(&out),
        "panicking_sink" => child_panicking_sink(&out),
        other => panic!("unknown scenario {other}"),
    }
}

struct ChildRun {
    stdout: String,
    stderr: String,
    dir: tempfile::TempDir,
}

impl ChildRun {
    fn captured(&self, stream: Stream) -> String {
        std::fs::read_to_string(self.dir.path().join(stream.name())).unwrap()
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

fn run_child(scenario: &str) -> ChildRun {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(SCENARIO_ENV, scenario)
        .env(OUT_ENV, dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run = ChildRun {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
    };
    assert!(
        output.status.success(),
        "child {scenario} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        run.stdout,
        run.stderr
    );
    run
}

const BASIC_STDOUT: &str =
    "out 1\nraw 2\nfrom child\nünïcödé ✓\nprogress 1\rprogress 2\r\nno newline";
const BASIC_STDERR: &str = "err 1\nraw err\nchild err\n";

fn child_basic(out: &Path) {
    println!("before capture");
    let (capture, received) = start_recording();
    println!("out 1");
    eprintln!("err 1");
    raw_write(Stream::Stdout, "raw 2\n");
    raw_write(Stream::Stderr, "raw err\n");
    let status = Command::new("sh")
        .args(["-c", "echo from child; echo child err >&2"])
        .status()
        .unwrap();
    assert!(status.success());
    println!("ünïcödé ✓");
    print!("progress 1\r");
    print!("progress 2\r");
    println!();
    print!("no newline"); // Still in Rust's line buffer: `stop` flushes it.
    capture.stop().unwrap();
    println!("after capture");
    save(out, &received);
}

#[test]
fn captures_and_passes_through_every_writer() {
    let run = run_child("basic");
    assert_eq!(run.captured(Stream::Stdout), BASIC_STDOUT);
    assert_eq!(run.captured(Stream::Stderr), BASIC_STDERR);
    // The terminal saw everything, in order, with nothing added.
    let expected = format!("before capture\n{BASIC_STDOUT}after capture\n");
    let start = run.stdout.find("before capture").expect(&run.stdout);
    assert!(
        run.stdout[start..].starts_with(&expected),
        "real stdout:\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(BASIC_STDERR),
        "real stderr:\n{}",
        run.stderr
    );
}

const HEAVY_LINES: usize = 200_000;
const HEAVY_LONG_LINE: usize = 3 * 1024 * 1024;

fn heavy_expected_stdout() -> String {
    let mut text = String::new();
    for i in 0..HEAVY_LINES {
        text.push_str(&format!("line {i}\n"));
    }
    text.push_str(&"z".repeat(HEAVY_LONG_LINE));
    text.push('\n');
    text
}

fn child_heavy(out: &Path) {
    // The sink does what the SDK's would: pieces for records, completed lines for output.log.
    // (Only stdout goes through the model, so that the expected output.log does not depend on
    // how the two readers' chunks interleave.)
    let model = Arc::new(Mutex::new((
        ConsoleModel::new(),
        0usize,
        Vec::<String>::new(),
    )));
    let received = Received::default();
    let sink_model = Arc::clone(&model);
    let sink_received = Arc::clone(&received);
    let capture = ConsoleCapture::start(move |stream, bytes, _time| {
        let mut guard = sink_model.lock().unwrap();
        let (model, pieces, log) = &mut *guard;
        if stream == Stream::Stdout {
            *pieces += model.push(stream, bytes).len();
            log.extend(model.take_completed_lines());
        }
        sink_received.lock().unwrap().push((stream, bytes.to_vec()));
    })
    .unwrap();
    {
        let mut stdout = std::io::stdout().lock();
        for i in 0..HEAVY_LINES {
            writeln!(stdout, "line {i}").unwrap();
        }
        stdout
            .write_all("z".repeat(HEAVY_LONG_LINE).as_bytes())
            .unwrap();
        writeln!(stdout).unwrap();
    }
    for i in 0..1000 {
        eprintln!("warning {i}");
    }
    capture.stop().unwrap();
    save(out, &received);
    let (model, pieces, mut log) = Arc::into_inner(model).unwrap().into_inner().unwrap();
    log.extend(model.finish());
    std::fs::write(out.join("pieces"), pieces.to_string()).unwrap();
    std::fs::write(out.join("output.log"), log.join("\n")).unwrap();
}

#[test]
fn heavy_output_is_neither_lost_nor_reordered() {
    let run = run_child("heavy");
    let expected = heavy_expected_stdout();
    let captured = run.captured(Stream::Stdout);
    assert!(captured == expected, "captured stdout differs");
    assert!(run.stdout.contains(&expected), "pass-through differs");
    let expected_err: String = (0..1000).map(|i| format!("warning {i}\n")).collect();
    assert_eq!(run.captured(Stream::Stderr), expected_err);
    // Each line is at least a text piece and a "\n" piece (more where a read cut it).
    let pieces: usize = run.file("pieces").parse().unwrap();
    assert!(pieces >= 2 * (HEAVY_LINES + 1), "{pieces} pieces");
    let log = run.file("output.log");
    let mut expected_log: Vec<String> = (0..HEAVY_LINES).map(|i| format!("line {i}")).collect();
    expected_log.push("z".repeat(4096));
    assert!(log == expected_log.join("\n"), "output.log differs");
}

fn child_drop(out: &Path) {
    let (capture, received) = start_recording();
    println!("dropped capture");
    drop(capture);
    println!("after drop");
    save(out, &received);
}

#[test]
fn drop_stops_the_capture() {
    let run = run_child("drop");
    assert_eq!(run.captured(Stream::Stdout), "dropped capture\n");
    assert!(run.stdout.contains("dropped capture\nafter drop\n"));
}

fn child_restart(out: &Path) {
    let (capture, received) = start_recording();
    let second = ConsoleCapture::start(|_, _, _| {});
    assert!(second.unwrap_err().is_already_active());
    println!("first");
    capture.stop().unwrap();
    let (capture, received_again) = start_recording();
    println!("second");
    capture.stop().unwrap();
    received
        .lock()
        .unwrap()
        .extend(received_again.lock().unwrap().drain(..));
    save(out, &received);
}

#[test]
fn one_capture_at_a_time_and_restartable() {
    let run = run_child("restart");
    assert_eq!(run.captured(Stream::Stdout), "first\nsecond\n");
}

fn child_lingering(out: &Path) {
    let (capture, received) = start_recording();
    // A background job inherits the capture pipe and outlives the capture.
    let mut job = Command::new("sh")
        .args(["-c", "sleep 1; echo late job"])
        .spawn()
        .unwrap();
    println!("captured line");
    let started = Instant::now();
    capture.stop().unwrap();
    let stop_took = started.elapsed();
    job.wait().unwrap();
    // The detached reader forwards the job's output to the terminal.
    std::thread::sleep(Duration::from_millis(300));
    save(out, &received);
    std::fs::write(out.join("stop_ms"), stop_took.as_millis().to_string()).unwrap();
}

#[test]
fn a_lingering_child_does_not_hold_up_stop() {
    let run = run_child("lingering");
    let stop_ms: u64 = run.file("stop_ms").parse().unwrap();
    assert!(
        stop_ms < 800,
        "stop waited {stop_ms} ms for the background job"
    );
    assert_eq!(run.captured(Stream::Stdout), "captured line\n");
    assert!(
        run.stdout.contains("late job\n"),
        "real stdout:\n{}",
        run.stdout
    );
}

fn child_panicking_sink(out: &Path) {
    let capture = ConsoleCapture::start(|stream, bytes, _| {
        if stream == Stream::Stdout && bytes.windows(4).any(|w| w == b"boom") {
            panic!("sink failure");
        }
    })
    .unwrap();
    println!("boom");
    std::thread::sleep(Duration::from_millis(50));
    println!("still visible");
    capture.stop().unwrap();
    std::fs::write(out.join("done"), "yes").unwrap();
}

#[test]
fn a_panicking_sink_does_not_stop_the_output() {
    let run = run_child("panicking_sink");
    assert_eq!(run.file("done"), "yes");
    assert!(
        run.stdout.contains("boom\nstill visible\n"),
        "real stdout:\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("sink failure"),
        "real stderr:\n{}",
        run.stderr
    );
}

#[test]
fn the_capture_handle_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<ConsoleCapture>();
}
