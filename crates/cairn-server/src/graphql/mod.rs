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
//!
//! Layers, from the request down:
//! - `request` (the session), `error` (failures as GraphQL errors), `args` (arguments →
//!   rows, access checked), `paging` (cursors and pages), `scalars`;
//! - the roots: `query`, `mutation` (runs) merged with `artifact_mutation`, whose rules
//!   live in `crate::artifacts`;
//! - the object types, which refer to each other as W&B's schema does: `types` (users,
//!   entities, projects, server info), `run`, `artifacts`, `files`; and what they read
//!   through: `history`, `listing` (run selection), `version_pages` (W&B's three
//!   connections of artifact versions).

mod args;
mod artifact_mutation;
mod artifacts;
mod error;
mod files;
mod history;
mod listing;
mod mutation;
mod paging;
mod query;
mod request;
mod run;
mod scalars;
mod types;
mod version_pages;

use async_graphql::{EmptySubscription, Schema};

pub(crate) use request::{Session, fill_variable_defaults};

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

#[cfg(test)]
mod tests;
