//! How resolver failures become GraphQL errors: client errors are answered with their
//! message; internal ones (database, storage) are logged with their cause and answered as
//! "internal server error" (`ApiError::public_message`).
//!
//! Resolvers return [`Result`], whose error is a [`GqlError`]: `?` turns any
//! `Into<ApiError>` (an `ApiError`, a `DbError`, a `BlobError`) into one, and async-graphql
//! turns it into its own error through the one conversion below. `GqlError` deliberately
//! has no `Display`: async-graphql converts every `Display` type into an error carrying its
//! text, which would answer a database error's details to the client, unlogged.

use crate::error::ApiError;

/// A resolver's failure, on its way to the client (see the module doc).
#[derive(Debug)]
pub(crate) struct GqlError(ApiError);

/// What resolvers return. Named `Result` because async-graphql's macros recognise a
/// fallible resolver by that name.
pub(crate) type Result<T, E = GqlError> = std::result::Result<T, E>;

impl<E: Into<ApiError>> From<E> for GqlError {
    fn from(err: E) -> GqlError {
        GqlError(err.into())
    }
}

impl From<GqlError> for async_graphql::Error {
    fn from(GqlError(err): GqlError) -> async_graphql::Error {
        if err.status().is_server_error() {
            tracing::error!(error = %err, "graphql resolver failed");
        }
        async_graphql::Error::new(err.public_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbError;

    #[test]
    fn internal_causes_are_hidden_client_errors_kept() {
        let db = DbError::Query {
            doing: "reading secrets",
            source: sqlx::Error::RowNotFound,
        };
        let answered = async_graphql::Error::from(GqlError::from(db));
        assert_eq!(answered.message, "internal server error");

        let bad = ApiError::BadRequest("alias \"v3\" has the form of a version".to_owned());
        let answered = async_graphql::Error::from(GqlError::from(bad));
        assert_eq!(answered.message, "alias \"v3\" has the form of a version");

        let missing = ApiError::Blob(crate::blob::BlobError::NotFound("k".to_owned()));
        let answered = async_graphql::Error::from(GqlError::from(missing));
        assert_eq!(answered.message, "file not found: k");
    }
}
