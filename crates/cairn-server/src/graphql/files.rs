//! A run's files and console lines as `wandb.Api()` lists them.
//!
//! `files(names, pattern, after, first)` lists the files whose bytes are stored (a name
//! only announced through `CreateRunFiles` is not a file yet), each with a signed,
//! expiring download URL on this server. `logLines(first, after | last)` pages the
//! console (`output.log`) by line number, split into timestamp, level and text.

use std::borrow::Cow;

use async_graphql::{ID, Object, SimpleObject};
use base64::Engine as _;
use serde_json::Value;
use sqlx::AnyConnection;

use super::paging::{PageInfo, cursor, decode_cursor, page};
use super::request::session;
use crate::blob;
use crate::db::{self, FileRow, LineKind, RunRow};
use crate::error::ApiError;

/// Console lines per page when the client names no count.
const DEFAULT_LOG_PAGE: i64 = 1000;
/// Largest console page.
const MAX_LOG_PAGE: i64 = 10_000;

/// A stored file: of a run, or an entry of an artifact version (W&B gives both one type).
pub(super) struct StoredFile {
    /// Where its bytes are in storage.
    key: String,
    row: FileRow,
}

impl StoredFile {
    pub(super) fn of_run(run: i64, row: FileRow) -> StoredFile {
        StoredFile {
            key: blob::run_file_key(run, &row.name),
            row,
        }
    }

    /// A file at storage `key` shown under `row.name`.
    pub(super) fn at(key: String, row: FileRow) -> StoredFile {
        StoredFile { key, row }
    }
}

#[Object(name = "File")]
impl StoredFile {
    async fn id(&self) -> ID {
        ID(base64::engine::general_purpose::STANDARD
            .encode(format!("File:v1:{}:{}", self.key, self.row.name)))
    }
    async fn name(&self) -> &str {
        &self.row.name
    }
    async fn display_name(&self) -> &str {
        &self.row.name
    }
    /// A signed download URL; with `upload: true`, a signed upload URL.
    async fn url(&self, ctx: &async_graphql::Context<'_>, upload: Option<bool>) -> String {
        let method = if upload == Some(true) { "PUT" } else { "GET" };
        self.signed(ctx, method)
    }
    async fn direct_url(&self, ctx: &async_graphql::Context<'_>) -> String {
        self.signed(ctx, "GET")
    }
    async fn size_bytes(&self) -> i64 {
        self.row.size
    }
    async fn mimetype(&self) -> &'static str {
        mimetype(&self.row.name)
    }
    async fn updated_at(&self) -> &str {
        &self.row.updated_at
    }
    async fn md5(&self) -> Option<&str> {
        self.row.md5.as_deref()
    }
    async fn digest(&self) -> Option<&str> {
        self.row.md5.as_deref()
    }
    async fn storage_path(&self) -> &str {
        &self.key
    }
}

impl StoredFile {
    fn signed(&self, ctx: &async_graphql::Context<'_>, method: &str) -> String {
        let s = session(ctx);
        s.app.signed_url(&s.base_url, method, &self.key)
    }
}

#[derive(SimpleObject)]
pub(super) struct FileEdge {
    pub node: StoredFile,
    pub cursor: String,
}

#[derive(SimpleObject)]
pub(super) struct FileConnection {
    pub edges: Vec<FileEdge>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

/// The stored files of `run`, by name.
pub(super) async fn stored_files(
    conn: &mut AnyConnection,
    run: &RunRow,
) -> Result<Vec<FileRow>, ApiError> {
    let mut files = db::lines::files(conn, run.id).await?;
    files.retain(|f| f.uploaded);
    Ok(files)
}

/// A page of `run`'s stored files named in `names` (all when empty) or matching the SQL
/// `LIKE` `pattern`.
pub(super) async fn file_page(
    conn: &mut AnyConnection,
    run: &RunRow,
    names: &[String],
    pattern: Option<&str>,
    after: Option<&str>,
    first: Option<i32>,
) -> Result<FileConnection, ApiError> {
    let mut files = stored_files(conn, run).await?;
    if !names.is_empty() {
        files.retain(|f| names.contains(&f.name));
    }
    if let Some(pattern) = pattern {
        files.retain(|f| like(pattern, &f.name));
    }
    let (edges, page_info, total_count) = page(files, after, first, |(row, cursor)| FileEdge {
        node: StoredFile::of_run(run.id, row),
        cursor,
    });
    Ok(FileConnection {
        edges,
        page_info,
        total_count,
    })
}

/// One console line.
#[derive(SimpleObject)]
pub(super) struct LogLine {
    /// The 0-based line number.
    number: i64,
    /// ISO-8601 UTC without a zone, when the line carries one.
    timestamp: Option<String>,
    /// `error` for stderr, else empty.
    level: String,
    /// The writer's label (empty: cairn runs have one writer).
    label: String,
    line: String,
}

#[derive(SimpleObject)]
pub(super) struct LogLineEdge {
    node: LogLine,
    cursor: String,
}

#[derive(SimpleObject)]
pub(super) struct LogLineConnection {
    edges: Vec<LogLineEdge>,
    page_info: PageInfo,
}

/// A page of `run`'s console: the `last` lines, or `first` lines after the cursor.
pub(super) async fn log_page(
    conn: &mut AnyConnection,
    run: &RunRow,
    first: Option<i32>,
    after: Option<&str>,
    last: Option<i32>,
) -> Result<LogLineConnection, ApiError> {
    let (rows, has_next) = match last {
        Some(last) => {
            let n = i64::from(last).clamp(0, MAX_LOG_PAGE);
            let rows = db::lines::tail_lines(conn, run.id, LineKind::Console, n).await?;
            (rows, false)
        }
        None => {
            let from = decode_cursor(after).map_or(0, |n| n.saturating_add(1));
            let n = first
                .map_or(DEFAULT_LOG_PAGE, i64::from)
                .clamp(0, MAX_LOG_PAGE);
            let mut rows =
                db::lines::read_lines(conn, run.id, LineKind::Console, from, n + 1).await?;
            let has_next = rows.len() as i64 > n;
            rows.truncate(n as usize);
            (rows, has_next)
        }
    };
    let page_info = PageInfo {
        start_cursor: rows.first().map(|(n, _)| cursor(*n)),
        end_cursor: rows.last().map(|(n, _)| cursor(*n)),
        has_next_page: has_next,
        has_previous_page: rows.first().is_some_and(|(n, _)| *n > 0),
    };
    let edges = rows
        .into_iter()
        .map(|(number, stored)| {
            let parts = console_line(&stored);
            LogLineEdge {
                cursor: cursor(number),
                node: LogLine {
                    number,
                    timestamp: (!parts.timestamp.is_empty()).then(|| parts.timestamp.into_owned()),
                    level: parts.level.into_owned(),
                    label: String::new(),
                    line: parts.text.into_owned(),
                },
            }
        })
        .collect();
    Ok(LogLineConnection { edges, page_info })
}

/// SQL `LIKE` matching (`%` any run, `_` one character, `\` escapes), case-sensitive.
fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // dp[j]: pattern prefix p[..i] matches text prefix t[..j].
    let mut dp = vec![false; t.len() + 1];
    dp[0] = true;
    let mut i = 0;
    while i < p.len() {
        let (token, literal) = match p[i] {
            '\\' if i + 1 < p.len() => {
                i += 1;
                (p[i], true)
            }
            c => (c, false),
        };
        i += 1;
        let mut next = vec![false; t.len() + 1];
        if token == '%' && !literal {
            let mut any = false;
            for j in 0..=t.len() {
                any |= dp[j];
                next[j] = any;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = dp[j - 1] && ((token == '_' && !literal) || t[j - 1] == token);
            }
        }
        dp = next;
    }
    dp[t.len()]
}

