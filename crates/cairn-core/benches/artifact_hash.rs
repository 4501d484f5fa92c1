//! Artifact hashing throughput against the floor of reading and hashing the same bytes.
//!
//! * `large/floor_read_md5`: one thread reads the file in 1 MiB `read`s into a reused
//!   buffer and feeds each to MD5, the simplest correct loop (what `md5sum` does).
//! * `large/md5_file`: [`hash::md5_file`] (a reader thread runs ahead of the hasher).
//! * `large/md5_file_and_parts`: the file digest and its part digests in one read.
//! * `large/part_md5s`: part digests only, in parallel over the cores.
//! * `small/floor_read_md5`: the floor loop over every small file, one after the other.
//! * `small/hash_files_{1,N}`: [`hash::hash_files`] on 1 and on the default thread count.
//!
//! Data is made once per run in a temp dir and read from a warm page cache:
//! `CAIRN_BENCH_LARGE_MIB` (default 256) for the large file, `CAIRN_BENCH_SMALL_FILES`
//! (default 1000) files of `CAIRN_BENCH_SMALL_KIB` (default 10) KiB. Parts are 16 MiB so
//! the default file has several. `bench/artifact-hash.sh` measures whole processes
//! (including peak memory) against `md5sum` and wandb instead.

use std::fs::{self, File};
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cairn_core::artifact::hash;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use md5::Digest as _;

const PART_SIZE: u64 = 16 << 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Deterministic pseudo-random bytes (xorshift), so MD5 cannot shortcut anything.
fn fill_pattern(buf: &mut [u8], seed: u64) {
    let mut state = seed | 1;
    for word in buf.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
}

fn write_file(path: &Path, len: usize, seed: u64) {
    let mut file = File::create(path).expect("create");
    let mut buf = vec![0; 1 << 20];
    let mut left = len;
    let mut seed = seed;
    while left > 0 {
        let n = left.min(buf.len());
        fill_pattern(&mut buf[..n], seed);
        file.write_all(&buf[..n]).expect("write");
        left -= n;
        seed += 1;
    }
}

/// The floor: read + MD5 on one thread, 1 MiB at a time.
fn floor_read_md5(path: &Path, buf: &mut [u8]) -> [u8; 16] {
    let mut file = File::open(path).expect("open");
    let mut hasher = md5::Md5::new();
    loop {
        let n = file.read(buf).expect("read");
        if n == 0 {
            return hasher.finalize().into();
        }
        hasher.update(&buf[..n]);
    }
}

fn warm(paths: &[PathBuf]) {
    let mut buf = vec![0; 1 << 20];
    for path in paths {
        black_box(floor_read_md5(path, &mut buf));
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let large_len = env_usize("CAIRN_BENCH_LARGE_MIB", 256) << 20;
    let small_count = env_usize("CAIRN_BENCH_SMALL_FILES", 1000);
    let small_len = env_usize("CAIRN_BENCH_SMALL_KIB", 10) << 10;

    let large = dir.path().join("large.bin");
    write_file(&large, large_len, 1);
    let small_dir = dir.path().join("small");
    fs::create_dir(&small_dir).expect("mkdir");
    let small: Vec<PathBuf> = (0..small_count)
        .map(|i| {
            let path = small_dir.join(format!("f{i:05}.bin"));
            write_file(&path, small_len, 1000 + i as u64);
            path
        })
        .collect();
    warm(std::slice::from_ref(&large));
    warm(&small);

    let mut group = c.benchmark_group("large");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(large_len as u64));
    let mut buf = vec![0; 1 << 20];
    group.bench_function("floor_read_md5", |b| {
        b.iter(|| floor_read_md5(&large, &mut buf));
    });
    group.bench_function("md5_file", |b| {
        b.iter(|| hash::md5_file(&large).expect("hash"));
    });
    group.bench_function("md5_file_and_parts", |b| {
        b.iter(|| hash::md5_file_and_parts(&large, PART_SIZE).expect("hash"));
    });
    group.bench_function("part_md5s", |b| {
        b.iter(|| hash::part_md5s(&large, PART_SIZE).expect("hash"));
    });
    group.finish();

    let mut group = c.benchmark_group("small");
    group.sample_size(20);
    group.throughput(Throughput::Bytes((small_count * small_len) as u64));
    group.bench_function("floor_read_md5", |b| {
        b.iter(|| {
            for path in &small {
                black_box(floor_read_md5(path, &mut buf));
            }
        });
    });
    let threads = hash::default_threads();
    let mut counts = vec![1];
    if threads > 1 {
        counts.push(threads);
    }
    for threads in counts {
        group.bench_function(format!("hash_files_{threads}"), |b| {
            b.iter(|| hash::hash_files(&small, threads));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
