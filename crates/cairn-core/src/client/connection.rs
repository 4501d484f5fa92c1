//! [`Connection`]: one server's keep-alive pool, credentials and retry state, and the retry
//! loop every request runs through.
//!
//! Input: a [`ConnectionConfig`] and the [`Policies`] per kind of request. Each call
//! (`graphql.rs`, `transfer.rs`) builds its request inside `Connection::with_retries`, which
//! classifies each attempt's outcome (`exchange`: status or transport failure, by the rules of
//! [`super::retry`]), waits out the backoff, `Retry-After` or a spent rate limit, and stops at
//! the caller's [`Until`]. Retries are noted on the caller's current operation
//! ([`super::operations`]).
//!
//! Threads: a `Connection` is cheap to clone and shared by many threads, which then share one
//! keep-alive pool and one rate-limit state. Nothing runs in the background.

use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use ureq::http::{HeaderMap, Response};
use ureq::typestate::WithBody;
use ureq::{Body, RequestBuilder};

use super::error::{HttpError, attempts_text, server_message, shown_url};
use super::retry::{self, Class, Jitter, RetryPolicy, Stop};
use super::until::Until;

/// The largest answer body read on success (GraphQL data, file stream acknowledgements).
const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// The most of an error answer's body that is read to find the server's message.
const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

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

/// A connection to one server: a keep-alive pool, the credentials and the retry rules.
///
/// Cheap to clone; clones share the pool and the rate-limit state.
#[derive(Clone)]
pub struct Connection {
    pub(super) inner: Arc<Inner>,
}

/// What every clone of a [`Connection`] shares.
pub(super) struct Inner {
    pub(super) agent: ureq::Agent,
    pub(super) base_url: String,
    /// `Basic base64(api:KEY)`.
    authorization: String,
    pub(super) policies: Policies,
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
pub(super) enum Attempt<T> {
    Done(T),
    Retry {
        error: HttpError,
        /// The server's `Retry-After`.
        server_wait: Option<Duration>,
    },
    Fail(HttpError),
}

impl<T> Attempt<T> {
    pub(super) fn and_then<U>(self, f: impl FnOnce(T) -> Result<U, HttpError>) -> Attempt<U> {
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

    /// A POST of a JSON body to the server itself (not a signed URL): Basic auth, the JSON
    /// content type, and the attempt's `timeout`.
    pub(super) fn post_json_request(
        &self,
        url: &str,
        timeout: Duration,
    ) -> RequestBuilder<WithBody> {
        self.inner
            .agent
            .post(url)
            .config()
            .timeout_per_call(Some(timeout))
            .build()
            .header("Authorization", &self.inner.authorization)
            .header("Content-Type", "application/json")
    }

    /// Runs `attempt` (given the time it may take) until it succeeds, fails permanently, runs
    /// out of retries or meets `until`.
    pub(super) fn with_retries<T>(
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
    pub(super) fn exchange(
        &self,
        url: &str,
        result: Result<Response<Body>, ureq::Error>,
    ) -> Attempt<Vec<u8>> {
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
pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

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
