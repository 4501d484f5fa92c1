//! cairn-server's router-level tests, one binary: each module drives the in-process app
//! of [`support`] the way an HTTP client does (GraphQL documents the SDK sends, the
//! filestream, signed storage URLs, the UI's API) and checks the rules they rely on.

mod artifacts;
mod auth;
mod filestream;
mod logging;
mod old_clients;
mod routes;
mod support;
