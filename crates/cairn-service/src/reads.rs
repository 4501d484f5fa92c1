//! Two reads the 0.31 public API hands to the core: file downloads and console logs.
//!
//! * `download_file_request{path, url, size}` (`File.download()`, `run.metadata`): GET
//!   `url` — the `File.url` the server listed, a signed, absolute URL — and put the bytes at
//!   `path` (the SDK joins the root and the file's name, which may hold directories, and
//!   creates none of them). The parent directories are created; the body is streamed into a
//!   hidden temporary file next to `path`, which is renamed over `path` once complete, so
//!   `path` never holds a partial file and an earlier copy (`replace=True`) stays until the
//!   new one is whole. `size` (the listed `sizeBytes`) is not checked: a live run's
//!   `output.log` may have grown since it was listed. No credentials are sent: cairn's
//!   server signs its download URLs (`/storage/…?exp&sig`), as does S3. Answered
//!   `DownloadFileResponse{}`; a failed GET (a 404, retries spent) or a local write error is
//!   an error naming the URL (without its query, which holds the signature) and the path.
//! * `read_run_console_logs_request{entity, project, run_id, first, after, last}`
//!   (`run.console_logs()`): one GraphQL query per page, as W&B's core sends it —
//!   `RunConsoleLogPage` (`logLines(first, after)`, relay paging on the opaque
//!   `pageInfo.endCursor`) or, with `last`, `RunConsoleLogTail` (`logLines(last)`, one
//!   page: no cursor, no next page). Answered `ReadRunConsoleLogsResponse{lines, end_cursor,
//!   has_next_page, total_lines}`, each line `{number, timestamp, level, label, content}`
//!   (absent fields empty; `total_lines` is the run's `logLineCount`).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_core::client::{Connection, Until, documents};
use cairn_proto::{
    DownloadFileRequest, DownloadFileResponse, ReadRunConsoleLogsRequest,
    ReadRunConsoleLogsResponse, RunConsoleLogLine,
};
use serde_json::Value;

use crate::remote::{is_http_url, run_query, shown_url, until};

/// Tells apart the temporary files of concurrent downloads in one process.
static STAGED: AtomicU64 = AtomicU64::new(0);

/// A temporary file next to a download's destination, removed unless renamed into place.
#[derive(Debug)]
struct Staged {
    path: PathBuf,
    kept: bool,
}

