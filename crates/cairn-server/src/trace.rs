//! Every request in one `request` span with an id, and a log line for every request that
//! fails: the server says what went wrong, where, and for whom.
//!
//! [`requests`] wraps the router: it takes the client's `X-Request-Id` when it is a short
//! token (else makes one), opens a `request{id, method, path, user}` span around the
//! handler (the query string is left out: signed URLs carry their signature there), and
//! answers with the id in `X-Request-Id`. The handlers fill in `user` once they know it
//! ([`record_user`]). Errors are logged where they are made, inside the span, so each line
//! carries the id, the route and the user: [`log_error`] (4xx at WARN, 5xx at ERROR,
//! called by `ApiError`'s and the UI's answers, which mark the response [`Logged`]), and
//! GraphQL's errors, answered with status 200, by the GraphQL endpoint. A 4xx/5xx that no
//! handler logged (an extractor's rejection) is logged here when the response leaves.
//!
//! No state and no threads; runs on the request's task.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// The header that carries a request's id, both ways.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// Marks a response whose failure was already logged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Logged;

/// Runs the request inside its span, answers its id, and logs a failure no handler
/// logged (see the module doc).
pub(crate) async fn requests(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_token(v))
        .map_or_else(new_id, str::to_owned);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = request.uri().path(),
        user = tracing::field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<Logged>().is_none()
    {
        span.in_scope(|| log_error(status, &"the request was refused"));
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Names the request's user in its span.
pub(crate) fn record_user(name: &str) {
    tracing::Span::current().record("user", tracing::field::display(name));
}

/// Logs a failed answer: a client's mistake (4xx) at WARN, the server's (5xx) at ERROR.
pub(crate) fn log_error(status: StatusCode, error: &dyn std::fmt::Display) {
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), error = %error, "request failed");
    } else {
        tracing::warn!(status = status.as_u16(), error = %error, "request failed");
    }
}

/// Whether a client's request id can be used as ours: 1 to 64 letters, digits, `-`, `_`
/// or `.` (anything else could forge log lines).
fn is_token(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A new request id: 16 hex digits.
fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_tokens_are_taken_from_clients() {
        assert!(is_token("abc-123_x.y"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("line\nbreak"));
        assert!(!is_token(&"x".repeat(65)));
        let id = new_id();
        assert_eq!(id.len(), 16);
        assert!(is_token(&id));
    }
}
