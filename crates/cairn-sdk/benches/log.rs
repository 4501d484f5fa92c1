//! The cost of `Run::log` on the caller's thread: the enqueue path of the SDK.
//!
//! Each benchmark logs `K` scalars per call (`K` = 10, 100, 1000) into a real offline run
//! (temp dir, console capture and system metrics off so that criterion's own output and
//! the sampler stay out of the measurement). Keys are `train/m0`, `train/m1`, ... built
//! once and passed as `&str`, which is what a user writes for a set of metrics
//! (`run.log(names.iter().map(|n| (n.as_str(), x)))`; a `&'static str` literal costs the
//! same, since the SDK turns every key into an owned `String`). Values are `f64`.
//!
//! * `log/enqueue/K`: the calls are timed in chunks of at most half the input queue
//!   ([`DEFAULT_QUEUE_CAPACITY`] ÷ 2 calls) and 100,000 values, and after each chunk,
//!   untimed, `run.step()` waits until the handler has taken every queued input. A chunk
//!   never fills the queue, so no timed call ever waits for room: this is the enqueue
//!   cost alone (the pipeline's writer and sender threads may still be busy with the
//!   previous chunk, as they would be in a training loop).
//! * `log/sustained/K`: back-to-back calls with no pause. When the pipeline is slower
//!   than the caller, the queue fills and `log` waits for room, so this measures the
//!   pipeline's sustained rate per call rather than the enqueue cost. The gap between
//!   the two says how far the enqueue path outruns the pipeline.
//!
//! Run with `cargo bench -p cairn-sdk --bench log`; `bench/compare` reads the medians
//! from `target/criterion/log_{enqueue,sustained}/K/new/estimates.json`.

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_core::pipeline::DEFAULT_QUEUE_CAPACITY;
use cairn_sdk::Run;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Scalars per call.
const SIZES: [usize; 3] = [10, 100, 1000];

/// Values logged between two waits for the handler in `log/enqueue`, at most.
const CHUNK_VALUES: usize = 100_000;

fn start_run(dir: &Path) -> Run {
    cairn_sdk::init()
        .project("cairn-bench")
        .mode("offline")
        .dir(dir)
        .console(false)
        .system_metrics(None)
        .start()
        .expect("start a run")
}

fn inputs(k: usize) -> (Vec<String>, Vec<f64>) {
    let names = (0..k).map(|i| format!("train/m{i}")).collect();
    let values = (0..k).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    (names, values)
}

fn log_one(run: &Run, names: &[String], values: &[f64]) {
    run.log(names.iter().map(String::as_str).zip(values.iter().copied()))
        .expect("log");
}

fn enqueue(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("log/enqueue");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for k in SIZES {
        let run = start_run(dir.path());
        let (names, values) = inputs(k);
        let chunk = (CHUNK_VALUES / k).clamp(1, (DEFAULT_QUEUE_CAPACITY / 2).max(1)) as u64;
        group.throughput(Throughput::Elements(k as u64));
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, _| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(chunk);
                    let started = Instant::now();
                    for _ in 0..n {
                        log_one(&run, &names, &values);
                    }
                    timed += started.elapsed();
                    // Untimed: the handler has taken every input queued so far.
                    run.step().expect("step query");
                    left -= n;
                }
                timed
            });
        });
        run.finish().expect("finish");
    }
    group.finish();
}

fn sustained(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("log/sustained");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for k in SIZES {
        let run = start_run(dir.path());
        let (names, values) = inputs(k);
        group.throughput(Throughput::Elements(k as u64));
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, _| {
            b.iter(|| log_one(&run, &names, &values));
        });
        run.finish().expect("finish");
    }
    group.finish();
}

criterion_group!(benches, enqueue, sustained);
criterion_main!(benches);
