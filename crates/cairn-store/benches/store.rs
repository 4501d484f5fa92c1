//! Throughput of the `.wandb` log against plain `std::fs` IO on the same bytes.
//!
//! The `raw_std_fs` benchmarks are the limit of the machine: the log file's exact bytes
//! written or read in 64 KiB calls. The `log_*` benchmarks do the same work through
//! [`LogWriter`] and [`LogReader`], so what they lose against raw is the cost of framing,
//! checksums and buffering.
//!
//! * `write/raw_std_fs`: create a file, write the log's bytes in 64 KiB `write_all`s.
//! * `write/log_group_commit`: `LogWriter::create`, `push` every record, `commit` every
//!   1024 records or 256 KiB (what cairn-core's writer stage does when records queue up),
//!   `finish`.
//! * `write/log_append_each`: `LogWriter::create`, `append` every record: one `write`
//!   syscall per record, the most durable mode.
//! * `read/raw_std_fs`: read the log file in 64 KiB reads into a reused buffer.
//! * `read/log_reader`: `LogReader::open`, then every record through `next()`.
//!
//! Each size (100 B and 10 KiB records) is ~32 MiB of deterministic pseudo-random
//! payload. Writes go to a fresh file in a temp dir, deleted after each iteration (the
//! delete is not timed; creating and closing the file are). Reads use one file written
//! before the group, so the page cache is hot. Fsync is off (`SyncPolicy::Never`).
//!
//! Throughput is counted in bytes of the log file for raw and log alike, so
//! `raw time / log time` is the fraction of the raw limit the log reaches;
//! `scripts/bench-store` runs this and prints those ratios.

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cairn_store::{LogReader, LogWriter, SyncPolicy};
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

/// Size of the raw benchmarks' `read`/`write` calls.
const IO_CHUNK: usize = 64 * 1024;

/// `log_group_commit` commits once this many bytes are pending, as cairn-core's writer
/// stage does when records queue up (it also commits whenever its queue runs empty).
const GROUP_BYTES: u64 = 256 * 1024;

/// ... or once this many records are pending.
const GROUP_RECORDS: usize = 1024;

/// One record size and its data set.
struct Dataset {
    /// Label used in benchmark ids (`100B`, `10KiB`).
    label: &'static str,
    /// Bytes per record.
    size: usize,
    /// Every record's payload, back to back.
    payload: Vec<u8>,
    /// The complete log file these records make, as `LogWriter` frames them.
    image: Vec<u8>,
}

impl Dataset {
    fn new(label: &'static str, size: usize, count: usize) -> Self {
        let mut payload = vec![0u8; size * count];
        // splitmix64, seeded per size: deterministic, incompressible-looking bytes.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ size as u64;
        for piece in payload.chunks_mut(8) {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            piece.copy_from_slice(&z.to_le_bytes()[..piece.len()]);
        }
        let mut writer = LogWriter::new(Vec::new(), SyncPolicy::Never).expect("log in memory");
        for record in payload.chunks_exact(size) {
            writer.push(record).expect("log in memory");
        }
        let image = writer.finish().expect("log in memory");
        Self {
            label,
            size,
            payload,
            image,
        }
    }

    fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.payload.chunks_exact(self.size)
    }

    fn count(&self) -> usize {
        self.payload.len() / self.size
    }

    fn file_bytes(&self) -> Throughput {
        Throughput::Bytes(self.image.len() as u64)
    }
}

fn datasets() -> &'static [Dataset] {
    static SETS: OnceLock<Vec<Dataset>> = OnceLock::new();
    SETS.get_or_init(|| {
        vec![
            Dataset::new("100B", 100, 335_000),
            Dataset::new("10KiB", 10 * 1024, 3_300),
        ]
    })
}

fn raw_write(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .expect("create raw file");
    for piece in bytes.chunks(IO_CHUNK) {
        file.write_all(piece).expect("write raw file");
    }
}