impl Staged {
    /// Creates a new, empty, hidden file in `dest`'s directory.
    fn next_to(dest: &Path) -> std::io::Result<Staged> {
        let dir = dest.parent().unwrap_or_else(|| Path::new("."));
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        loop {
            let n = STAGED.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.cairn-{}-{n}.part", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Ok(Staged { path, kept: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames the file to `dest`, replacing what is there.
    fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Answers `download_file_request` (see the module doc).
pub(crate) fn download_file(
    connection: &Connection,
    request: &DownloadFileRequest,
) -> Result<DownloadFileResponse, String> {
    if request.path.is_empty() {
        return Err("download_file_request names no path".to_owned());
    }
    fetch(connection, &request.url, Path::new(&request.path))?;
    Ok(DownloadFileResponse {})
}

/// GETs the signed URL `url` into `dest`, creating its directories; `dest` holds either
/// its earlier content or the whole new file, never a part. Errors name the URL (without
/// its query, the signature) and `dest`.
pub(crate) fn fetch(connection: &Connection, url: &str, dest: &Path) -> Result<(), String> {
    let shown = shown_url(url);
    if !is_http_url(url) {
        return Err(format!(
            "cannot download {shown} to {}: not an absolute http(s) URL",
            dest.display()
        ));
    }
    let local = |what: &str, at: &Path, e: std::io::Error| {
        format!(
            "cannot download {shown} to {}: {what} {}: {e}",
            dest.display(),
            at.display()
        )
    };
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| local("cannot create directory", dir, e))?;
    }
    let staged =
        Staged::next_to(dest).map_err(|e| local("cannot create a file next to", dest, e))?;
    // The SDK waits as long as a transfer takes; the file-transfer policy bounds the retries.
    connection
        .get_to_file(url, &staged.path, &Until::forever())
        .map_err(|e| format!("cannot download {shown} to {}: {e}", dest.display()))?;
    staged
        .persist(dest)
        .map_err(|e| local("cannot move the download to", dest, e))
}

/// Answers `read_run_console_logs_request` (see the module doc).
pub(crate) fn read_console_logs(
    connection: &Connection,
    request: &ReadRunConsoleLogsRequest,
) -> Result<ReadRunConsoleLogsResponse, String> {
    let until = until();
    let (name, query, variables) = match request.last {
        Some(last) => (
            "RunConsoleLogTail",
            documents::RUN_CONSOLE_LOG_TAIL,
            serde_json::json!({
                "entity": request.entity, "project": request.project,
                "runName": request.run_id, "last": last,
            }),
        ),
        None => (
            "RunConsoleLogPage",
            documents::RUN_CONSOLE_LOG_PAGE,
            serde_json::json!({
                "entity": request.entity, "project": request.project,
                "runName": request.run_id, "first": request.first,
                "after": request.after.as_deref().filter(|a| !a.is_empty()),
            }),
        ),
    };
    let path = format!("{}/{}/{}", request.entity, request.project, request.run_id);
    let run = run_query(connection, name, query, variables, &until, &path)?;
    Ok(console_page(&run, request.last.is_some()))
}

/// The response for a run's `logLineCount` and `logLines` as GraphQL answered them; a tail
/// is one page (no cursor, no next page).
fn console_page(run: &Value, tail: bool) -> ReadRunConsoleLogsResponse {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let number = |v: &Value| match v {
        Value::String(s) => s.trim().parse().unwrap_or_default(),
        other => other.as_i64().unwrap_or_default(),
    };
    let connection = &run["logLines"];
    let lines = connection["edges"]
        .as_array()
        .map(|edges| {
            edges
                .iter()
                .map(|edge| &edge["node"])
                .filter(|node| node.is_object())
                .map(|node| RunConsoleLogLine {
                    number: number(&node["number"]),
                    timestamp: text(&node["timestamp"]),
                    level: text(&node["level"]),
                    label: text(&node["label"]),
                    content: text(&node["line"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let page_info = &connection["pageInfo"];
    ReadRunConsoleLogsResponse {
        lines,
        end_cursor: if tail {
            String::new()
        } else {
            text(&page_info["endCursor"])
        },
        has_next_page: !tail && page_info["hasNextPage"].as_bool().unwrap_or(false),
        total_lines: number(&run["logLineCount"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use cairn_core::client::ConnectionConfig;

    #[test]
    fn a_page_keeps_its_cursor_and_lines() {
        let run = serde_json::json!({
            "logLineCount": 21,
            "logLines": {
                "edges": [
                    {"node": {"number": 3, "timestamp": "2024-01-02T03:04:05.123456",
                              "level": "", "label": null, "line": "console line 0"}},
                    {"node": {"number": "4", "timestamp": null, "level": "error",
                              "label": "w1", "line": "oops"}},
                    {"node": null},
                ],
                "pageInfo": {"endCursor": "Y3Vyc29yOjQ=", "hasNextPage": true},
            },
        });
        let page = console_page(&run, false);
        assert_eq!(page.total_lines, 21);
        assert_eq!(page.end_cursor, "Y3Vyc29yOjQ=");
        assert!(page.has_next_page);
        assert_eq!(page.lines.len(), 2);
        assert_eq!(page.lines[0].number, 3);
        assert_eq!(page.lines[0].timestamp, "2024-01-02T03:04:05.123456");
        assert_eq!(page.lines[0].label, "");
        assert_eq!(page.lines[0].content, "console line 0");
        assert_eq!(page.lines[1].number, 4);
        assert_eq!(page.lines[1].timestamp, "");
        assert_eq!(page.lines[1].level, "error");
        assert_eq!(page.lines[1].label, "w1");
    }

    #[test]
    fn a_tail_is_one_page() {
        let run = serde_json::json!({
            "logLineCount": 5,
            "logLines": {"edges": [{"node": {"number": 4, "line": "last"}}],
                         "pageInfo": {"endCursor": "x", "hasNextPage": true}},
        });
        let page = console_page(&run, true);
        assert_eq!(page.end_cursor, "");
        assert!(!page.has_next_page);
        assert_eq!(page.lines.len(), 1);
        assert_eq!(page.lines[0].content, "last");
    }

    #[test]
    fn an_empty_log_has_no_lines_and_no_next_page() {
        let run = serde_json::json!({"logLineCount": 0, "logLines": null});
        let page = console_page(&run, false);
        assert!(page.lines.is_empty());
        assert_eq!(page.end_cursor, "");
        assert!(!page.has_next_page);
        assert_eq!(page.total_lines, 0);
    }

    /// Serves `answers` (status, body), one per connection, on a local port.
    fn serve(answers: Vec<(u16, &'static [u8])>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(body);
                let _ = stream.flush();
            }
        });
        format!("http://{addr}")
    }

    fn connection(base: &str) -> Connection {
        Connection::new(ConnectionConfig {
            base_url: base.to_owned(),
            api_key: "k".to_owned(),
            user_agent: "test".to_owned(),
        })
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".part"))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn downloads_into_new_directories_and_replaces() {
        let base = serve(vec![(200, b"first"), (200, b"second")]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("media/images/a.txt");
        let request = DownloadFileRequest {
            path: dest.display().to_string(),
            url: format!("{base}/storage/a?exp=1&sig=2"),
            size: 5,
        };
        let conn = connection(&base);
        download_file(&conn, &request).expect("download");
        assert_eq!(fs::read(&dest).expect("read"), b"first");
        download_file(&conn, &request).expect("download again");
        assert_eq!(fs::read(&dest).expect("read"), b"second");
        assert!(leftovers(tmp.path().join("media/images").as_path()).is_empty());
    }

    #[test]
    fn a_missing_file_is_an_error_and_leaves_nothing() {
        let base = serve(vec![(404, b"{\"error\":\"no such file\"}")]);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("gone.txt");
        let request = DownloadFileRequest {
            path: dest.display().to_string(),
            url: format!("{base}/storage/gone?sig=secret"),
            size: 1,
        };
        let error = download_file(&connection(&base), &request).expect_err("404");
        assert!(error.contains("404"), "{error}");
        assert!(error.contains("gone.txt"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(!dest.exists());
        assert!(leftovers(tmp.path()).is_empty());
    }

    #[test]
    fn a_relative_url_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let request = DownloadFileRequest {
            path: tmp.path().join("a").display().to_string(),
            url: "/storage/a".to_owned(),
            size: 0,
        };
        let error =
            download_file(&connection("http://127.0.0.1:9"), &request).expect_err("relative");
        assert!(error.contains("absolute"), "{error}");
    }
}
