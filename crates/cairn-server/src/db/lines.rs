//! The line-shaped data of a run — history, system-metric events, console — and its files.
//!
//! Lines are addressed by their filestream offset, so writing them is idempotent: history
//! and events keep the first copy of a line (they only grow, and a retried request carries
//! the same text), console lines take the latest copy (the client rewrites a line in
//! place for `\r` progress bars). Each write also raises the run's line counter.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use super::{DbError, doing, flag, now};

/// Rows per multi-row INSERT: 4 columns × 250 stays far below both engines' parameter caps.
const ROWS_PER_INSERT: usize = 250;

/// Which line file of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    History,
    Events,
    Console,
}

impl LineKind {
    fn table(self) -> &'static str {
        match self {
            LineKind::History => "history",
            LineKind::Events => "events",
            LineKind::Console => "console",
        }
    }

    fn counter(self) -> &'static str {
        match self {
            LineKind::History => "history_lines",
            LineKind::Events => "events_lines",
            LineKind::Console => "log_lines",
        }
    }
}

/// One line to store: its offset, `_step` (history only) and text.
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    pub line: i64,
    pub step: Option<i64>,
    pub content: &'a str,
}

/// Stores `lines` of `run`'s `kind` file (see the module doc for retries and rewrites).
pub async fn write_lines(
    conn: &mut AnyConnection,
    run: i64,
    kind: LineKind,
    lines: &[Line<'_>],
) -> Result<(), DbError> {
    let table = kind.table();
    let conflict = match kind {
        LineKind::Console => "DO UPDATE SET content = excluded.content",
        LineKind::History | LineKind::Events => "DO NOTHING",
    };
    for chunk in lines.chunks(ROWS_PER_INSERT) {
        let mut sql = match kind {
            LineKind::History => {
                format!("INSERT INTO {table} (run_id, line, step, content) VALUES ")
            }
            _ => format!("INSERT INTO {table} (run_id, line, content) VALUES "),
        };
        let width = if kind == LineKind::History { 3 } else { 2 };
        for i in 0..chunk.len() {
            let base = i * width + 2;
            if i > 0 {
                sql.push(',');
            }
            if kind == LineKind::History {
                sql.push_str(&format!("($1, ${}, ${}, ${})", base, base + 1, base + 2));
            } else {
                sql.push_str(&format!("($1, ${}, ${})", base, base + 1));
            }
        }
        sql.push_str(&format!(" ON CONFLICT (run_id, line) {conflict}"));
        let mut query = sqlx::query(&sql).bind(run);
        for line in chunk {
            query = query.bind(line.line);
            if kind == LineKind::History {
                query = query.bind(line.step);
            }
            query = if line.content.contains('\0') {
                query.bind(without_nul(line.content))
            } else {
                query.bind(line.content)
            };
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(doing("storing lines"))?;
    }
    if let Some(end) = lines.iter().map(|l| l.line + 1).max() {
        let counter = kind.counter();
        sqlx::query(&format!(
            "UPDATE runs SET {counter} = CASE WHEN {counter} < $1 THEN $1 ELSE {counter} END \
             WHERE id = $2"
        ))
        .bind(end)
        .bind(run)
        .execute(conn)
        .await
        .map_err(doing("counting lines"))?;
    }
    Ok(())
}

/// `text` with NUL characters replaced by U+FFFD: PostgreSQL's text cannot hold NUL, and a
/// console line with one (a program printing binary) must still land, on every backend
/// alike. JSON lines never hold a raw NUL (JSON escapes it).
fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// Up to `limit` lines of `run`'s `kind` file from offset `from`, in order.
pub async fn read_lines(
    conn: &mut AnyConnection,
    run: i64,
    kind: LineKind,
    from: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT line, content FROM {} WHERE run_id = $1 AND line >= $2 ORDER BY line LIMIT $3",
        kind.table()
    ))
    .bind(run)
    .bind(from)
    .bind(limit)
    .fetch_all(conn)
    .await
    .map_err(doing("reading lines"))?;
    Ok(rows)
}

