//! `cairn`: the one binary of the cairn experiment tracker.
//!
//! Parses the command line, runs one command, and maps its outcome to an exit status:
//! 0 for success, 2 for bad input (a missing, foreign or damaged file), 1 for anything
//! else. Commands print results on stdout and problems on stderr, one line each.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// An open experiment tracker that speaks Weights & Biases' protocols.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the records of a `.wandb` transaction log as JSON lines.
    Dump(commands::dump::DumpArgs),
    /// Upload offline, unfinished or crashed runs (cairn's or W&B's) to a server.
    Sync(commands::sync::SyncArgs),
    /// Serve W&B's API (GraphQL, filestream, files) for the `wandb` SDK and `wandb.Api()`.
    Server(commands::server::ServerArgs),
    /// Manage the server's users.
    #[command(subcommand)]
    User(commands::server::UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(commands::server::KeyCommand),
    /// Act on runs stored by the server.
    #[command(subcommand)]
    Run(commands::server::RunCommand),
    /// Serve the `wandb` Python SDK in place of its `wandb-core` (takes wandb-core's flags).
    Core(commands::core::CoreArgs),
}

fn main() -> ExitCode {
    // Installed as `wandb-core`, the binary is the SDK's core: its flags are Go-style and
    // open-ended, so they bypass this command line.
    let mut args = std::env::args();
    let started_as = args.next().unwrap_or_default();
    let outcome = if std::path::Path::new(&started_as)
        .file_name()
        .is_some_and(|name| name == "wandb-core")
    {
        commands::core::serve(&args.collect::<Vec<_>>())
    } else {
        run(Cli::parse())
    };
    match outcome {
        Ok(status) => status.into(),
        Err(err) => {
            // One line: the error and its causes, outermost first.
            #[allow(clippy::print_stderr, reason = "the binary reports its own errors")]
            {
                eprintln!("cairn: {err:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<commands::Status> {
    match cli.command {
        Command::Dump(args) => commands::dump::run(&args),
        Command::Server(args) => commands::server::serve(&args),
        Command::Sync(args) => commands::sync::run(&args),
        Command::User(command) => commands::server::user(&command),
        Command::Key(command) => commands::server::key(&command),
        Command::Run(command) => commands::server::run(&command),
        Command::Core(args) => commands::core::run(&args),
    }
}
