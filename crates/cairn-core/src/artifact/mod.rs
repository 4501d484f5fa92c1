//! Artifacts: the content side of `wandb.Artifact`, pure and synchronous.
//!
//! * [`hash`] — MD5s of local files with bounded memory: whole files (reading overlapped
//!   with hashing), many files in parallel, and the parts of a multipart upload.
//! * [`manifest`] — the `wandb_manifest.json` model: building it from files and
//!   directories, writing it as wandb-core does, reading it, and its content digest.
//!
//! Nothing here talks to a server, spawns anything that outlives a call, or prints; the
//! upload itself (`CreateArtifact` … `CommitArtifact`, protocol notes §3.4) is built on top.

pub mod hash;
pub mod manifest;

pub use hash::{FileDigest, HashError, Md5, PartDigest};
pub use manifest::{Entry, Manifest, ManifestError, NameError};
