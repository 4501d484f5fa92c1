//! The server's database: one SQL dialect over SQLite (the embedded default) and PostgreSQL.
//!
//! [`Db`] wraps an `sqlx` `AnyPool`. Every statement is written once, with `$1`-style
//! parameters and portable SQL (`ON CONFLICT`, `RETURNING`, `CASE`), and runs unchanged on
//! both backends; the schema text in `schema.sql` differs only in its auto-numbered key.
//! Migrations run when the database is opened ([`Db::connect`]).
//!
//! Rows are read by column name: each row type implements `sqlx::FromRow` for the `Any`
//! row, and its module's `SELECT` lists name every column with `AS` (joins repeat names
//! such as `id`). The derive is not used: it needs sqlx's macro crates, which build a
//! second SQLite and PostgreSQL driver for the host, and it cannot read the schema's
//! integer flags as `bool` ([`flag`]).
//!
//! Writes go through [`Db::write`], a transaction. On SQLite, writers also take an
//! in-process lock first: SQLite allows one writer at a time, and a deferred transaction
//! that finds the database busy when it upgrades to a write fails instead of waiting.
//! Readers never wait (WAL mode). Closing: [`Db::close`] waits for checked-out connections.

pub mod accounts;
pub mod artifacts;
pub mod lines;
pub mod runs;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use accounts::{EntityRow, UserRow};
pub use artifacts::{ArtifactRow, CollectionRow, EntryRow, NewArtifact};
pub use lines::{FileRow, Joined, LineKind};
pub use runs::{ProjectRow, RunFields, RunRow};

/// The schema's current version; [`Db::connect`] brings older databases up to it.
const SCHEMA_VERSION: i64 = 3;
/// The schema texts, each bringing a database from the version before it to its own.
const SCHEMAS: [(i64, &str); 3] = [
    (1, include_str!("schema.sql")),
    (2, include_str!("schema_v2.sql")),
    (3, include_str!("schema_v3.sql")),
];

/// A database failure, naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be opened or migrated.
    #[error("cannot open database {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("database error while {doing}: {source}")]
    Query {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database holds a schema newer than this binary knows.
    #[error("database schema version {found} is newer than this cairn ({SCHEMA_VERSION})")]
    TooNew { found: i64 },
}

/// Tags a `sqlx` error with what was being done (`.map_err(doing("..."))`).
pub(crate) fn doing(doing: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| DbError::Query { doing, source }
}

/// A 0/1 `INTEGER` column as a `bool`. The schema stores flags as integers (SQLite has no
/// boolean type), and the `Any` driver decodes `bool` only from a boolean column.
pub(crate) fn flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    use sqlx::Row as _;
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// Which SQL engine is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pool of connections to the server's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: serialises writers inside this process (see the module doc).
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A write transaction; dropped without [`WriteTx::commit`] it rolls back.
#[derive(Debug)]
pub struct WriteTx {
    pub(crate) tx: Transaction<'static, sqlx::Any>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// The transaction's connection, for the query functions.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Makes the transaction's writes durable and visible.
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await.map_err(doing("committing"))
    }
}

impl Db {
    /// Opens (creating when needed) the database at `url` — `sqlite://PATH` or
    /// `postgres://…` — and migrates it to the current schema.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let open_err = |source| DbError::Open {
            url: redact(url),
            source,
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options: AnyConnectOptions = url.parse().map_err(open_err)?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    for pragma in [
                        // Only takes effect on a new database, before WAL fixes the header:
                        // a 100-metric history row is ~3 KB, and 4 KiB pages give most rows
                        // a page of their own (16 KiB: +25 % ingest, BENCHMARKS.md).
                        "PRAGMA page_size = 16384",
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(options).await.map_err(open_err)?;
        let db = Db {
            pool,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        };
        db.migrate().await.map_err(|err| match err {
            DbError::Query { source, .. } => open_err(source),
            other => other,
        })?;
        Ok(db)
    }

