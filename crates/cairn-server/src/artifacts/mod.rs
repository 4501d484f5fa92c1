//! The artifact rules, apart from any wire format: how a
//! version is created (with same-content deduplication), which bytes must be uploaded,
//! how multipart uploads are resumed and joined, what a commit checks and how it numbers
//! the version, where aliases point, and what deletion may do.
//!
//! Input: plain values (ids, names, digests, alias lists) from the GraphQL resolvers and
//! the storage handler, the viewer, the database ([`crate::db::Db`]) and storage
//! ([`crate::blob::Blobs`]). Output: rows ([`crate::db::ArtifactRow`]) and storage keys for
//! the caller to sign, or an [`crate::ApiError`] naming the artifact. Each operation runs
//! in one write transaction of its own, so a refused one changes nothing; nothing runs in
//! the background, so there is nothing to stop.
//!
//! Blobs are content-addressed per entity: a user can only skip uploading bytes their own
//! entity already holds, and a commit fails for a manifest naming bytes the entity never
//! uploaded.

pub(crate) mod aliases;
pub(crate) mod manifest;
pub(crate) mod uploads;
pub(crate) mod versions;