/// The lines of `run`'s `kind` file containing `needle` (case-insensitive): how many
/// there are, and up to `limit` of them after skipping `skip`, in order.
pub async fn search_lines(
    conn: &mut AnyConnection,
    run: i64,
    kind: LineKind,
    needle: &str,
    skip: i64,
    limit: i64,
) -> Result<(i64, Vec<(i64, String)>), DbError> {
    let pattern = format!(
        "%{}%",
        needle
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let filter = format!(
        "FROM {} WHERE run_id = $1 AND LOWER(content) LIKE $2 ESCAPE '\\'",
        kind.table()
    );
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {filter}"))
        .bind(run)
        .bind(&pattern)
        .fetch_one(&mut *conn)
        .await
        .map_err(doing("searching lines"))?;
    let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT line, content {filter} ORDER BY line LIMIT $3 OFFSET $4"
    ))
    .bind(run)
    .bind(&pattern)
    .bind(limit)
    .bind(skip)
    .fetch_all(conn)
    .await
    .map_err(doing("searching lines"))?;
    Ok((total, rows))
}

/// The lines of `run`'s `kind` file at offsets in `[from, to)` as one text (see
/// [`Joined`]); `None` when there are none. One row for many lines: reading a million
/// lines this way costs a fraction of a row each.
pub async fn joined_lines(
    conn: &mut AnyConnection,
    run: i64,
    kind: LineKind,
    from: i64,
    to: i64,
) -> Result<Option<Joined>, DbError> {
    // No ORDER BY inside the aggregate: it makes both engines sort, which costs more than
    // the read. Each line carries its offset instead, and `Joined::lines` restores order.
    let text: Option<String> = sqlx::query_scalar(&format!(
        "SELECT string_agg(CAST(line AS TEXT) || ' ' || content, $4) FROM {} \
         WHERE run_id = $1 AND line >= $2 AND line < $3",
        kind.table()
    ))
    .bind(run)
    .bind(from)
    .bind(to)
    .bind("\n")
    .fetch_one(conn)
    .await
    .map_err(doing("reading lines"))?;
    Ok(text.map(|text| Joined { text }))
}

/// Lines read by [`joined_lines`]: `offset text` pieces joined by `\n`, in whatever
/// order the database aggregated them.
#[derive(Debug)]
pub struct Joined {
    text: String,
}

impl Joined {
    /// Lines in [`joined_lines`]' form: `offset text` pieces joined by `\n`.
    pub fn new(text: String) -> Joined {
        Joined { text }
    }

    /// The lines with their offsets, in offset order. A stored line holding a raw `\n`
    /// (not JSON, but stored as sent) is put back together.
    pub fn lines(&self) -> Vec<(i64, &str)> {
        let mut out: Vec<(i64, &str)> = Vec::new();
        let mut start = 0;
        let text = self.text.as_str();
        let mut rest = text;
        let mut ordered = true;
        while !rest.is_empty() {
            let end = rest.find('\n').unwrap_or(rest.len());
            let piece = &rest[..end];
            let numbered = piece.split_once(' ').and_then(|(n, line)| {
                (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse::<i64>().ok().map(|n| (n, line)))
                    .flatten()
            });
            match (numbered, out.last_mut()) {
                (Some((n, _)), Some(last)) if n <= last.0 => ordered = false,
                _ => {}
            }
            match (numbered, out.last_mut()) {
                (Some((n, line)), _) => out.push((n, line)),
                // A continuation of the line before: widen it over the `\n`.
                (None, Some(last)) => {
                    let begin = last.1.as_ptr() as usize - text.as_ptr() as usize;
                    last.1 = &text[begin..start + end];
                }
                (None, None) => {}
            }
            start += end + 1;
            rest = if end < rest.len() {
                &rest[end + 1..]
            } else {
                ""
            };
        }
        if !ordered {
            out.sort_by_key(|(n, _)| *n);
        }
        out
    }
}

/// The last `n` lines of `run`'s `kind` file with their offsets, in order.
pub async fn tail_lines(
    conn: &mut AnyConnection,
    run: i64,
    kind: LineKind,
    n: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT line, content FROM {} WHERE run_id = $1 ORDER BY line DESC LIMIT $2",
        kind.table()
    ))
    .bind(run)
    .bind(n)
    .fetch_all(conn)
    .await
    .map_err(doing("reading lines"))?;
    let mut lines = rows;
    lines.reverse();
    Ok(lines)
}

/// The lines of `run`'s `kind` file at the offsets `at` (sorted), skipping absent ones.
pub async fn lines_at(
    conn: &mut AnyConnection,
    run: i64,
    kind: LineKind,
    at: &[i64],
) -> Result<Vec<(i64, String)>, DbError> {
    let mut out = Vec::with_capacity(at.len());
    for chunk in at.chunks(ROWS_PER_INSERT) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT line, content FROM {} WHERE run_id = $1 AND line IN ({}) ORDER BY line",
            kind.table(),
            placeholders.join(",")
        );
        let mut query = sqlx::query_as::<_, (i64, String)>(&sql).bind(run);
        for line in chunk {
            query = query.bind(*line);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(doing("reading lines"))?;
        out.extend(rows);
    }
    Ok(out)
}

