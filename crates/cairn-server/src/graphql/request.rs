//! The request as resolvers see it: the [`Session`] (the app, the viewer, the base URL
//! for the URLs answers carry) that `http.rs` attaches to each execution, and the one
//! change made to a request before it runs ([`fill_variable_defaults`]).
//!
//! Input: an authenticated request. Output: its session, read by every resolver through
//! [`session`]. A session lives as long as its request.

use crate::App;
use crate::db::UserRow;

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