fn log_group_commit(path: &Path, set: &Dataset) {
    let mut writer = LogWriter::create(path, SyncPolicy::Never).expect("create log");
    let (mut committed_at, mut pending) = (writer.end_offset(), 0);
    for record in set.records() {
        writer.push(record).expect("push");
        pending += 1;
        if pending == GROUP_RECORDS || writer.end_offset() - committed_at >= GROUP_BYTES {
            writer.commit().expect("commit");
            (committed_at, pending) = (writer.end_offset(), 0);
        }
    }
    writer.finish().expect("finish");
}

fn log_append_each(path: &Path, set: &Dataset) {
    let mut writer = LogWriter::create(path, SyncPolicy::Never).expect("create log");
    for record in set.records() {
        writer.append(record).expect("append");
    }
    writer.finish().expect("finish");
}

/// Reads the file in 64 KiB reads, touching one byte per 4 KiB.
fn raw_read(path: &Path, buf: &mut [u8]) -> u64 {
    let mut file = File::open(path).expect("open raw file");
    let mut sum = 0u64;
    loop {
        let n = file.read(buf).expect("read raw file");
        if n == 0 {
            return sum;
        }
        let data = black_box(&buf[..n]);
        sum += data
            .iter()
            .step_by(4096)
            .map(|&b| u64::from(b))
            .sum::<u64>();
    }
}

/// Reads every record; returns how many there were.
fn log_read(path: &Path) -> usize {
    let mut reader = LogReader::open(path).expect("open log");
    let mut records = 0;
    while let Some(record) = reader.next() {
        let record = record.expect("intact log");
        black_box(record.payload.len());
        records += 1;
    }
    records
}

/// Runs `write` `iters` times on a fresh file in `dir`, timing only `write` (which creates
/// and closes the file) and deleting the file after each run.
fn time_fresh_files(dir: &Path, iters: u64, mut write: impl FnMut(&Path)) -> Duration {
    let path = dir.join("bench.wandb");
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        write(&path);
        total += start.elapsed();
        fs::remove_file(&path).expect("remove bench file");
    }
    total
}

/// Checks once, untimed, that every writer produces exactly the raw benchmark's bytes.
fn check_writers(dir: &Path, set: &Dataset) {
    let path = dir.join("check.wandb");
    for write in [log_group_commit, log_append_each] {
        write(&path, set);
        assert!(
            fs::read(&path).expect("read back") == set.image,
            "log bytes differ"
        );
        fs::remove_file(&path).expect("remove check file");
    }
}

fn write(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("write");
    group.sampling_mode(SamplingMode::Flat);
    for set in datasets() {
        check_writers(dir.path(), set);
        group.throughput(set.file_bytes());
        group.bench_function(BenchmarkId::new("raw_std_fs", set.label), |b| {
            b.iter_custom(|iters| {
                time_fresh_files(dir.path(), iters, |path| raw_write(path, &set.image))
            });
        });
        group.bench_function(BenchmarkId::new("log_group_commit", set.label), |b| {
            b.iter_custom(|iters| {
                time_fresh_files(dir.path(), iters, |path| log_group_commit(path, set))
            });
        });
        group.bench_function(BenchmarkId::new("log_append_each", set.label), |b| {
            b.iter_custom(|iters| {
                time_fresh_files(dir.path(), iters, |path| log_append_each(path, set))
            });
        });
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("read");
    group.sampling_mode(SamplingMode::Flat);
    for set in datasets() {
        let path = dir.path().join(format!("read-{}.wandb", set.label));
        log_group_commit(&path, set);
        assert_eq!(log_read(&path), set.count(), "records read back");
        let mut buf = vec![0u8; IO_CHUNK];
        group.throughput(set.file_bytes());
        group.bench_function(BenchmarkId::new("raw_std_fs", set.label), |b| {
            b.iter(|| raw_read(&path, &mut buf));
        });
        group.bench_function(BenchmarkId::new("log_reader", set.label), |b| {
            b.iter(|| log_read(&path));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = write, read
}
criterion_main!(benches);
