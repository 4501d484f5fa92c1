//! How resolver failures become GraphQL errors: client errors are answered with their
//! message; internal ones (database, storage) are logged with their cause and answered as
//! "internal server error" (`ApiError::public_message`).

use crate::error::ApiError;

/// Turns a server error into a GraphQL error; internal causes are logged and hidden.
pub(crate) fn gql(err: impl Into<ApiError>) -> async_graphql::Error {
    let err = err.into();
    if err.status().is_server_error() {
        tracing::error!(error = %err, "graphql resolver failed");
    }
    async_graphql::Error::new(err.public_message())
}
