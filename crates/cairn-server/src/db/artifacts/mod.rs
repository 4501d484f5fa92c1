//! Artifacts in the database: collections, versions and their state machine, aliases,
//! manifest entries, the per-entity content-addressed blob index with the multipart
//! uploads in progress, and lineage. One module per table group; the rules around these
//! rows (deduplication, what a commit checks, who may do what) are `crate::artifacts`'.

pub mod aliases;
pub mod blobs;
pub mod collections;
pub mod entries;
pub mod lineage;
pub mod versions;

pub use blobs::{BlobRow, UploadRow};
pub use collections::CollectionRow;
pub use entries::EntryRow;
pub use versions::{ArtifactRow, ArtifactUpdate, NewArtifact};
