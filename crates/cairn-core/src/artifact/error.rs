//! [`ArtifactError`]: why an artifact could not be saved, found or downloaded. Every kind
//! names the artifact; a file error names the local file too.

use std::path::PathBuf;

use crate::client::HttpError;

use super::manifest::ManifestError;

/// Why an artifact could not be saved, found or downloaded.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A request failed.
    #[error("artifact {name}: {source}")]
    Http {
        /// The artifact.
        name: String,
        /// What failed.
        #[source]
        source: HttpError,
    },
    /// The server's answer lacks what the flow needs.
    #[error("artifact {name}: unexpected answer to {operation}: {detail}")]
    Answer {
        /// The artifact.
        name: String,
        /// The request.
        operation: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The artifact does not exist (or the viewer may not see it).
    #[error("artifact {0} not found")]
    NotFound(String),
    /// A local file could not be read or written.
    #[error("artifact {name}: {path}: {source}")]
    File {
        /// The artifact.
        name: String,
        /// The local file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is malformed, or names a file in an unsafe way.
    #[error("artifact {name}: {source}")]
    Manifest {
        /// The artifact.
        name: String,
        /// What is wrong with it.
        #[source]
        source: ManifestError,
    },
    /// A downloaded file's bytes are not the ones the manifest names.
    #[error("artifact {name}: {path} downloaded with MD5 {got}, the manifest says {want}")]
    Corrupt {
        /// The artifact.
        name: String,
        /// The entry.
        path: String,
        /// The MD5 of the bytes received (base64).
        got: String,
        /// The manifest's (base64).
        want: String,
    },
}