/// A console line as the filestream stores it, split for `logLines`.
#[derive(Debug, PartialEq)]
struct ConsoleLine<'a> {
    timestamp: Cow<'a, str>,
    level: Cow<'a, str>,
    text: Cow<'a, str>,
}

/// Splits a stored console line into parts. W&B's plain format is `"<ts> text"`, or
/// `"ERROR <ts> text"` for stderr; with `STRUCTURED_CONSOLE_LOGS` a line is the JSON
/// object `{"ts": …, "content": …, "level": "error"?}`. A line in another shape is all
/// text.
fn console_line(stored: &str) -> ConsoleLine<'_> {
    if stored.starts_with('{')
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(stored)
        && let Some(Value::String(content)) = map.get("content")
    {
        let field = |key: &str| {
            Cow::Owned(
                map.get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        };
        return ConsoleLine {
            timestamp: field("ts"),
            level: field("level"),
            text: Cow::Owned(content.clone()),
        };
    }
    let (level, rest) = match stored.strip_prefix("ERROR ") {
        Some(rest) => ("error", rest),
        None => ("", stored),
    };
    let (first, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let looks_like_time = first.len() >= 19
        && first.as_bytes()[0].is_ascii_digit()
        && first.as_bytes().get(10) == Some(&b'T');
    let (timestamp, text) = if looks_like_time {
        (first, text)
    } else {
        ("", rest)
    };
    ConsoleLine {
        timestamp: Cow::Borrowed(timestamp),
        level: Cow::Borrowed(level),
        text: Cow::Borrowed(text),
    }
}

/// A file's MIME type from its extension.
fn mimetype(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .as_deref()
    {
        Some("json") => "application/json",
        Some("yaml" | "yml") => "application/x-yaml",
        Some("txt" | "log") => "text/plain",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        for (p, t, m) in [
            ("%.json", "wandb-metadata.json", true),
            ("%.json", "output.log", false),
            ("out_ut.log", "output.log", true),
            ("media/%", "media/images/a.png", true),
            ("a\\%", "a%", true),
            ("a\\%", "ab", false),
            ("%", "", true),
            ("", "", true),
            ("_", "", false),
        ] {
            assert_eq!(like(p, t), m, "{p} {t}");
        }
    }

    #[test]
    fn console_lines_split() {
        let parts = |line| {
            let c = console_line(line);
            (
                c.timestamp.into_owned(),
                c.level.into_owned(),
                c.text.into_owned(),
            )
        };
        let owned = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            parts("2026-11-22T06:39:52.201263 hello world"),
            owned("2026-11-22T06:39:52.201263", "", "hello world")
        );
        assert_eq!(
            parts("ERROR 2026-11-22T06:39:52.201500 bad"),
            owned("2026-11-22T06:39:52.201500", "error", "bad")
        );
        assert_eq!(parts("plain"), owned("", "", "plain"));
        assert_eq!(
            parts(r#"{"ts":"2026-11-21T23:43:54.816169","content":"text","level":"error"}"#),
            owned("2026-11-21T23:43:54.816169", "error", "text")
        );
        assert_eq!(
            parts(r#"{"ts":"2026-11-21T23:43:54.816169","content":"ok"}"#),
            owned("2026-11-21T23:43:54.816169", "", "ok")
        );
        assert_eq!(parts("{not json"), owned("", "", "{not json"));
    }
}
