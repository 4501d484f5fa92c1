//! Artifacts: the content side of `wandb.Artifact` (pure and synchronous) and its transfers to
//! and from a W&B-compatible server.
//!
//! Content — no IO beyond reading the files named, nothing that outlives a call:
//!
//! * [`hash`] — MD5s of local files with bounded memory: whole files (reading overlapped
//!   with hashing), many files in parallel, and the parts of a multipart upload.
//! * [`manifest`] — the `wandb_manifest.json` model: building it from files and
//!   directories, writing it as wandb-core does, reading it, and its content digest.
//! * [`record`] — the manifest as the log's `ArtifactRecord` carries it, both ways.
//!
//! Transfers — blocking calls through [`crate::client`] on the caller's thread, each bounded by
//! the caller's `Until`:
//!
//! * [`save`](mod@save) — a version from an `ArtifactRecord` of the log (`CreateArtifact` …
//!   `CommitArtifact`, W&B's save flow); the uploader runs it on its `cairn-artifacts`
//!   worker thread.
//! * [`board`] — [`ArtifactBoard`]: each logged artifact's outcome, published by that worker
//!   and waited on by the SDK's handle.
//! * [`resolve`](mod@resolve) — `name:alias` to a version (`use_artifact`), and recording
//!   that a run used one.
//! * [`download`](mod@download) — a version into a folder through W&B's content-addressed
//!   cache.
//! * [`error`] — [`ArtifactError`], which every transfer returns.
//!
//! Nothing here prints.

pub mod board;
pub mod download;
pub mod error;
pub mod hash;
pub mod manifest;
pub mod record;
pub mod resolve;
pub mod save;

pub use board::{ArtifactBoard, ArtifactOutcome};
pub use download::{DownloadReport, default_cache_dir, download};
pub use error::ArtifactError;
pub use hash::{FileDigest, HashError, Md5, PartDigest};
pub use manifest::{Entry, Manifest, ManifestError, NameError};
pub use record::{manifest_record, record_manifest};
pub use resolve::{RemoteArtifact, record_use, resolve};
pub use save::{Saved, Target, save};

/// File (or part) transfers in flight at once, saving or downloading.
const PARALLEL_TRANSFERS: usize = 8;
