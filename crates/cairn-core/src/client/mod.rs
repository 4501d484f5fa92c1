//! The blocking client for a W&B-compatible server (W&B's own or `cairn server`): GraphQL
//! calls, JSON posts (the filestream) and file transfers to and from signed URLs, each retried
//! by W&B's rules.
//!
//! Input: a [`ConnectionConfig`] (server, API key, user agent; [`credentials`] finds them as
//! W&B's tools do) and, per call, an [`Until`] that bounds the retries by a deadline and an
//! abort flag. Output: the server's parsed answer or an [`HttpError`] that names the URL
//! (without its query, which may hold a signature), the last status or transport failure and
//! how many attempts were made.
//!
//! * [`connection`] — [`Connection`]: the keep-alive pool, the credentials, the rate-limit
//!   state and the retry loop every request runs through;
//! * [`graphql`] — [`Connection::graphql`] and [`Connection::server_features`];
//! * [`documents`] — every GraphQL document the client side sends, one constant per
//!   operation (the core's, the service's and the Rust SDK's callers all take them from
//!   here);
//! * [`transfer`] — [`Connection::post_json`], [`Connection::put_file`],
//!   [`Connection::put_file_part`], [`Connection::get_to_file`], and running transfers in
//!   parallel;
//! * [`retry`] — the pure rules: which answers are retried, how long to wait;
//! * [`error`] — [`HttpError`] and how an error answer becomes its message;
//! * [`until`] — [`Until`];
//! * [`operations`] — what the callers are doing right now, for a progress display (a retried
//!   request says why on its operation);
//! * [`credentials`] — `WANDB_BASE_URL`, `WANDB_API_KEY`, `~/.netrc`.
//!
//! Threads: every call blocks the calling thread; a [`Connection`] is cheap to clone and may
//! be shared by many threads, which then share one keep-alive pool and one rate-limit state
//! (a server's `RateLimit-Remaining: 0` holds back every thread's next request).
//!
//! Stopping: [`Until`] is checked before each attempt and during each wait (in slices of
//! [`WAIT_SLICE`]), and a file upload checks the abort flag while it streams; a request already
//! on the wire otherwise runs to its attempt timeout, which is cut short to end by the
//! deadline. Nothing runs in the background, so dropping a `Connection` needs no shutdown.
//!
//! This module never prints or logs: everything worth knowing goes into the returned error.

pub mod connection;
pub mod credentials;
pub mod documents;
pub mod error;
pub mod graphql;
pub mod operations;
pub mod retry;
pub mod transfer;
pub mod until;

#[cfg(test)]
mod tests;

pub use connection::{Connection, ConnectionConfig, Policies};
pub use error::HttpError;
pub use graphql::operation_name;
pub use operations::Operations;
pub(crate) use transfer::{in_parallel, upload_headers};
pub use until::{Until, WAIT_SLICE};
