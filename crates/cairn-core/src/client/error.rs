//! [`HttpError`], why a request to the server failed, and how an error answer becomes its
//! message: the server's own (`errors[0].message`, `error`) when it gives one, else the start of
//! the body, with the URL shown without its query (which may hold a signature).
//!
//! Pure functions over answers already read; no IO.

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;

use serde_json::Value;
use ureq::http::StatusCode;

/// How much of a body without a recognised message goes into an error.
const MESSAGE_CHARS: usize = 200;

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
    pub(super) fn after_attempts(mut self, attempts: u32) -> Self {
        if let Self::Status { message, .. } | Self::Transport { message, .. } = &mut self {
            message.push_str(&format!(" ({})", attempts_text(attempts)));
        }
        self
    }
}

pub(super) fn attempts_text(attempts: u32) -> String {
    match attempts {
        1 => "after 1 attempt".to_owned(),
        n => format!("after {n} attempts"),
    }
}

/// The URL as errors show it: without the query, which may carry a signature.
pub(super) fn shown_url(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// `errors[0].message` of a GraphQL-style answer (or the whole first error when it has no
/// message); `None` when `errors` is absent or empty.
pub(super) fn first_error(answer: &Value) -> Option<String> {
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
pub(super) fn server_message(status: u16, body: &[u8]) -> String {
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

/// The start of `text`, trimmed: at most [`MESSAGE_CHARS`] characters.
pub(super) fn snippet(text: &str) -> String {
    text.trim().chars().take(MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
