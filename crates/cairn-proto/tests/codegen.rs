//! Regenerates cairn-proto's Rust code and descriptor set from `proto/` and fails on any
//! difference from the checked-in copies, so the build never needs `protoc` and the
//! checked-in code never drifts from the `.proto` sources.
//!
//! After editing a `.proto` file, run `CAIRN_BLESS=1 cargo test -p cairn-proto --test codegen`
//! to rewrite `src/generated/`.

use std::path::{Path, PathBuf};

use prost::Message;

/// Every `.proto` file cairn defines; the others are imported through these.
const ROOTS: &[&str] = &["cairn/service.proto"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate(out: &Path) -> Vec<u8> {
    let proto_dir = crate_dir().join("proto");
    let fds = protox::compile(ROOTS, [&proto_dir]).expect("compile cairn's .proto files");
    let mut config = prost_build::Config::new();
    config
        .out_dir(out)
        .enable_type_names()
        .type_name_domain(["."], "type.googleapis.com")
        .btree_map(["."]);
    config.compile_fds(fds.clone()).expect("generate Rust code");
    // Comments are in the generated code already; the runtime descriptor does without them.
    let mut runtime = fds;
    for file in &mut runtime.file {
        file.source_code_info = None;
    }
    runtime.encode_to_vec()
}

#[test]
fn generated_code_is_up_to_date() {
    let tmp = tempfile::tempdir().unwrap();
    let descriptor = generate(tmp.path());
    let fresh_code = std::fs::read_to_string(tmp.path().join("wandb_internal.rs")).unwrap();

    let generated = crate_dir().join("src/generated");
    let code_path = generated.join("wandb_internal.rs");
    let descriptor_path = generated.join("descriptor.bin");
    if std::env::var_os("CAIRN_BLESS").is_some() {
        std::fs::create_dir_all(&generated).unwrap();
        std::fs::write(&code_path, &fresh_code).unwrap();
        std::fs::write(&descriptor_path, &descriptor).unwrap();
        return;
    }
    let stale = "is stale: run `CAIRN_BLESS=1 cargo test -p cairn-proto --test codegen`";
    let checked_in = std::fs::read_to_string(&code_path).unwrap_or_default();
    assert!(checked_in == fresh_code, "{} {stale}", code_path.display());
    let checked_in = std::fs::read(&descriptor_path).unwrap_or_default();
    assert!(
        checked_in == descriptor,
        "{} {stale}",
        descriptor_path.display()
    );
}