    /// The SQLite URL for a database file inside the data folder.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for reads.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, DbError> {
        self.pool.acquire().await.map_err(doing("connecting"))
    }

    /// Starts a write transaction (see the module doc for SQLite's writer lock).
    pub async fn write(&self) -> Result<WriteTx, DbError> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let tx = self
            .pool
            .begin()
            .await
            .map_err(doing("starting a transaction"))?;
        Ok(WriteTx { tx, _guard: guard })
    }

    /// Waits for borrowed connections to return, then closes them all.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> Result<(), DbError> {
        let mut tx = self.write().await?;
        let conn = tx.conn();
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            .await
            .map_err(doing("creating the meta table"))?;
        let found: Option<String> = get_meta(conn, "schema_version").await?;
        let found = found.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(DbError::TooNew { found });
        }
        let id = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        for (version, text) in SCHEMAS {
            if found >= version {
                continue;
            }
            for statement in schema_statements(text) {
                let statement = statement.replace("{id}", id);
                conn.execute(statement.as_str())
                    .await
                    .map_err(doing("creating the schema"))?;
            }
        }
        set_meta(conn, "schema_version", &SCHEMA_VERSION.to_string()).await?;
        tx.commit().await?;
        if self.backend == Backend::Postgres {
            self.prefer_lz4().await;
        }
        Ok(())
    }

    /// Postgres compresses long line texts with pglz by default, which costs more than
    /// half of its ingest time; lz4 (Postgres ≥ 14 built with it) is several times
    /// cheaper. A server without lz4 keeps pglz: this only logs.
    async fn prefer_lz4(&self) {
        for table in ["history", "events", "console"] {
            let sql = format!("ALTER TABLE {table} ALTER COLUMN content SET COMPRESSION lz4");
            let result = match self.pool.acquire().await {
                Ok(mut conn) => conn.execute(sql.as_str()).await.map(|_| ()),
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                tracing::warn!(table, error = %err, "keeping Postgres' default compression");
                return;
            }
        }
    }
}

/// The statements of a schema text: comments dropped, split at `;`.
fn schema_statements(text: &str) -> Vec<String> {
    let without_comments: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .map(|line| format!("{line}\n"))
        .collect();
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A database URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Reads a value of the `meta` table.
pub async fn get_meta(conn: &mut AnyConnection, key: &str) -> Result<Option<String>, DbError> {
    sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(doing("reading settings"))
}

/// Writes a value of the `meta` table.
pub async fn set_meta(conn: &mut AnyConnection, key: &str, value: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(conn)
    .await
    .map_err(doing("writing settings"))?;
    Ok(())
}

/// The current time as the schema stores it: ISO-8601 UTC to the second, no zone suffix
/// (the form W&B's API returns for `createdAt`).
pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

/// The time `secs` seconds ago, in [`now`]'s form (for comparisons with stored times).
pub fn seconds_ago(secs: i64) -> String {
    format_time(time::OffsetDateTime::now_utc() - time::Duration::seconds(secs))
}

const TIME_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

fn format_time(t: time::OffsetDateTime) -> String {
    t.format(TIME_FORMAT).unwrap_or_default()
}

/// Seconds from `from` to `to`, both in [`now`]'s form; `None` if either is not.
pub fn seconds_between(from: &str, to: &str) -> Option<i64> {
    let parse = |s: &str| time::PrimitiveDateTime::parse(s, TIME_FORMAT).ok();
    Some((parse(to)? - parse(from)?).whole_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_subtract() {
        assert_eq!(
            seconds_between("2026-11-22T06:10:11", "2026-11-22T07:10:12"),
            Some(3601)
        );
        assert_eq!(seconds_between("garbage", "2026-11-22T07:10:12"), None);
        assert!(seconds_between(&seconds_ago(60), &now()).is_some_and(|s| (59..=61).contains(&s)));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://cairn:secret@db:5432/cairn"),
            "postgres://cairn:***@db:5432/cairn"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn schema_splits_into_statements() {
        for (_, text) in SCHEMAS {
            let statements = schema_statements(text);
            assert!(statements.len() >= 3);
            assert!(statements.iter().all(|s| !s.contains("--")));
        }
    }
}
