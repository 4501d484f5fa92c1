//! `POST /graphql`: W&B's GraphQL API on a real executor (async-graphql).
//!
//! The schema carries W&B's type, field and argument names — legacy ones included
//! (`model` for project, `bucket` for run) — so any document the SDK or `wandb.Api()`
//! sends parses and validates: fragments, aliases, `@include`, `__typename`. Arguments
//! are nullable wherever a client might pass a nullable variable.
//!
//! Input: one JSON body `{query, operationName, variables}` from an authenticated user.
//! Output: `{"data": …}` or `{"data": null, "errors": [{"message": …}]}` at HTTP 200 (the
//! SDK never retries those). Resolvers are stateless: each reads what it needs from the
//! database through the request's [`Session`].

mod artifact_mutation;
mod artifacts;
mod files;
mod history;
mod listing;
mod mutation;
mod paging;
mod query;
mod scalars;
mod types;

use async_graphql::{EmptySubscription, Schema};

use crate::App;
use crate::db::UserRow;
use crate::error::ApiError;

/// The executable schema.
pub type CairnSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// Builds the schema once per server.
pub fn schema() -> CairnSchema {
    Schema::build(
        query::Query,
        mutation::Mutation::default(),
        EmptySubscription,
    )
    .limit_depth(24)
    .limit_recursive_depth(24)
    .finish()
}

/// Gives every variable the request omits the default its operation declares
/// (`$includeAliases: Boolean = true`), before execution.
///
/// async-graphql applies declared defaults to arguments but not to `@include`/`@skip`,
/// which it evaluates against the sent variables alone: the SDK's artifact queries select
/// `aliases @include(if: $includeAliases)` without sending it, and would get no aliases.
/// A document that does not parse is left for the executor to report.
pub(crate) fn fill_variable_defaults(request: &mut async_graphql::Request) {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return;
    };
    let operation = match (&document.operations, name.as_deref()) {
        (async_graphql::parser::types::DocumentOperations::Single(op), _) => Some(op),
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name)
        }
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), None) => {
            (ops.len() == 1).then(|| ops.values().next()).flatten()
        }
    };
    let Some(operation) = operation else {
        return;
    };
    let defaults: Vec<(async_graphql::Name, async_graphql::Value)> = operation
        .node
        .variable_definitions
        .iter()
        .filter_map(|def| {
            let default = def.node.default_value()?;
            Some((def.node.name.node.clone(), default.clone()))
        })
        .collect();
    for (name, value) in defaults {
        request.variables.entry(name).or_insert(value);
    }
}

/// What a resolver knows about its request.
#[derive(Debug)]
pub(crate) struct Session {
    pub app: App,
    pub viewer: UserRow,
    /// Where this server is reached (`http://host:port`), for the URLs it hands out.
    pub base_url: String,
}

/// The request's session.
pub(crate) fn session<'a>(ctx: &async_graphql::Context<'a>) -> &'a Session {
    ctx.data_unchecked::<Session>()
}

/// Turns a server error into a GraphQL error; internal causes are logged and hidden.
pub(crate) fn gql(err: impl Into<ApiError>) -> async_graphql::Error {
    let err = err.into();
    if err.status().is_server_error() {
        tracing::error!(error = %err, "graphql resolver failed");
    }
    async_graphql::Error::new(err.public_message())
}

/// The GraphQL id of object `id` of `kind` (see `crate::ids`).
pub(crate) fn encode_id(kind: &str, id: i64) -> async_graphql::ID {
    async_graphql::ID(crate::ids::encode(kind, id))
}

pub(crate) use crate::ids::decode as decode_id;

#[cfg(test)]
mod tests;
