//! `cairn dump` as a user runs it: on real W&B logs, damaged logs and wrong paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .output()
        .expect("run cairn")
}

fn fixture(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wandb-0.31")
        .join(name)
        .join("wandb");
    let run = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wandb"))
        .unwrap()
}

fn json_lines(text: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn expected(log: &Path) -> Vec<serde_json::Value> {
    json_lines(&std::fs::read(log.with_extension("records.jsonl")).unwrap())
}

#[test]
fn dump_equals_records_jsonl_for_every_fixture() {
    for name in [
        "basic", "rich", "artifact", "media", "failed", "unicode", "stats", "multi",
    ] {
        let log = fixture(name);
        let out = cairn(&["dump", log.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{name}");
        assert_eq!(json_lines(&out.stdout), expected(&log), "{name}");
    }
}

#[test]
fn crashed_log_prints_every_record_and_exits_2() {
    let log = fixture("crashed");
    let out = cairn(&["dump", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_lines(&out.stdout), expected(&log));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("torn tail at byte 131065"), "{stderr}");
}

#[test]
fn kinds_counts_records_by_kind() {
    let out = cairn(&["dump", "--kinds", fixture("rich").to_str().unwrap()]);
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap(), @r"
    alert	1
    config	1
    environment	2
    exit	1
    files	2
    header	1
    history	57
    metric	4
    output_raw	11
    run	1
    summary	116
    telemetry	7
    ");
}

#[test]
fn damaged_log_prints_what_survives_and_names_the_offset() {
    let log = fixture("basic");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[500] ^= 0x55; // inside block 0: costs that block, block 1 survives
    let dir = tempfile::tempdir().unwrap();
    let damaged = dir.path().join("run-damaged.wandb");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = cairn(&["dump", damaged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let got = json_lines(&out.stdout);
    let all = expected(&log);
    assert!(
        !got.is_empty() && got.len() < all.len(),
        "{} of {}",
        got.len(),
        all.len()
    );
    assert!(
        all.ends_with(&got[got.len() - 1..]),
        "the last record is recovered"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("run-damaged.wandb"), "{stderr}");
    assert!(stderr.contains("resumed at byte 32768"), "{stderr}");
}

#[test]
fn missing_and_foreign_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.wandb");
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "just some text\n").unwrap();
    let empty = dir.path().join("empty.wandb");
    std::fs::write(&empty, "").unwrap();
    for (path, needle) in [
        (&missing, "nope.wandb"),
        (&foreign, "is not a W&B transaction log"),
        (&empty, "is not a W&B transaction log"),
    ] {
        let out = cairn(&["dump", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}
