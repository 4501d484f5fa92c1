//! Builds an artifact manifest from files and directories, as `wandb.Artifact.add_file` /
//! `add_dir` would, and prints what W&B would compute from it.
//!
//! `cargo run --release -p cairn-core --example hash_artifact -- [--threads N] [--parts] PATH...`
//!
//! A file is added under its file name, a directory's files under their paths relative to
//! it. Prints, one `key value` per line: `entries`, `bytes`, `content_digest` (the
//! artifact digest `CreateArtifact` sends), `manifest_md5` (base64 MD5 of the manifest
//! JSON), `elapsed_s` (wall time of the hashing) and, for up to 5 entries, `entry NAME
//! DIGEST`. With `--parts`, files of 2 GiB or more are hashed with their multipart part
//! MD5s in the same read (what an upload needs), and `parts NAME COUNT` is printed too.
//! `bench/artifact-hash.sh` runs this against `md5sum` and wandb.

// A command-line tool: its output is the point, and stderr its only error channel.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use cairn_core::artifact::hash::{self, Md5};
use cairn_core::artifact::{Entry, Manifest};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut threads = hash::default_threads();
    let mut parts = false;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                let value = args.next().context("--threads needs a value")?;
                threads = value.parse().context("--threads needs a number")?;
            }
            "--parts" => parts = true,
            _ if arg.starts_with("--") => bail!("unknown option {arg}"),
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    if paths.is_empty() {
        bail!("usage: hash_artifact [--threads N] [--parts] PATH...");
    }

    let start = Instant::now();
    let mut manifest = Manifest::new();
    let mut part_counts = Vec::new();
    for path in &paths {
        if path.is_dir() {
            manifest.add_dir_with(path, "", threads)?;
            continue;
        }
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{} has no UTF-8 file name", path.display()))?;
        let size = path
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        match hash::multipart_part_size(size).filter(|_| parts) {
            Some(part_size) => {
                let (digest, digests) = hash::md5_file_and_parts(path, part_size)?;
                let absolute = std::path::absolute(path)?;
                manifest.insert(name, Entry::local_file(digest, absolute))?;
                part_counts.push((name.to_owned(), digests.len()));
            }
            None => {
                manifest.add_file(path, name)?;
            }
        }
    }
    let content_digest = manifest.content_digest();
    let elapsed = start.elapsed();

    println!("entries {}", manifest.entries.len());
    println!("bytes {}", manifest.total_size());
    println!("content_digest {content_digest}");
    println!(
        "manifest_md5 {}",
        Md5::of(manifest.to_json().as_bytes()).to_base64()
    );
    println!("elapsed_s {:.6}", elapsed.as_secs_f64());
    for (name, entry) in manifest.entries.iter().take(5) {
        println!("entry {name} {}", entry.digest);
    }
    for (name, count) in part_counts {
        println!("parts {name} {count}");
    }
    Ok(())
}
