//! GraphQL calls: [`Connection::graphql`] posts `{"query", "variables", "operationName"}` to
//! `{base}/graphql` and returns the answer's `data` or its first error;
//! [`Connection::server_features`] asks which features the server has; [`operation_name`]
//! finds the name a document gives its operation.
//!
//! Each call blocks its thread and is retried per [`Policies::graphql`](super::Policies)
//! through the connection's retry loop; an HTTP 200 answer with `errors` is not retried.

use serde_json::Value;

use super::connection::Connection;
use super::documents;
use super::error::{HttpError, first_error, snippet};
use super::until::Until;

impl Connection {
    /// Runs a GraphQL operation: POST `{base}/graphql` with Basic auth and the body
    /// `{"query", "variables", "operationName"}`; returns the answer's `data`. An empty
    /// `operation` means the one `query` names ([`operation_name`]), or none
    /// (`operationName: null`) for an anonymous document.
    ///
    /// Retried per [`Policies::graphql`](super::Policies::graphql). An HTTP 200 answer with
    /// `errors` is not retried: it becomes [`HttpError::GraphQl`] with the first error's
    /// message.
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
            let result = self.post_json_request(&url, timeout).send(&body[..]);
            self.exchange(&url, result)
                .and_then(|answer| graphql_data(operation, &answer))
        })
    }

    /// The names of the features the server announces as enabled
    /// (`serverInfo { features { name isEnabled } }`, W&B's `ServerFeaturesQuery`).
    pub fn server_features(&self, until: &Until) -> Result<Vec<String>, HttpError> {
        let data = self.graphql(
            "ServerFeaturesQuery",
            documents::SERVER_FEATURES_QUERY,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
