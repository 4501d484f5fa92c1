//! `cairn server --help` as an operator reads it: every environment variable the server
//! reads is named there.

use std::process::Command;

#[test]
fn server_help_names_every_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["server", "--help"])
        .output()
        .expect("run cairn");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    for name in [
        "CAIRN_ADDR",
        "CAIRN_DATA",
        "CAIRN_DATABASE_URL",
        "CAIRN_STORAGE_URL",
        "CAIRN_PUBLIC_URL",
        "CAIRN_ADMIN_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT",
        "AWS_ALLOW_HTTP",
        "RUST_LOG",
    ] {
        assert!(
            help.contains(name),
            "`cairn server --help` does not name {name}:\n{help}"
        );
    }
}
