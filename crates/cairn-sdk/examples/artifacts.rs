//! Logs and uses artifacts with cairn's SDK; the artifact tests drive it.
//!
//! `cargo run -p cairn-sdk --example artifacts -- log NAME DIR [ALIAS...]` logs the files
//! under DIR as artifact NAME (type `dataset`) in a new run, waits, and prints the outcome
//! as one JSON line (`{"run": …, "name": …, "version": …, "digest": …, "deduplicated": …}`).
//!
//! `… -- use NAME[:ALIAS] DEST` uses the version in a new run, downloads it into DEST and
//! prints `{"run": …, "name": …, "fetched": …, "from_cache": …, "kept": …}`.
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
        _ => Err("usage: artifacts log NAME DIR [ALIAS...] | artifacts use NAME DEST".into()),
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
