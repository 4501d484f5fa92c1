//! The server's one error type, and how it becomes an HTTP response.
//!
//! Handlers return `Result<_, ApiError>`. Each variant carries the message a client may
//! see; internal causes (database, storage) are logged with their details and answered
//! with a generic 500 that names no internals. Bodies use the shape W&B's clients parse:
//! `{"errors":[{"message":"..."}]}` (the SDK shows `errors[0].message`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::blob::BlobError;
use crate::db::DbError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or wrong credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed to touch this entity or object (403).
    #[error("{0}")]
    Forbidden(String),
    /// The named entity, project, run or file does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed: bad JSON, bad names, bad offsets (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than this endpoint accepts (413).
    #[error("{0}")]
    TooLarge(String),
    /// A download asked for bytes the file does not have (416).
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// A database failure; logged, answered as a generic 500.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A storage failure; logged, answered as a generic 500.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Blob(BlobError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Db(_) | ApiError::Blob(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the client sees: the error itself, except for internal failures.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Blob(BlobError::NotFound(key)) => format!("file not found: {key}"),
            ApiError::Db(_) | ApiError::Blob(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }
}

/// A body the server would not read: too large (413) or cut off (400), as a JSON error
/// instead of axum's plain-text answer.
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "request body is too large for this endpoint: {}",
                rejection.body_text()
            ))
        } else {
            ApiError::BadRequest(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        crate::trace::log_error(status, &self);
        let body = serde_json::json!({ "errors": [{ "message": self.public_message() }] });
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(crate::trace::Logged);
        response
    }
}
