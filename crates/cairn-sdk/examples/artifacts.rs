//! Logs and uses artifacts with cairn's SDK; the artifact tests drive it.
//!
//! `cargo run -p cairn-sdk --example artifacts -- log NAME DIR [ALIAS...]` logs the files
//! under DIR as artifact NAME (type `dataset`) in a new run, waits, and prints the outcome
//! as one JSON line (`{"run": …, "name": …, "version": …, "digest": …, "deduplicated": …}`).
//!
//! `ARTIFACT_REFS` (URIs separated by spaces) adds those references to what `log` logs.
//!
//! `… -- use NAME[:ALIAS] DEST` uses the version in a new run, downloads it into DEST and
//! prints `{"run": …, "name": …, "fetched": …, "from_cache": …, "kept": …}`.
//!
//! `… -- media` logs a table (`tbl`) and a 1×1 PNG (`img`) at step 1 of a new run and prints
//! `{"run": …}`.
//!
//! Honours W&B's environment (`WANDB_MODE`, `WANDB_BASE_URL`, `WANDB_API_KEY`,
//! `WANDB_PROJECT`, `WANDB_DIR`, `WANDB_CACHE_DIR`, …).

use std::process::ExitCode;

use cairn_sdk::Artifact;

#[allow(clippy::print_stdout, reason = "an example program")]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["log", name, dir, ref aliases @ ..] => log(name, dir, aliases),
        ["use", name, dest] => use_artifact(name, dest),
        ["media"] => media(),
        _ => Err(
            "usage: artifacts log NAME DIR [ALIAS...] | artifacts use NAME DEST | artifacts media"
                .into(),
        ),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            #[allow(clippy::print_stderr, reason = "an example program")]
            {
                eprintln!("artifacts: {err}");
            }
            ExitCode::FAILURE
        }
    }
}

type Error = Box<dyn std::error::Error>;

fn start() -> Result<cairn_sdk::Run, Error> {
    Ok(cairn_sdk::init()
        .project(std::env::var("WANDB_PROJECT").unwrap_or_else(|_| "cairn-examples".to_owned()))
        .console(false)
        .system_metrics(None)
        .start()?)
}

fn log(name: &str, dir: &str, aliases: &[&str]) -> Result<String, Error> {
    let run = start()?;
    let mut artifact = Artifact::new(name, "dataset")
        .description("logged by cairn's artifacts example")
        .metadata(serde_json::json!({"source": dir}))
        .add_dir(dir);
    for alias in aliases {
        artifact = artifact.alias(*alias);
    }
    for uri in std::env::var("ARTIFACT_REFS")
        .unwrap_or_default()
        .split_whitespace()
    {
        artifact = artifact.add_reference(uri);
    }
    let handle = run.log_artifact(&artifact)?;
    // The training loop goes on while the artifact is hashed and uploaded.
    for step in 0..10 {
        run.log([("loss", 1.0 / f64::from(step + 1))])?;
    }
    let logged = handle.wait(None)?;
    let id = run.id().to_owned();
    run.finish()?;
    Ok(serde_json::json!({
        "run": id,
        "name": logged.name,
        "id": logged.id,
        "version": logged.version,
        "digest": logged.digest,
        "deduplicated": logged.deduplicated,
    })
    .to_string())
}

fn use_artifact(name: &str, dest: &str) -> Result<String, Error> {
    let run = start()?;
    let used = run.use_artifact(name)?;
    let report = used.download_to(std::path::Path::new(dest))?;
    let id = run.id().to_owned();
    run.finish()?;
    Ok(serde_json::json!({
        "run": id,
        "name": used.name(),
        "fetched": report.fetched,
        "from_cache": report.from_cache,
        "kept": report.kept,
        "bytes": report.bytes,
    })
    .to_string())
}

/// A 1×1 red PNG.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xDE, 0x00, 0x00, 0x00, 0x0C, 0x49, 0x44, 0x41, 0x54, 0x08, 0xD7, 0x63, 0xF8, 0xCF, 0xC0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0x18, 0xDD, 0x8D, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E,
    0x44, 0xAE, 0x42, 0x60, 0x82,
];

fn media() -> Result<String, Error> {
    let run = start()?;
    run.log([("x", 0)])?;
    let table = cairn_sdk::Table::new(["a", "b"])
        .row([serde_json::json!(1), serde_json::json!("x")])
        .row([serde_json::json!(2), serde_json::json!("y")]);
    run.log_table("tbl", &table)?;
    run.log_image("img", PIXEL_PNG)?;
    let id = run.id().to_owned();
    run.finish()?;
    Ok(serde_json::json!({"run": id}).to_string())
}
