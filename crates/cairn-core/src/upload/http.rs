//! A blocking HTTP client for a W&B-compatible server: GraphQL calls, JSON posts (the file
//! stream) and file uploads to signed URLs, each retried by the rules of [`super::retry`].
//!
//! Input: a [`ConnectionConfig`] (server, API key, user agent) and, per call, an [`Until`] that
//! bounds the retries by a deadline and an abort flag. Output: the server's parsed answer or an
//! [`HttpError`] that names the URL (without its query, which may hold a signature), the last
//! status or transport failure and how many attempts were made.
//!
//! Threads: every call blocks the calling thread; a [`Connection`] is cheap to clone and may be
//! shared by many threads, which then share one keep-alive pool and one rate-limit state
//! (a server's `RateLimit-Remaining: 0` holds back every thread's next request).
//!
//! Stopping: [`Until`] is checked before each attempt and during each wait (in slices of
//! [`WAIT_SLICE`]), and a file upload checks the abort flag while it streams; a request already
//! on the wire otherwise runs to its attempt timeout, which is cut short to end by the deadline.
//! Nothing runs in the background, so dropping a `Connection` needs no shutdown.
//!
//! This module never prints or logs: everything worth knowing goes into the returned error.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use ureq::http::{HeaderMap, Response, StatusCode};
use ureq::{Body, SendBody};

use super::retry::{self, Class, Jitter, RetryPolicy, Stop};

/// Waits are slept in slices this long, so that an abort is noticed quickly.
pub const WAIT_SLICE: Duration = Duration::from_millis(50);

/// The largest answer body read on success (GraphQL data, file stream acknowledgements).
const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// The most of an error answer's body that is read to find the server's message.
const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// How much of a body without a recognised message goes into an error.
const MESSAGE_CHARS: usize = 200;

