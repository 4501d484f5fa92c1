//! What every request to the settings' W&B server on the SDK's behalf shares: the
//! connection a run's or session's settings name ([`connection_config`]), the deadline
//! each request gets ([`until`]), the `project { run { … } }` query shape ([`run_query`]),
//! the URLs it may transfer and how they are shown in errors ([`is_http_url`],
//! [`shown_url`]), and the failure an API request is answered with ([`ApiFailure`]).
//!
//! Used by the public-API proxy (`api` and the modules it dispatches to: `history`,
//! `exports`, `reads`, `writes`), by a run's online start (`runs`) and by `sync`; it uses
//! none of them. No state, no threads: the callers make their requests with cairn-core's
//! [`Connection`] (its retry policy), bounded by [`until`] unless a transfer may take as
//! long as it takes.

use std::time::{Duration, Instant};

use cairn_core::client::credentials::DEFAULT_BASE_URL;
use cairn_core::client::{Connection, ConnectionConfig, Until};
use cairn_proto::{ErrorType, Settings};

/// The longest a request to the server on the SDK's behalf is given (the SDK's
/// `wandb.Api` timeout is 19 s).
const API_DEADLINE: Duration = Duration::from_secs(60);

/// The deadline for a request to the server made now on the SDK's behalf.
pub(crate) fn until() -> Until {
    Until::deadline(Instant::now() + API_DEADLINE)
}

/// The connection settings name: their base URL (W&B's cloud when they name none) and
/// API key.
pub(crate) fn connection_config(settings: &Settings) -> ConnectionConfig {
    ConnectionConfig {
        base_url: settings
            .base_url
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
            .trim_end_matches('/')
            .to_owned(),
        api_key: settings.api_key.clone().unwrap_or_default(),
        user_agent: format!("cairn-core {}", env!("CARGO_PKG_VERSION")),
    }
}

/// Sends a GraphQL query whose answer is `project { run { … } }` and returns the run
/// object; an error naming `path` (`entity/project/run`) when the server has no such run.
pub(crate) fn run_query(
    connection: &Connection,
    name: &str,
    query: &str,
    variables: serde_json::Value,
    until: &Until,
    path: &str,
) -> Result<serde_json::Value, String> {
    let mut data = connection
        .graphql(name, query, variables, until)
        .map_err(|e| e.to_string())?;
    let run = data["project"]["run"].take();
    if run.is_null() {
        return Err(format!("no run {path} on the server"));
    }
    Ok(run)
}

/// Whether `url` is one the core may transfer to or from: absolute, http(s).
pub(crate) fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// `url` as it may be shown: without its query (a signature).
pub(crate) fn shown_url(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// Why an API request failed: the message the user sees, and for the failures the SDK
/// tells apart (an incomplete history export), their type.
#[derive(Debug)]
pub(crate) struct ApiFailure {
    pub(crate) message: String,
    pub(crate) error_type: Option<ErrorType>,
}

impl From<String> for ApiFailure {
    fn from(message: String) -> ApiFailure {
        ApiFailure {
            message,
            error_type: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_drop_the_signature() {
        assert_eq!(
            shown_url("http://h/storage/a?exp=1&sig=2"),
            "http://h/storage/a"
        );
        assert_eq!(shown_url("http://h/x"), "http://h/x");
    }
}
