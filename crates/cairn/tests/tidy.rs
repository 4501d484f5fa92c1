//! Workspace hygiene that no compiler checks: every Rust module opens with a `//!` doc
//! saying what it does (STYLE.md, "Docs"), every crate is described in `crates/README.md`
//! and `ARCHITECTURE.md`, a long source file says why it is long, no comment cites a
//! document the repository does not hold, and no two sibling modules name each other.

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

/// The module a source file is, as a path below its crate root (`src/a/b.rs` and
/// `src/a/b/mod.rs` are `["a", "b"]`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

/// The modules `text` (the file of module `me`) names: `crate::a::b…` and `super::x`
/// paths in code, comments left out.
fn named_modules(me: &[String], text: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .filter(|p| !p.is_empty() && p.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut named = Vec::new();
    for line in text.lines().map(str::trim_start) {
        if line.starts_with("//") {
            continue;
        }
        for (at, _) in line.match_indices("crate::") {
            named.push(ident(&line[at + "crate::".len()..]));
        }
        for (at, _) in line.match_indices("super::") {
            // `super` is the parent module (of `a/b.rs` and of `a/b/mod.rs` alike).
            let mut path = me.to_vec();
            path.pop();
            path.extend(ident(&line[at + "super::".len()..]).into_iter().take(1));
            named.push(path);
        }
    }
    named
}

/// Modules depend one way: no two sibling modules name each other (STYLE.md, "Layers").
/// The GraphQL schema's own cycles are the exception: W&B's `Run` has `Artifact`s whose
/// `createdBy` is a `Run`, a `Project` has runs that name their project, and a
/// collection's page of versions (`version_pages`) holds `Artifact`s whose sequence is
/// that collection.
#[test]
fn sibling_modules_do_not_name_each_other() {
    const SCHEMA_CYCLES: [(&str, &str); 4] = [
        ("cairn-server graphql::artifacts", "graphql::run"),
        ("cairn-server graphql::artifacts", "graphql::version_pages"),
        ("cairn-server graphql::artifacts", "graphql::types"),
        ("cairn-server graphql::run", "graphql::types"),
    ];
    let mut cycles = Vec::new();
    for krate in crates() {
        let src = krate.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut edges = std::collections::BTreeSet::new();
        for file in files {
            let me = module_path(&src, &file);
            if file.file_name().is_some_and(|n| n == "tests.rs") || me.iter().any(|p| p == "tests")
            {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            // A file's inline test module comes last; it may use anything.
            let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
            for named in named_modules(&me, code) {
                for depth in 1..=2 {
                    if me.len() >= depth
                        && named.len() >= depth
                        && me[..depth - 1] == named[..depth - 1]
                        && me[..depth] != named[..depth]
                    {
                        edges.insert((me[..depth].join("::"), named[..depth].join("::")));
                    }
                }
            }
        }
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        for (a, b) in &edges {
            if a < b && edges.contains(&(b.clone(), a.clone())) {
                let pair = (format!("{name} {a}"), b.clone());
                if !SCHEMA_CYCLES
                    .iter()
                    .any(|(x, y)| pair.0 == *x && pair.1 == *y)
                {
                    cycles.push(format!("{name}: {a} <-> {b}"));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "sibling modules that name each other (move what both need into one of them, or \
         below both):\n{}",
        cycles.join("\n")
    );
}
