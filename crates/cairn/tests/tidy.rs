//! Workspace hygiene that no compiler checks: every Rust module opens with a `//!` doc
//! saying what it does (STYLE.md, "Docs"), every crate is described in `crates/README.md`
//! and `ARCHITECTURE.md`, a long source file says why it is long, and no comment cites a
//! document the repository does not hold.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "generated") {
                continue; // prost output, documented by the module that includes it
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crates() -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    crates.sort();
    crates
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let mut missing = Vec::new();
    for krate in crates() {
        let mut files = Vec::new();
        for sub in ["src", "tests", "benches"] {
            if krate.join(sub).is_dir() {
                rust_files(&krate.join(sub), &mut files);
            }
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.trim_start().starts_with("//!") {
                missing.push(file.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` doc:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_crate_is_described() {
    let readme = std::fs::read_to_string(workspace().join("crates/README.md")).unwrap();
    let architecture = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).unwrap();
    for krate in crates() {
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            readme.contains(&format!("`{name}`")),
            "crates/README.md lacks `{name}`"
        );
        assert!(
            architecture.contains(&format!("### `{name}`")),
            "ARCHITECTURE.md lacks a `### `{name}`` section"
        );
    }
}

/// The source files of every crate (`src/`), without generated code.
fn source_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in crates() {
        if krate.join("src").is_dir() {
            rust_files(&krate.join("src"), &mut files);
        }
    }
    files
}

/// Lines of a source file before its unit tests (`#[cfg(test)]` at the start of a line).
fn code_lines(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .count()
}

/// A file over about 700 lines usually holds two jobs (STYLE.md): each one that is longer
/// says why in its module doc, in a paragraph that starts `Size:`. Test files do not count.
#[test]
fn long_source_files_say_why() {
    const LIMIT: usize = 750;
    let mut long = Vec::new();
    for file in source_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name == "tests.rs" || file.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = code_lines(&text);
        let explained = text
            .lines()
            .take_while(|line| line.starts_with("//!") || line.trim().is_empty())
            .any(|line| {
                line.trim_start_matches("//!")
                    .trim_start()
                    .starts_with("Size:")
            });
        if lines > LIMIT && !explained {
            long.push(format!("{} ({lines} lines)", file.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over {LIMIT} lines of code whose module doc has no `Size:` paragraph:\n{}",
        long.join("\n")
    );
}

/// Comments cite only what a reader of the repository can open: no section numbers of
/// documents kept elsewhere (`wire §3.4`, `api-read §5`).
#[test]
fn no_references_to_documents_outside_the_repository() {
    let mut dangling = Vec::new();
    for file in source_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains('§') {
                dangling.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        dangling.is_empty(),
        "section references to documents outside the repository:\n{}",
        dangling.join("\n")
    );
}
