//! cairn's server: the HTTP API that W&B's unmodified clients speak — GraphQL, the
//! filestream, signed upload and download URLs — over a SQL database (SQLite by default,
//! PostgreSQL at scale) and an object store (a local folder, or any S3-compatible bucket).
//!
//! [`open`] prepares everything a server needs from a [`ServerConfig`] (database and its
//! migrations, the first admin, storage); [`serve`] answers requests on a listener until
//! its shutdown future completes, then drains requests in flight and closes the database.
//! The server never links cairn's client engine: it knows the wire, not the SDK.

pub mod admin;
mod artifacts;
mod auth;
pub mod blob;
mod checks;
pub mod db;
mod error;
mod filestream;
mod filter;
mod graphql;
mod http;
mod ids;
mod names;
mod trace;
mod ui;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::HeaderMap;

pub use auth::{generate_key, hash_key};
pub use error::ApiError;
pub use graphql::{CairnSchema, schema};
pub use http::router;
pub use ui::{MIN_PASSWORD_LEN, hash_password};

use blob::Blobs;
use db::Db;

/// How long a signed upload or download URL stays valid.
pub const SIGNED_URL_TTL_SECS: i64 = 24 * 3600;

/// Bytes of chart columns the UI keeps in memory (about 20 M points).
const SERIES_CACHE_BYTES: usize = 256 << 20;

/// Everything a server start needs, resolved by the binary from flags and environment.
#[derive(Clone)]
pub struct ServerConfig {
    /// The data folder: `cairn.db`, `files/`, `admin-api-key`.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://…`; default SQLite at `DATA/cairn.db`.
    pub database: Option<String>,
    /// A folder path or `s3://bucket/prefix`; default `DATA/files`.
    pub storage: Option<String>,
    /// The URL clients reach this server at, for the URLs it hands out; default: the
    /// request's `Host`.
    pub public_url: Option<String>,
    /// The first admin's API key (`CAIRN_ADMIN_API_KEY`); generated when `None`.
    pub admin_key: Option<String>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("data_dir", &self.data_dir)
            .field("database", &self.database.as_deref().map(db::redact))
            .field("storage", &self.storage)
            .field("public_url", &self.public_url)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ServerConfig {
    /// The database URL this configuration means.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| Db::sqlite_url(&self.data_dir.join("cairn.db")))
    }
}

/// A failure to start or administer a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Blob(#[from] blob::BlobError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("CAIRN_ADMIN_API_KEY is not a usable key: {0}")]
    AdminKey(String),
    #[error("{0}")]
    Usage(String),
}

/// The state every request handler shares.
pub struct AppState {
    /// The database.
    pub db: Db,
    /// File storage and URL signing.
    pub blobs: Blobs,
    /// The GraphQL schema.
    pub schema: CairnSchema,
    /// See [`ServerConfig::public_url`].
    pub public_url: Option<String>,
    /// The UI's chart columns of recently viewed runs.
    pub(crate) series: ui::SeriesCache,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

/// Shared state of a running server.
pub type App = Arc<AppState>;

impl AppState {
    /// The base URL clients reached this request at.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("127.0.0.1");
        format!("http://{host}")
    }

    /// A URL that lets its holder `method` the object `key` for [`SIGNED_URL_TTL_SECS`].
    pub fn signed_url(&self, base: &str, method: &str, key: &str) -> String {
        let expires = http::unix_now() + SIGNED_URL_TTL_SECS;
        format!(
            "{base}/storage/{}?{}",
            blob::encode_key(key),
            self.blobs.sign(method, key, expires)
        )
    }
}

/// What [`open`] prepared.
#[derive(Debug)]
pub struct Opened {
    /// The state to serve.
    pub app: App,
    /// The admin's API key when this start created it (first start on an empty database).
    pub new_admin_key: Option<String>,
}

/// Opens the database (migrating it), creates the first admin on an empty database, and
/// opens storage.
pub async fn open(config: &ServerConfig) -> Result<Opened, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::Io {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let db = Db::connect(&config.database_url()).await?;
    let new_admin_key =
        admin::bootstrap(&db, &config.data_dir, config.admin_key.as_deref()).await?;
    let secret = admin::signing_secret(&db).await?;
    let storage = config
        .storage
        .clone()
        .unwrap_or_else(|| config.data_dir.join("files").display().to_string());
    let blobs = Blobs::open(&storage, &secret)?;
    Ok(Opened {
        app: Arc::new(AppState {
            db,
            blobs,
            schema: schema(),
            public_url: config.public_url.clone(),
            series: ui::SeriesCache::new(SERIES_CACHE_BYTES),
        }),
        new_admin_key,
    })
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets
/// requests in flight finish, and closes the database.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    app.db.close().await;
    Ok(())
}