/// History lines whose `_step` lies in `[min_step, max_step)`, by step, at most `limit`.
pub async fn history_steps(
    conn: &mut AnyConnection,
    run: i64,
    min_step: i64,
    max_step: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT step, content FROM history WHERE run_id = $1 AND step >= $2 AND step < $3 \
         ORDER BY step, line LIMIT $4",
    )
    .bind(run)
    .bind(min_step)
    .bind(max_step)
    .bind(limit)
    .fetch_all(conn)
    .await
    .map_err(doing("reading history"))?;
    Ok(rows)
}

/// The smallest and largest `_step` of `run`'s history.
pub async fn step_bounds(
    conn: &mut AnyConnection,
    run: i64,
) -> Result<Option<(i64, i64)>, DbError> {
    let (min, max): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(step), MAX(step) FROM history WHERE run_id = $1")
            .bind(run)
            .fetch_one(conn)
            .await
            .map_err(doing("reading history"))?;
    Ok(min.zip(max))
}

/// A file of a run.
#[derive(Clone, Debug)]
pub struct FileRow {
    pub name: String,
    pub size: i64,
    pub md5: Option<String>,
    pub uploaded: bool,
    pub updated_at: String,
}

impl FromRow<'_, AnyRow> for FileRow {
    fn from_row(row: &AnyRow) -> Result<FileRow, sqlx::Error> {
        Ok(FileRow {
            name: row.try_get("name")?,
            size: row.try_get("size")?,
            md5: row.try_get("md5")?,
            uploaded: flag(row, "uploaded")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Records that `name` is about to be uploaded for `run` (no-op when known).
pub async fn announce_file(conn: &mut AnyConnection, run: i64, name: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO run_files (run_id, name, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (run_id, name) DO NOTHING",
    )
    .bind(run)
    .bind(name)
    .bind(now())
    .execute(conn)
    .await
    .map_err(doing("recording a file"))?;
    Ok(())
}

/// Records that `name`'s bytes are stored.
pub async fn file_stored(
    conn: &mut AnyConnection,
    run: i64,
    name: &str,
    size: i64,
    md5: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO run_files (run_id, name, size, md5, uploaded, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (run_id, name) DO UPDATE SET \
         size = excluded.size, md5 = excluded.md5, uploaded = 1, updated_at = excluded.updated_at",
    )
    .bind(run)
    .bind(name)
    .bind(size)
    .bind(md5)
    .bind(now())
    .execute(conn)
    .await
    .map_err(doing("recording a file"))?;
    Ok(())
}

/// The files of `run`, by name.
pub async fn files(conn: &mut AnyConnection, run: i64) -> Result<Vec<FileRow>, DbError> {
    sqlx::query_as(
        "SELECT name, size, md5, uploaded, updated_at FROM run_files WHERE run_id = $1 \
         ORDER BY name",
    )
    .bind(run)
    .fetch_all(conn)
    .await
    .map_err(doing("listing files"))
}

/// Records a run's exit code (the filestream's `complete` marker); a stop asked of the run
/// is spent (a resumed run must not be stopped by it).
pub async fn set_exit(conn: &mut AnyConnection, run: i64, code: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET exitcode = $1, stop_requested = 0 WHERE id = $2")
        .bind(code)
        .bind(run)
        .execute(conn)
        .await
        .map_err(doing("recording an exit code"))?;
    Ok(())
}

/// Notes a sign of life from the run.
pub async fn heartbeat(conn: &mut AnyConnection, run: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET heartbeat_at = $1 WHERE id = $2")
        .bind(now())
        .bind(run)
        .execute(conn)
        .await
        .map_err(doing("recording a heartbeat"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_lines_come_back_in_offset_order() {
        let joined = Joined {
            text: "3 {\"c\":3}\n1 {\"a\":1}\n2 two\nparts\n10 last".to_owned(),
        };
        assert_eq!(
            joined.lines(),
            [
                (1, "{\"a\":1}"),
                (2, "two\nparts"),
                (3, "{\"c\":3}"),
                (10, "last")
            ]
        );
        assert!(
            Joined {
                text: String::new()
            }
            .lines()
            .is_empty()
        );
    }
}