/// Where and as whom to connect.
#[derive(Clone)]
pub struct ConnectionConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:8080` (a trailing `/` is ignored).
    pub base_url: String,
    /// The API key, sent as HTTP Basic auth `api:KEY` to the server (never to upload URLs).
    pub api_key: String,
    /// The `User-Agent` header, e.g. `cairn 0.1.0`.
    pub user_agent: String,
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// The retry policy of each kind of request a [`Connection`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policies {
    /// For [`Connection::graphql`].
    pub graphql: RetryPolicy,
    /// For [`Connection::post_json`].
    pub filestream: RetryPolicy,
    /// For [`Connection::put_file`].
    pub file_transfer: RetryPolicy,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            graphql: RetryPolicy::graphql(),
            filestream: RetryPolicy::filestream(),
            file_transfer: RetryPolicy::file_transfer(),
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A permanent HTTP status, or a retryable one after the last retry, with the server's
    /// message (`errors[0].message` or `error` of a JSON answer, else the start of the body).
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        /// The URL, without its query.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's message; ends with the attempt count when retries ran out.
        message: String,
    },
    /// A transport failure (connection, timeout, DNS, broken answer) after the last retry, or
    /// one that retrying cannot fix (bad URL, TLS certificate).
    #[error("request to {url} failed: {message}")]
    Transport {
        /// The URL, without its query.
        url: String,
        /// What went wrong; ends with the attempt count when retries ran out.
        message: String,
    },
    /// The GraphQL answer (HTTP 200) carried errors, or was not a GraphQL answer at all.
    #[error("GraphQL {} failed: {message}", operation_label(.operation))]
    GraphQl {
        /// The GraphQL operation name (empty for an anonymous document).
        operation: String,
        /// `errors[0].message`, or what was wrong with the answer.
        message: String,
    },
    /// The caller's deadline passed (or the next wait would pass it) or its abort flag was
    /// raised before the request succeeded.
    #[error("gave up on {url} (deadline passed or aborted): {last}")]
    GaveUp {
        /// The URL, without its query.
        url: String,
        /// The last attempt's error and the attempt count, or that no attempt was made.
        last: String,
    },
    /// A local file could not be read for upload.
    #[error("cannot read {} for upload", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
}

impl HttpError {
    /// Notes on a Status or Transport error how many attempts it took to get it.
    fn after_attempts(mut self, attempts: u32) -> Self {
        if let Self::Status { message, .. } | Self::Transport { message, .. } = &mut self {
            message.push_str(&format!(" ({})", attempts_text(attempts)));
        }
        self
    }
}

fn attempts_text(attempts: u32) -> String {
    match attempts {
        1 => "after 1 attempt".to_owned(),
        n => format!("after {n} attempts"),
    }
}

/// How long a call may keep trying.
#[derive(Debug, Clone, Default)]
pub struct Until {
    /// No attempt starts, and no wait ends, after this instant.
    pub deadline: Option<Instant>,
    /// When raised, the call stops at its next check and returns [`HttpError::GaveUp`].
    pub abort: Option<Arc<AtomicBool>>,
}

impl Until {
    /// No deadline and no abort flag: retry until the policy runs out.
    pub fn forever() -> Self {
        Self::default()
    }

    /// Only a deadline.
    pub fn deadline(at: Instant) -> Self {
        Self {
            deadline: Some(at),
            abort: None,
        }
    }

    fn aborted(&self) -> bool {
        self.abort
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// Sleeps for `wait` in slices; false when aborted meanwhile. (Callers check beforehand
    /// that the wait ends by the deadline.)
    pub(crate) fn sleep(&self, wait: Duration) -> bool {
        let end = Instant::now().checked_add(wait);
        loop {
            if self.aborted() {
                return false;
            }
            let now = Instant::now();
            let left = match end {
                Some(end) if end <= now => return true,
                Some(end) => end - now,
                None => WAIT_SLICE,
            };
            std::thread::sleep(left.min(WAIT_SLICE));
        }
    }
}

/// A connection to one server: a keep-alive pool, the credentials and the retry rules.
///
/// Cheap to clone; clones share the pool and the rate-limit state.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    agent: ureq::Agent,
    base_url: String,
    /// `Basic base64(api:KEY)`.
    authorization: String,
    policies: Policies,
    /// The earliest start of the next request, set when a server reports its rate limit spent.
    not_before: Mutex<Option<Instant>>,
    jitter: Mutex<Jitter>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("base_url", &self.inner.base_url)
            .field("api_key", &"<redacted>")
            .field("policies", &self.inner.policies)
            .finish_non_exhaustive()
    }
}

/// The outcome of one attempt.
enum Attempt<T> {
    Done(T),
    Retry {
        error: HttpError,
        /// The server's `Retry-After`.
        server_wait: Option<Duration>,
    },
    Fail(HttpError),
}

impl<T> Attempt<T> {
    fn and_then<U>(self, f: impl FnOnce(T) -> Result<U, HttpError>) -> Attempt<U> {
        match self {
            Self::Done(value) => match f(value) {
                Ok(value) => Attempt::Done(value),
                Err(error) => Attempt::Fail(error),
            },
            Self::Retry { error, server_wait } => Attempt::Retry { error, server_wait },
            Self::Fail(error) => Attempt::Fail(error),
        }
    }
}

impl Connection {
    /// A connection with the default retry policies.
    pub fn new(config: ConnectionConfig) -> Self {
        Self::with_policies(config, Policies::default())
    }

    /// A connection with the given retry policies (tests use short waits).
    pub fn with_policies(config: ConnectionConfig, policies: Policies) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // Statuses are answers to classify, not errors.
            .http_status_as_error(false)
            // A redirect left over is returned as its 3xx answer (a permanent error).
            .max_redirects_will_error(false)
            .user_agent(config.user_agent.as_str())
            .build()
            .into();
        let credentials = format!("api:{}", config.api_key);
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Self {
            inner: Arc::new(Inner {
                agent,
                base_url: config.base_url.trim_end_matches('/').to_owned(),
                authorization,
                policies,
                not_before: Mutex::new(None),
                jitter: Mutex::new(Jitter::new(seed)),
            }),
        }
    }

    /// The retry policies in use.
    pub fn policies(&self) -> &Policies {
        &self.inner.policies
    }

    /// Runs a GraphQL operation: POST `{base}/graphql` with Basic auth and the body
    /// `{"query", "variables", "operationName"}`; returns the answer's `data`. An empty
    /// `operation` means the one `query` names ([`operation_name`]), or none
    /// (`operationName: null`) for an anonymous document.
    ///
    /// Retried per [`Policies::graphql`]. An HTTP 200 answer with `errors` is not retried: it
    /// becomes [`HttpError::GraphQl`] with the first error's message.
    pub fn graphql(
        &self,
        operation: &str,
        query: &str,
        variables: Value,
        until: &Until,
    ) -> Result<Value, HttpError> {
        let url = format!("{}/graphql", self.inner.base_url);
        let operation = match operation {
            "" => operation_name(query).unwrap_or_default(),
            named => named,
        };
        let request = serde_json::json!({
            "query": query,
            "variables": variables,
            "operationName": (!operation.is_empty()).then_some(operation),
        });
        let body = serde_json::to_vec(&request).map_err(|e| HttpError::GraphQl {
            operation: operation.to_owned(),
            message: format!("cannot encode the request: {e}"),
        })?;
        let policy = self.inner.policies.graphql;
        self.with_retries(&policy, &url, until, |timeout| {
            let result = self
                .inner
                .agent
                .post(&url)
                .config()
                .timeout_per_call(Some(timeout))
                .build()
                .header("Authorization", &self.inner.authorization)
                .header("Content-Type", "application/json")
                .send(&body[..]);
            self.exchange(&url, result)
                .and_then(|answer| graphql_data(operation, &answer))
        })
    }

    /// The names of the features the server announces as enabled
    /// (`serverInfo { features { name isEnabled } }`, W&B's `ServerFeaturesQuery`).
    pub fn server_features(&self, until: &Until) -> Result<Vec<String>, HttpError> {
        const QUERY: &str = "query ServerFeaturesQuery {
  serverInfo { features { name isEnabled } }
}";
        let data = self.graphql(
            "ServerFeaturesQuery",
            QUERY,
            Value::Object(Default::default()),
            until,
        )?;
        Ok(data["serverInfo"]["features"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["isEnabled"].as_bool() == Some(true))
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// POSTs an encoded JSON body to `{base}{path}` (e.g. `/files/e/p/r/file_stream`) with Basic
    /// auth, gzipped with `Content-Encoding: gzip` when `gzip` is true; returns the parsed JSON
    /// answer ([`Value::Null`] for an empty or non-JSON one).
    ///
    /// Retried per [`Policies::filestream`].
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
            let mut request = self
                .inner
                .agent
                .post(&url)
                .config()
                .timeout_per_call(Some(timeout))
                .build()
                .header("Authorization", &self.inner.authorization)
                .header("Content-Type", "application/json");
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
    /// Retried per [`Policies::file_transfer`]; each attempt re-reads the file.
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
                abort: until.abort.clone(),
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
    /// attempt starts over. Retried per [`Policies::file_transfer`].
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
                abort: until.abort.clone(),
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

    /// Runs `attempt` (given the time it may take) until it succeeds, fails permanently, runs
    /// out of retries or meets `until`.
    fn with_retries<T>(
        &self,
        policy: &RetryPolicy,
        url: &str,
        until: &Until,
        mut attempt: impl FnMut(Duration) -> Attempt<T>,
    ) -> Result<T, HttpError> {
        let gave_up = |last: Option<&HttpError>, attempts: u32| HttpError::GaveUp {
            url: shown_url(url).to_owned(),
            last: match last {
                Some(error) => format!("{error} ({})", attempts_text(attempts)),
                None => "no attempt was made".to_owned(),
            },
        };
        let mut last: Option<HttpError> = None;
        let mut attempts: u32 = 0;
        loop {
            if !self.hold_back(until) {
                return Err(gave_up(last.as_ref(), attempts));
            }
            let now = Instant::now();
            if until.aborted() || until.expired(now) {
                return Err(gave_up(last.as_ref(), attempts));
            }
            let timeout = match until.deadline {
                Some(deadline) => policy
                    .attempt_timeout
                    .min(deadline.saturating_duration_since(now)),
                None => policy.attempt_timeout,
            };
            attempts = attempts.saturating_add(1);
            let (error, server_wait) = match attempt(timeout) {
                Attempt::Done(value) => {
                    if attempts > 1 {
                        super::operations::note_retry(None);
                    }
                    return Ok(value);
                }
                // A permanent answer after retried ones: say how many it took.
                Attempt::Fail(error) if attempts > 1 => return Err(error.after_attempts(attempts)),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, server_wait } => (error, server_wait),
            };
            if until.aborted() {
                return Err(gave_up(Some(&error), attempts));
            }
            let jitter = self.jitter();
            let retry = attempts - 1;
            match retry::next_wait(
                policy,
                retry,
                server_wait,
                jitter,
                Instant::now(),
                until.deadline,
            ) {
                Ok(wait) => {
                    super::operations::note_retry(Some(&error.to_string()));
                    if !until.sleep(wait) {
                        return Err(gave_up(Some(&error), attempts));
                    }
                    last = Some(error);
                }
                Err(Stop::Exhausted) => return Err(error.after_attempts(attempts)),
                Err(Stop::Deadline) => return Err(gave_up(Some(&error), attempts)),
            }
        }
    }

    /// Waits out a spent rate limit; false when `until` ends first.
    fn hold_back(&self, until: &Until) -> bool {
        let not_before = *self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(not_before) = not_before else {
            return true;
        };
        let now = Instant::now();
        if not_before <= now {
            return true;
        }
        if until.deadline.is_some_and(|deadline| deadline < not_before) {
            return false;
        }
        until.sleep(not_before - now)
    }

    /// Remembers a spent rate limit reported by an answer's headers.
    fn note_rate_limit(&self, headers: &HeaderMap) {
        let Some(wait) = retry::rate_limit_wait(
            header(headers, "ratelimit-remaining"),
            header(headers, "ratelimit-reset"),
        ) else {
            return;
        };
        let Some(at) = Instant::now().checked_add(wait) else {
            return;
        };
        let mut not_before = self
            .inner
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *not_before = Some(not_before.map_or(at, |old| old.max(at)));
    }

    fn jitter(&self) -> f64 {
        self.inner
            .jitter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_f64()
    }

    /// Turns one request's result into an attempt outcome: the body of a 2xx answer, or the
    /// classified error.
    fn exchange(&self, url: &str, result: Result<Response<Body>, ureq::Error>) -> Attempt<Vec<u8>> {
        let transport = |error: ureq::Error| {
            let class = classify_transport(&error);
            let error = HttpError::Transport {
                url: shown_url(url).to_owned(),
                message: error.to_string(),
            };
            match class {
                Class::Permanent => Attempt::Fail(error),
                Class::Success | Class::Retry => Attempt::Retry {
                    error,
                    server_wait: None,
                },
            }
        };
        let mut response = match result {
            Ok(response) => response,
            Err(error) => return transport(error),
        };
        self.note_rate_limit(response.headers());
        let status = response.status().as_u16();
        let class = retry::classify_status(status);
        if class == Class::Success {
            return match response
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec()
            {
                Ok(body) => Attempt::Done(body),
                Err(error) => transport(error),
            };
        }
        let server_wait = header(response.headers(), "retry-after")
            .and_then(|value| retry::retry_after(value, SystemTime::now()));
        let mut body = Vec::new();
        // The message is a courtesy: a body that breaks off still gives its first part.
        let _ = response
            .body_mut()
            .as_reader()
            .take(MAX_ERROR_BODY_BYTES)
            .read_to_end(&mut body);
        let error = HttpError::Status {
            url: shown_url(url).to_owned(),
            status,
            message: server_message(status, &body),
        };
        match class {
            Class::Retry => Attempt::Retry { error, server_wait },
            Class::Success | Class::Permanent => Attempt::Fail(error),
        }
    }
}

/// Whether a transport error may go away on another attempt.
///
/// Connection, timeout, DNS and protocol failures (a server that hangs up mid-answer) are
/// retried; a request that cannot be built, a redirect that cannot be followed and TLS
/// failures (certificates) are permanent. Kinds ureq may add later are retried, as W&B retries
/// transport errors by default.
fn classify_transport(error: &ureq::Error) -> Class {
    use ureq::Error as E;
    match error {
        E::BadUri(_)
        | E::Http(_)
        | E::RedirectFailed
        | E::TooManyRedirects
        | E::InvalidProxyUrl
        | E::RequireHttpsOnly(_)
        | E::BodyExceedsLimit(_)
        | E::Tls(_)
        | E::Pem(_)
        | E::Rustls(_)
        | E::TlsRequired
        | E::StatusCode(_) => Class::Permanent,
        _ => Class::Retry,
    }
}

/// A header's value, when present and text.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The URL as errors show it: without the query, which may carry a signature.
fn shown_url(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// The `data` of a GraphQL answer, or its first error.
fn graphql_data(operation: &str, answer: &[u8]) -> Result<Value, HttpError> {
    let error = |message: String| HttpError::GraphQl {
        operation: operation.to_owned(),
        message,
    };
    let answer: Value = serde_json::from_slice(answer).map_err(|e| {
        error(format!(
            "the answer is not JSON ({e}): {}",
            snippet(&String::from_utf8_lossy(answer))
        ))
    })?;
    if let Some(message) = first_error(&answer) {
        return Err(error(message));
    }
    match answer {
        Value::Object(mut fields) => fields
            .remove("data")
            .ok_or_else(|| error("the answer has no data".to_owned())),
        _ => Err(error("the answer is not a JSON object".to_owned())),
    }
}

/// `errors[0].message` of a GraphQL-style answer (or the whole first error when it has no
/// message); `None` when `errors` is absent or empty.
fn first_error(answer: &Value) -> Option<String> {
    match answer.get("errors")? {
        Value::Array(errors) => {
            let first = errors.first()?;
            Some(match first.get("message") {
                Some(Value::String(message)) => message.clone(),
                _ => match first {
                    Value::String(message) => message.clone(),
                    other => other.to_string(),
                },
            })
        }
        Value::String(message) => Some(message.clone()),
        _ => None,
    }
}

/// The server's message in an error answer: `errors[0].message` or `error` (a string, or an
/// object's `message`) of a JSON body; else the body's first [`MESSAGE_CHARS`] characters; else
/// the status's reason phrase.
fn server_message(status: u16, body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        if let Some(message) = first_error(&json) {
            return message;
        }
        match json.get("error") {
            Some(Value::String(message)) => return message.clone(),
            Some(Value::Object(fields)) => {
                if let Some(Value::String(message)) = fields.get("message") {
                    return message.clone();
                }
            }
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = snippet(&text);
    if !text.is_empty() {
        return text;
    }
    StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("empty answer")
        .to_owned()
}

/// How an error names an operation: `operation Name`, or `request` when it has no name.
fn operation_label(operation: &str) -> Cow<'static, str> {
    match operation {
        "" => Cow::Borrowed("request"),
        name => Cow::Owned(format!("operation {name}")),
    }
}

/// The name of the first operation a GraphQL document defines (`query Name(…) {…}`,
/// `mutation Name …`, `subscription Name …`), skipping fragments, comments and strings;
/// `None` for an anonymous operation (`{…}`, `query {…}`) or a document with none.
pub fn operation_name(document: &str) -> Option<&str> {
    let bytes = document.as_bytes();
    let is_name = |b: u8| b == b'_' || b.is_ascii_alphanumeric();
    let (mut at, mut depth, mut keyword) = (0, 0usize, false);
    while at < bytes.len() {
        match bytes[at] {
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'{' | b'(' => {
                if depth == 0 && keyword {
                    return None; // `query {` or `query (`: anonymous
                }
                depth += 1;
                at += 1;
            }
            b'}' | b')' => {
                depth = depth.saturating_sub(1);
                at += 1;
            }
            b if is_name(b) => {
                let start = at;
                while at < bytes.len() && is_name(bytes[at]) {
                    at += 1;
                }
                let word = &document[start..at];
                if depth > 0 {
                    continue;
                }
                if keyword {
                    return Some(word);
                }
                keyword = matches!(word, "query" | "mutation" | "subscription");
            }
            _ => at += 1,
        }
    }
    None
}

fn snippet(text: &str) -> String {
    text.trim().chars().take(MESSAGE_CHARS).collect()
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
    abort: Option<Arc<AtomicBool>>,
}

impl<R: Read> Read for AbortableReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .abort
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
        {
            return Err(io::Error::other("upload aborted"));
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::{TcpListener, TcpStream};
    use std::thread::JoinHandle;

    use flate2::read::GzDecoder;

    use super::*;

    /// One request as the test server saw it.
    #[derive(Debug)]
    struct Request {
        line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Request {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        }
    }

    /// A one-request-per-connection HTTP/1.1 server on 127.0.0.1 that answers the nth request
    /// with `reply(n, &request)` (raw bytes) and then hangs up.
    struct Server {
        base_url: String,
        stop: Arc<AtomicBool>,
        handle: JoinHandle<Vec<Request>>,
    }

    impl Server {
        fn start(mut reply: impl FnMut(usize, &Request) -> Vec<u8> + Send + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let base_url = format!("http://{}", listener.local_addr().unwrap());
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = Arc::clone(&stop);
            let handle = std::thread::spawn(move || {
                let started = Instant::now();
                let mut seen = Vec::new();
                // Bounded in time, so a broken test cannot hang the suite.
                while !stopped.load(Ordering::Relaxed)
                    && started.elapsed() < Duration::from_secs(30)
                {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_secs(5)))
                                .unwrap();
                            let Some(request) = read_request(&stream) else {
                                continue;
                            };
                            let answer = reply(seen.len(), &request);
                            seen.push(request);
                            let _ = stream.write_all(&answer);
                            let _ = stream.flush();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break,
                    }
                }
                seen
            });
            Self {
                base_url,
                stop,
                handle,
            }
        }

        /// Stops the server and returns the requests it saw.
        fn finish(self) -> Vec<Request> {
            self.stop.store(true, Ordering::Relaxed);
            self.handle.join().unwrap()
        }
    }

    fn read_request(stream: &TcpStream) -> Option<Request> {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).ok()?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':')?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut request = Request {
            line: line.trim_end().to_owned(),
            headers,
            body: Vec::new(),
        };
        let len: usize = request
            .header("content-length")
            .map_or(Ok(0), str::parse)
            .ok()?;
        request.body = vec![0; len];
        reader.read_exact(&mut request.body).ok()?;
        Some(request)
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
        let mut text = format!(
            "HTTP/1.1 {status} Test\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(body);
        text.into_bytes()
    }

    fn ok_json(body: &str) -> Vec<u8> {
        answer(200, &[("Content-Type", "application/json")], body)
    }

    fn test_policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            min_wait: Duration::from_millis(10),
            max_wait: Duration::from_millis(50),
            attempt_timeout: Duration::from_secs(5),
        }
    }

    fn connect_with(base_url: &str, policy: RetryPolicy) -> Connection {
        let config = ConnectionConfig {
            base_url: format!("{base_url}/"),
            api_key: "KEY123".to_owned(),
            user_agent: "cairn test".to_owned(),
        };
        let policies = Policies {
            graphql: policy,
            filestream: policy,
            file_transfer: policy,
        };
        Connection::with_policies(config, policies)
    }

    fn connect(server: &Server) -> Connection {
        connect_with(&server.base_url, test_policy())
    }

    fn viewer(connection: &Connection, until: &Until) -> Result<Value, HttpError> {
        let variables = serde_json::json!({"entity": "e"});
        connection.graphql("Viewer", "query Viewer { viewer { id } }", variables, until)
    }

    #[test]
    fn graphql_succeeds_after_two_server_errors() {
        let server = Server::start(|n, _| match n {
            0 | 1 => answer(500, &[], "boom"),
            _ => ok_json(r#"{"data": {"viewer": {"id": "u1"}}}"#),
        });
        let data = viewer(&connect(&server), &Until::forever()).unwrap();
        assert_eq!(data, serde_json::json!({"viewer": {"id": "u1"}}));
        let requests = server.finish();
        assert_eq!(requests.len(), 3);
        for request in &requests {
            assert_eq!(request.line, "POST /graphql HTTP/1.1");
            // base64("api:KEY123")
            assert_eq!(
                request.header("authorization"),
                Some("Basic YXBpOktFWTEyMw==")
            );
            assert_eq!(request.header("user-agent"), Some("cairn test"));
            assert_eq!(request.header("content-type"), Some("application/json"));
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(
                body,
                serde_json::json!({
                    "query": "query Viewer { viewer { id } }",
                    "variables": {"entity": "e"},
                    "operationName": "Viewer",
                })
            );
        }
    }

    #[test]
    fn a_retried_request_shows_on_its_operation() {
        use super::super::operations::Operations;
        let operations = Arc::new(Operations::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (ops, log) = (operations.clone(), seen.clone());
        let server = Server::start(move |n, _| {
            let status = ops.snapshot().first().map(|v| v.error_status.clone());
            log.lock().unwrap().push(status.unwrap_or_default());
            match n {
                0 => answer(500, &[], "boom"),
                _ => ok_json(r#"{"data": {"viewer": {"id": "u1"}}}"#),
            }
        });
        let running = operations.start("updating run metadata");
        viewer(&connect(&server), &Until::forever()).unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0], "", "no retry before the first answer");
        assert!(
            seen[1].starts_with("retrying: ") && seen[1].contains("500"),
            "{seen:?}"
        );
        assert_eq!(
            operations.snapshot()[0].error_status,
            "",
            "cleared once through"
        );
        drop(running);
        server.finish();
    }

    #[test]
    fn retry_after_overrides_backoff() {
        let server = Server::start(|n, _| match n {
            0 => answer(429, &[("Retry-After", "1")], "slow down"),
            _ => ok_json(r#"{"data": {}}"#),
        });
        let started = Instant::now();
        viewer(&connect(&server), &Until::forever()).unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1800), "{elapsed:?}");
        assert_eq!(server.finish().len(), 2);
    }

    #[test]
    fn unauthorized_fails_at_once_with_the_server_message() {
        let server = Server::start(|_, _| {
            answer(401, &[], r#"{"errors": [{"message": "invalid api key"}]}"#)
        });
        let error = viewer(&connect(&server), &Until::forever()).unwrap_err();
        match &error {
            HttpError::Status {
                url,
                status,
                message,
            } => {
                assert_eq!(url, &format!("{}/graphql", server.base_url));
                assert_eq!(*status, 401);
                assert_eq!(message, "invalid api key");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            error.to_string().contains("HTTP 401: invalid api key"),
            "{error}"
        );
        assert_eq!(server.finish().len(), 1);
    }

    #[test]
    fn permanent_status_with_error_field() {
        let server = Server::start(|_, _| answer(403, &[], r#"{"error": "run is locked"}"#));
        let error = connect(&server)
            .post_json("/files/e/p/r/file_stream", b"{}", false, &Until::forever())
            .unwrap_err();
        assert!(
            matches!(&error, HttpError::Status { status: 403, message, .. } if message == "run is locked"),
            "{error:?}"
        );
        assert_eq!(server.finish().len(), 1);
    }

    #[test]
    fn graphql_errors_become_graphql_error() {
        let server = Server::start(|_, _| {
            ok_json(
                r#"{"data": null, "errors": [{"message": "project not found", "path": ["x"]}]}"#,
            )
        });
        let error = viewer(&connect(&server), &Until::forever()).unwrap_err();
        match &error {
            HttpError::GraphQl { operation, message } => {
                assert_eq!(operation, "Viewer");
                assert_eq!(message, "project not found");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(server.finish().len(), 1);
    }

    #[test]
    fn operation_names_come_from_the_document() {
        for (document, name) in [
            ("query Viewer { viewer { id } }", Some("Viewer")),
            (
                "\n# a comment: query Wrong\nmutation LinkArtifact($input: LinkArtifactInput!) {\n  linkArtifact(input: $input) { versionIndex }\n}",
                Some("LinkArtifact"),
            ),
            (
                "fragment F on Run { name \"query X\" }\nquery RunInfo { run { ...F } }",
                Some("RunInfo"),
            ),
            ("subscription S{x}", Some("S")),
            ("{ viewer { id } }", None),
            ("query { viewer { id } }", None),
            ("query($a: Int) { x(a: $a) }", None),
            ("", None),
            ("query", None),
            ("\"unterminated", None),
        ] {
            assert_eq!(operation_name(document), name, "{document:?}");
        }
    }

    #[test]
    fn an_unnamed_operation_takes_the_documents_name_or_none() {
        let server = Server::start(|n, _| match n {
            0 => ok_json(r#"{"data": {"x": 1}}"#),
            _ => ok_json(r#"{"errors": [{"message": "Unknown type \"X\""}]}"#),
        });
        let connection = connect(&server);
        let until = Until::forever();
        let named = "mutation Link { x }";
        assert!(connection.graphql("", named, Value::Null, &until).is_ok());
        let error = connection
            .graphql("", "{ x }", Value::Null, &until)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"GraphQL request failed: Unknown type "X""#
        );
        let bodies: Vec<Value> = server
            .finish()
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        assert_eq!(bodies[0]["operationName"], "Link");
        assert_eq!(bodies[1]["operationName"], Value::Null);
    }

    #[test]
    fn graphql_answer_that_is_not_graphql() {
        let server = Server::start(|n, _| match n {
            0 => ok_json("<html>proxy login</html>"),
            _ => ok_json(r#"{"errors": []}"#),
        });
        let connection = connect(&server);
        let error = viewer(&connection, &Until::forever()).unwrap_err();
        assert!(
            matches!(&error, HttpError::GraphQl { message, .. } if message.contains("<html>proxy login</html>")),
            "{error:?}"
        );
        let error = viewer(&connection, &Until::forever()).unwrap_err();
        assert!(
            matches!(&error, HttpError::GraphQl { message, .. } if message == "the answer has no data"),
            "{error:?}"
        );
        server.finish();
    }

    #[test]
    fn post_json_gzips_the_body() {
        let server = Server::start(|n, _| match n {
            0 => ok_json(r#"{"exitcode": null, "limits": {}}"#),
            _ => answer(200, &[], ""),
        });
        let connection = connect(&server);
        let body = br#"{"files": {"output.log": {"offset": 0, "content": ["hello"]}}}"#;
        let answer = connection
            .post_json("/files/e/p/r/file_stream", body, true, &Until::forever())
            .unwrap();
        assert_eq!(answer, serde_json::json!({"exitcode": null, "limits": {}}));
        // An empty answer is Null.
        let answer = connection
            .post_json("/files/e/p/r/file_stream", body, false, &Until::forever())
            .unwrap();
        assert_eq!(answer, Value::Null);

        let requests = server.finish();
        assert_eq!(requests.len(), 2);
        let gzipped = &requests[0];
        assert_eq!(gzipped.line, "POST /files/e/p/r/file_stream HTTP/1.1");
        assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
        assert_eq!(
            gzipped.header("authorization"),
            Some("Basic YXBpOktFWTEyMw==")
        );
        let mut plain = Vec::new();
        GzDecoder::new(&gzipped.body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
        assert_eq!(requests[1].header("content-encoding"), None);
        assert_eq!(requests[1].body, body);
    }

    #[test]
    fn put_file_streams_the_file_without_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bin");
        let mut jitter = Jitter::new(99);
        let data: Vec<u8> = (0..3 << 20)
            .map(|_| (jitter.next_f64() * 256.0) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();

        let server = Server::start(|_, _| answer(200, &[], ""));
        let url = format!(
            "{}/bucket/model.bin?X-Amz-Signature=secret",
            server.base_url
        );
        let headers = vec![
            (
                "Content-Type".to_owned(),
                "application/octet-stream".to_owned(),
            ),
            ("x-amz-meta-run".to_owned(), "r1".to_owned()),
            ("Content-Length".to_owned(), "1".to_owned()),
        ];
        connect(&server)
            .put_file(&url, &path, &headers, &Until::forever())
            .unwrap();
        let requests = server.finish();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(
            request.line,
            "PUT /bucket/model.bin?X-Amz-Signature=secret HTTP/1.1"
        );
        assert_eq!(request.header("authorization"), None);
        assert_eq!(request.header("content-length"), Some("3145728"));
        let lengths = request
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .count();
        assert_eq!(lengths, 1, "{:?}", request.headers);
        assert_eq!(
            request.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(request.header("x-amz-meta-run"), Some("r1"));
        assert!(request.body == data, "uploaded bytes differ");
    }

    #[test]
    fn put_file_of_a_missing_file_fails_without_a_request() {
        let server = Server::start(|_, _| answer(200, &[], ""));
        let path = Path::new("/nonexistent/cairn/upload.bin");
        let url = format!("{}/upload", server.base_url);
        let error = connect(&server)
            .put_file(&url, path, &[], &Until::forever())
            .unwrap_err();
        assert!(
            matches!(&error, HttpError::File { path: p, .. } if p == path),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "cannot read /nonexistent/cairn/upload.bin for upload"
        );
        assert_eq!(server.finish().len(), 0);
    }

    #[test]
    fn errors_hide_the_signed_query() {
        let server = Server::start(|_, _| answer(403, &[], "<Error>SignatureDoesNotMatch</Error>"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "x").unwrap();
        let url = format!("{}/b/f.txt?sig=secret", server.base_url);
        let error = connect(&server)
            .put_file(&url, &path, &[], &Until::forever())
            .unwrap_err();
        let text = error.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("SignatureDoesNotMatch"), "{text}");
        server.finish();
    }

    #[test]
    fn abort_stops_a_retry_loop_quickly() {
        let server = Server::start(|_, _| answer(503, &[], "busy"));
        let policy = RetryPolicy {
            min_wait: Duration::from_secs(10),
            max_wait: Duration::from_secs(10),
            ..test_policy()
        };
        let connection = connect_with(&server.base_url, policy);
        let flag = Arc::new(AtomicBool::new(false));
        let until = Until {
            deadline: None,
            abort: Some(Arc::clone(&flag)),
        };
        let raiser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::Relaxed);
            Instant::now()
        });
        let error = viewer(&connection, &until).unwrap_err();
        let returned = Instant::now();
        let raised = raiser.join().unwrap();
        let lag = returned.saturating_duration_since(raised);
        assert!(lag < Duration::from_millis(200), "noticed after {lag:?}");
        match &error {
            HttpError::GaveUp { last, .. } => {
                assert!(last.contains("HTTP 503: busy (after 1 attempt)"), "{last}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(server.finish().len(), 1);
    }

    #[test]
    fn raised_abort_flag_makes_no_request() {
        let server = Server::start(|_, _| ok_json(r#"{"data": {}}"#));
        let until = Until {
            deadline: None,
            abort: Some(Arc::new(AtomicBool::new(true))),
        };
        let error = viewer(&connect(&server), &until).unwrap_err();
        assert!(
            matches!(&error, HttpError::GaveUp { last, .. } if last == "no attempt was made"),
            "{error:?}"
        );
        assert_eq!(server.finish().len(), 0);
    }

    #[test]
    fn deadline_stops_before_a_wait_that_would_pass_it() {
        let server = Server::start(|_, _| answer(500, &[], "down"));
        let policy = RetryPolicy {
            min_wait: Duration::from_secs(1),
            max_wait: Duration::from_secs(1),
            ..test_policy()
        };
        let connection = connect_with(&server.base_url, policy);
        let started = Instant::now();
        let until = Until::deadline(started + Duration::from_millis(300));
        let error = viewer(&connection, &until).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(&error, HttpError::GaveUp { .. }), "{error:?}");
        assert_eq!(server.finish().len(), 1);
    }

    #[test]
    fn running_out_of_retries_returns_the_last_status() {
        let server = Server::start(|n, _| answer(502, &[], &format!("bad gateway {n}")));
        let policy = RetryPolicy {
            max_retries: 2,
            ..test_policy()
        };
        let error = viewer(&connect_with(&server.base_url, policy), &Until::forever()).unwrap_err();
        match &error {
            HttpError::Status {
                status, message, ..
            } => {
                assert_eq!(*status, 502);
                assert_eq!(message, "bad gateway 2 (after 3 attempts)");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(server.finish().len(), 3);
    }

    #[test]
    fn a_permanent_answer_after_retries_counts_the_attempts() {
        let server = Server::start(|n, _| match n {
            0 => answer(503, &[], "starting"),
            _ => answer(404, &[], r#"{"error": "no such run"}"#),
        });
        let error = viewer(&connect(&server), &Until::forever()).unwrap_err();
        assert!(
            matches!(&error, HttpError::Status { status: 404, message, .. } if message == "no such run (after 2 attempts)"),
            "{error:?}"
        );
        assert_eq!(server.finish().len(), 2);
    }

    #[test]
    fn connections_are_shareable() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<Connection>();
        check::<Until>();
        fn check_error<T: std::error::Error + Send + Sync + 'static>() {}
        check_error::<HttpError>();
    }

    #[test]
    fn a_connection_cut_mid_answer_is_retried() {
        let server = Server::start(|n, _| match n {
            0 => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"data\""
                .to_vec(),
            _ => ok_json(r#"{"data": {"ok": true}}"#),
        });
        let data = viewer(&connect(&server), &Until::forever()).unwrap();
        assert_eq!(data, serde_json::json!({"ok": true}));
        assert_eq!(server.finish().len(), 2);
    }

    #[test]
    fn a_refused_connection_is_retried_then_reported() {
        // A port that was just free: nothing listens there any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let policy = RetryPolicy {
            max_retries: 2,
            ..test_policy()
        };
        let connection = connect_with(&format!("http://127.0.0.1:{port}"), policy);
        let error = viewer(&connection, &Until::forever()).unwrap_err();
        match &error {
            HttpError::Transport { url, message } => {
                assert_eq!(url, &format!("http://127.0.0.1:{port}/graphql"));
                assert!(message.ends_with("(after 3 attempts)"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_spent_rate_limit_holds_back_the_next_request() {
        let server = Server::start(|n, _| match n {
            0 => answer(
                200,
                &[("RateLimit-Remaining", "0"), ("RateLimit-Reset", "0.4")],
                "{}",
            ),
            _ => answer(200, &[], "{}"),
        });
        let connection = connect(&server);
        connection
            .post_json("/fs", b"{}", false, &Until::forever())
            .unwrap();
        let started = Instant::now();
        connection
            .clone()
            .post_json("/fs", b"{}", false, &Until::forever())
            .unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
        // A deadline before the limit resets gives up without a request.
        let server_requests = {
            let limited = Server::start(|_, _| {
                answer(
                    200,
                    &[("RateLimit-Remaining", "0"), ("RateLimit-Reset", "60")],
                    "{}",
                )
            });
            let connection = connect(&limited);
            connection
                .post_json("/fs", b"{}", false, &Until::forever())
                .unwrap();
            let until = Until::deadline(Instant::now() + Duration::from_secs(1));
            let error = connection
                .post_json("/fs", b"{}", false, &until)
                .unwrap_err();
            assert!(matches!(&error, HttpError::GaveUp { .. }), "{error:?}");
            limited.finish().len()
        };
        assert_eq!(server_requests, 1);
        assert_eq!(server.finish().len(), 2);
    }

    #[test]
    fn server_messages() {
        let cases: &[(u16, &str, &str)] = &[
            (
                400,
                r#"{"errors": [{"message": "bad"}, {"message": "worse"}]}"#,
                "bad",
            ),
            (400, r#"{"errors": [{"code": 1}]}"#, r#"{"code":1}"#),
            (400, r#"{"errors": ["plain"]}"#, "plain"),
            (400, r#"{"error": "nope"}"#, "nope"),
            (400, r#"{"error": {"message": "deep"}}"#, "deep"),
            (400, r#"{"error": 5}"#, r#"{"error": 5}"#),
            (404, "  not here\n", "not here"),
            (404, "", "Not Found"),
            (599, "", "empty answer"),
        ];
        for &(status, body, want) in cases {
            assert_eq!(server_message(status, body.as_bytes()), want, "{body:?}");
        }
        let long = "é".repeat(500);
        assert_eq!(
            server_message(500, long.as_bytes()).chars().count(),
            MESSAGE_CHARS
        );
        let binary = [0xff_u8, 0xfe, 0x00, 0x80];
        assert!(!server_message(500, &binary).is_empty());
    }

    #[test]
    fn shown_urls_drop_the_query() {
        assert_eq!(shown_url("https://s3/b/k?sig=x&a=b"), "https://s3/b/k");
        assert_eq!(shown_url("http://h/graphql"), "http://h/graphql");
    }

    #[test]
    fn transport_classification() {
        use ureq::Error as E;
        let retry = [
            E::Io(io::Error::from(io::ErrorKind::ConnectionRefused)),
            E::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
            E::Io(io::Error::from(io::ErrorKind::UnexpectedEof)),
            E::HostNotFound,
            E::ConnectionFailed,
            E::Timeout(ureq::Timeout::Global),
        ];
        for error in &retry {
            assert_eq!(classify_transport(error), Class::Retry, "{error:?}");
        }
        let permanent = [
            E::BadUri("x".to_owned()),
            E::RedirectFailed,
            E::TooManyRedirects,
            E::Tls("no provider"),
            E::RequireHttpsOnly("http://x".to_owned()),
        ];
        for error in &permanent {
            assert_eq!(classify_transport(error), Class::Permanent, "{error:?}");
        }
    }

    #[test]
    fn debug_hides_the_api_key() {
        let config = ConnectionConfig {
            base_url: "http://h".to_owned(),
            api_key: "SECRET-KEY".to_owned(),
            user_agent: "cairn".to_owned(),
        };
        assert!(!format!("{config:?}").contains("SECRET-KEY"));
        let connection = Connection::new(config);
        let shown = format!("{connection:?}");
        assert!(
            !shown.contains("SECRET-KEY") && !shown.contains("U0VDUkVU"),
            "{shown}"
        );
        assert_eq!(connection.policies(), &Policies::default());
    }
}
