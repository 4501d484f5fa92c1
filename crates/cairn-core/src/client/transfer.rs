//! Requests that move bytes: a JSON body posted to the server (the filestream, gzipped when
//! asked), files PUT to signed upload URLs and GET from signed download URLs, streamed from and
//! to disk, and the helpers their callers share: the `uploadHeaders` of an answer and
//! `in_parallel` to run transfers several at a time.
//!
//! Signed URLs get no credentials. A file transfer re-reads (or rewrites) the file on every
//! attempt and checks the caller's abort flag while it streams, so a long upload stops
//! promptly. Each call blocks its thread; `in_parallel` runs scoped threads that end before
//! it returns.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use ureq::SendBody;

use super::connection::{Attempt, Connection, header};
use super::error::{HttpError, shown_url};
use super::until::Until;

impl Connection {
    /// POSTs an encoded JSON body to `{base}{path}` (e.g. `/files/e/p/r/file_stream`) with Basic
    /// auth, gzipped with `Content-Encoding: gzip` when `gzip` is true; returns the parsed JSON
    /// answer ([`Value::Null`] for an empty or non-JSON one).
    ///
    /// Retried per [`Policies::filestream`](super::Policies::filestream).
    pub fn post_json(
        &self,
        path: &str,
        body: &[u8],
        gzip: bool,
        until: &Until,
    ) -> Result<Value, HttpError> {
        let url = format!("{}{}", self.inner.base_url, path);
        let payload = if gzip {
            Cow::Owned(gzip_bytes(body).map_err(|e| HttpError::Transport {
                url: shown_url(&url).to_owned(),
                message: format!("cannot compress the body: {e}"),
            })?)
        } else {
            Cow::Borrowed(body)
        };
        let policy = self.inner.policies.filestream;
        self.with_retries(&policy, &url, until, |timeout| {
            let mut request = self.post_json_request(&url, timeout);
            if gzip {
                request = request.header("Content-Encoding", "gzip");
            }
            let result = request.send(&payload[..]);
            self.exchange(&url, result)
                .and_then(|answer| Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null)))
        })
    }

    /// PUTs the file at `path` to `url` (a signed upload URL: no credentials are sent),
    /// streamed from disk, with `headers` (the server's `uploadHeaders`).
    ///
    /// Retried per [`Policies::file_transfer`](super::Policies::file_transfer); each attempt
    /// re-reads the file.
    pub fn put_file(
        &self,
        url: &str,
        path: &Path,
        headers: &[(String, String)],
        until: &Until,
    ) -> Result<(), HttpError> {
        self.put_file_part(url, path, None, headers, until)
            .map(|_| ())
    }

    /// PUTs the bytes of `path` in `range` (`(offset, length)`; the whole file when `None`)
    /// like [`Connection::put_file`]; returns the answer's `ETag` header, quotes included,
    /// when it has one (multipart parts need it).
    pub fn put_file_part(
        &self,
        url: &str,
        path: &Path,
        range: Option<(u64, u64)>,
        headers: &[(String, String)],
        until: &Until,
    ) -> Result<Option<String>, HttpError> {
        use std::io::{Seek, SeekFrom};
        let policy = self.inner.policies.file_transfer;
        let file_error = |source| HttpError::File {
            path: path.to_owned(),
            source,
        };
        self.with_retries(&policy, url, until, |timeout| {
            let mut file = match File::open(path) {
                Ok(file) => file,
                Err(source) => return Attempt::Fail(file_error(source)),
            };
            let (offset, len) = match range {
                Some(range) => range,
                None => match file.metadata() {
                    Ok(metadata) => (0, metadata.len()),
                    Err(source) => return Attempt::Fail(file_error(source)),
                },
            };
            if offset > 0
                && let Err(source) = file.seek(SeekFrom::Start(offset))
            {
                return Attempt::Fail(file_error(source));
            }
            let mut request = self
                .inner
                .agent
                .put(url)
                .config()
                .timeout_per_call(Some(timeout))
                .build()
                .header("Content-Length", len.to_string());
            for (name, value) in headers {
                // The length is the file's; a second Content-Length would break the request.
                if !name.eq_ignore_ascii_case("content-length") {
                    request = request.header(name.as_str(), value.as_str());
                }
            }
            let reader = AbortableReader {
                inner: file.take(len),
                until: until.clone(),
            };
            let result = request.send(SendBody::from_owned_reader(reader));
            let etag = result
                .as_ref()
                .ok()
                .and_then(|r| header(r.headers(), "etag"))
                .map(str::to_owned);
            self.exchange(url, result).and_then(|_| Ok(etag))
        })
    }

    /// GETs `url` (a signed download URL: no credentials are sent) into a new file at
    /// `dest`, streaming, and returns the MD5 of the bytes written. A cut-off or failed
    /// attempt starts over. Retried per
    /// [`Policies::file_transfer`](super::Policies::file_transfer).
    pub fn get_to_file(
        &self,
        url: &str,
        dest: &Path,
        until: &Until,
    ) -> Result<[u8; 16], HttpError> {
        use md5::Digest as _;
        let policy = self.inner.policies.file_transfer;
        let file_error = |source| HttpError::File {
            path: dest.to_owned(),
            source,
        };
        self.with_retries(&policy, url, until, |timeout| {
            let result = self
                .inner
                .agent
                .get(url)
                .config()
                .timeout_per_call(Some(timeout))
                .build()
                .call();
            let mut response = match result {
                Ok(response) if response.status().is_success() => response,
                other => return self.exchange(url, other).and_then(|_| Ok([0; 16])),
            };
            let mut out = match File::create(dest) {
                Ok(file) => io::BufWriter::with_capacity(1 << 20, file),
                Err(source) => return Attempt::Fail(file_error(source)),
            };
            let mut md5 = md5::Md5::new();
            let mut reader = AbortableReader {
                inner: response.body_mut().as_reader(),
                until: until.clone(),
            };
            let mut buf = vec![0u8; 1 << 20];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        md5.update(&buf[..n]);
                        if let Err(source) = out.write_all(&buf[..n]) {
                            return Attempt::Fail(file_error(source));
                        }
                    }
                    Err(error) => {
                        return Attempt::Retry {
                            error: HttpError::Transport {
                                url: shown_url(url).to_owned(),
                                message: error.to_string(),
                            },
                            server_wait: None,
                        };
                    }
                }
            }
            if let Err(source) = out.flush() {
                return Attempt::Fail(file_error(source));
            }
            Attempt::Done(md5.finalize().into())
        })
    }
}

