//! `cairn server` and the operator commands on its database: `cairn user add`,
//! `cairn key create`, `cairn run stop`.
//!
//! `cairn server` opens the database (SQLite in the data folder unless `--database` names
//! PostgreSQL), creates the first admin on an empty database (key from
//! `CAIRN_ADMIN_API_KEY` or generated, printed and written to `DATA/admin-api-key`),
//! then serves until SIGINT or SIGTERM, when it stops accepting, finishes the requests in
//! flight and closes the database. Logs go to stderr (`RUST_LOG` filters them).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use cairn_server::ServerConfig;

use super::Status;

/// The environment variable that sets the first admin's API key.
pub(crate) const ADMIN_KEY_ENV: &str = "CAIRN_ADMIN_API_KEY";

/// Where the server keeps its data, shared by every command that opens it.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DataArgs {
    /// The data folder: the SQLite database, stored files, the admin key file.
    #[arg(long, default_value = "cairn-data", env = "CAIRN_DATA")]
    data: PathBuf,
    /// Database URL (`postgres://user:pass@host/db`); default SQLite at DATA/cairn.db.
    #[arg(long, env = "CAIRN_DATABASE_URL")]
    database: Option<String>,
    /// File storage: a folder, or `s3://bucket/prefix` (AWS_* variables; AWS_ENDPOINT for
    /// S3-compatible services); default DATA/files.
    #[arg(long, env = "CAIRN_STORAGE_URL")]
    storage: Option<String>,
}

impl DataArgs {
    fn config(&self, public_url: Option<String>) -> ServerConfig {
        ServerConfig {
            data_dir: self.data.clone(),
            database: self.database.clone(),
            storage: self.storage.clone(),
            public_url,
            admin_key: std::env::var(ADMIN_KEY_ENV).ok().filter(|k| !k.is_empty()),
        }
    }
}

/// Every environment variable `cairn server` reads, for `cairn server --help`.
pub(crate) const SERVER_ENV_HELP: &str = "\
Environment:
  CAIRN_ADDR             --addr
  CAIRN_DATA             --data
  CAIRN_DATABASE_URL     --database
  CAIRN_STORAGE_URL      --storage
  CAIRN_PUBLIC_URL       --public-url
  CAIRN_ADMIN_API_KEY    the first admin's API key, used only when the database is empty
                         (default: generated, printed and written to DATA/admin-api-key)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (or
  AWS_DEFAULT_REGION), AWS_ENDPOINT, AWS_ALLOW_HTTP
                         S3 credentials and endpoint, for --storage s3://...
  RUST_LOG               log filter for stderr (default: info)";

/// Arguments of `cairn server`.
#[derive(Debug, clap::Args)]
#[command(after_help = SERVER_ENV_HELP)]
pub(crate) struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "CAIRN_ADDR")]
    addr: SocketAddr,
    #[command(flatten)]
    data: DataArgs,
    /// The URL clients reach this server at (for the upload and download URLs it hands
    /// out); default: the Host of each request.
    #[arg(long, env = "CAIRN_PUBLIC_URL")]
    public_url: Option<String>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cairn-server")
        .build()
        .context("cannot start the async runtime")
}

#[allow(
    clippy::print_stdout,
    reason = "the server prints its address and first key"
)]
pub(crate) fn serve(args: &ServerArgs) -> Result<Status> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    runtime()?.block_on(async {
        let config = args.data.config(args.public_url.clone());
        let opened = cairn_server::open(&config).await.with_context(|| {
            format!(
                "cannot open the server's data in {}",
                args.data.data.display()
            )
        })?;
        if let Some(key) = &opened.new_admin_key {
            println!("created user admin; API key: {key}");
            println!(
                "(also written to {})",
                args.data
                    .data
                    .join(cairn_server::admin::ADMIN_KEY_FILE)
                    .display()
            );
        }
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        println!(
            "cairn server listening on http://{}",
            listener.local_addr()?
        );
        cairn_server::serve(opened.app, listener, shutdown_signal())
            .await
            .context("server failed")?;
        tracing::info!("server stopped");
        Ok(Status::Success)
    })
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn open_db(data: &DataArgs) -> Result<cairn_server::db::Db> {
    let config = data.config(None);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    cairn_server::db::Db::connect(&config.database_url())
        .await
        .context("cannot open the server's database")
}

/// `cairn user …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user (and their entity); prints their API key.
    Add {
        /// The user's name, also their entity's.
        name: String,
        /// Make the user an administrator (access to every entity).
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Set a user's password for the web UI, read from standard input (first line).
    Passwd {
        /// The user's name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// `cairn key …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Create another API key for a user; prints it.
    Create {
        /// The user's name.
        user: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// `cairn run …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RunCommand {
    /// Ask a run to stop: the W&B SDK interrupts the script at its next filestream answer.
    Stop {
        /// ENTITY/PROJECT/RUN_ID.
        path: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[allow(clippy::print_stdout, reason = "the command's output is the key")]
pub(crate) fn user(command: &UserCommand) -> Result<Status> {
    match command {
        UserCommand::Add { name, admin, data } => runtime()?.block_on(async {
            let db = open_db(data).await?;
            let key = cairn_server::admin::add_user(&db, name, *admin).await?;
            db.close().await;
            println!("{key}");
            Ok(Status::Success)
        }),
        UserCommand::Passwd { name, data } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            runtime()?.block_on(async {
                let db = open_db(data).await?;
                cairn_server::admin::set_password(&db, name, password).await?;
                db.close().await;
                println!("password set for {name}");
                Ok(Status::Success)
            })
        }
    }
}

#[allow(clippy::print_stdout, reason = "the command's output is the key")]
pub(crate) fn key(command: &KeyCommand) -> Result<Status> {
    let KeyCommand::Create { user, data } = command;
    runtime()?.block_on(async {
        let db = open_db(data).await?;
        let key = cairn_server::admin::create_key(&db, user).await?;
        db.close().await;
        println!("{key}");
        Ok(Status::Success)
    })
}

#[allow(clippy::print_stdout, reason = "the command confirms what it did")]
pub(crate) fn run(command: &RunCommand) -> Result<Status> {
    let RunCommand::Stop { path, data } = command;
    runtime()?.block_on(async {
        let db = open_db(data).await?;
        cairn_server::admin::stop_run(&db, path).await?;
        db.close().await;
        println!("asked run {path} to stop");
        Ok(Status::Success)
    })
}