/// Gzips a filestream body at the fastest level: JSON lines still shrink several times,
/// at about a third of the default level's CPU (the core's CPU per logged value is a
/// budget; see BENCHMARKS.md).
fn gzip_bytes(body: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 3 + 64), Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// A request body that fails once the abort flag is raised, so a long upload stops promptly.
struct AbortableReader<R> {
    inner: R,
    /// Only its abort flag is checked (the deadline bounds the attempt's timeout instead).
    until: Until,
}

impl<R: Read> Read for AbortableReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.until.aborted() {
            return Err(io::Error::other("upload aborted"));
        }
        self.inner.read(buf)
    }
}

/// An answer's `uploadHeaders` (`"Name:value"` strings, added to every PUT of a batch) as
/// pairs.
pub(crate) fn upload_headers(answer: &Value) -> Vec<(String, String)> {
    answer["uploadHeaders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str()?.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Runs `work` on every item on up to `threads` threads (items are handed out in order) and
/// returns the results in the order they finished. Once a result meets `stop`, no further
/// item is started (those already running finish).
pub(crate) fn in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    work: impl Fn(T) -> R + Sync,
    stop: impl Fn(&R) -> bool + Sync,
) -> Vec<R> {
    let queue = std::sync::Mutex::new(items.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    let stopped = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stopped.load(Ordering::Relaxed) {
                    let Some(item) = queue.lock().ok().and_then(|mut q| q.next()) else {
                        return;
                    };
                    let result = work(item);
                    if stop(&result) {
                        stopped.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut results) = results.lock() {
                        results.push(result);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
