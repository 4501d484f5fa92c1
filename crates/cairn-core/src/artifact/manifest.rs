//! W&B's artifact manifest (`wandb_manifest.json`): building it from local files, writing
//! it byte for byte as wandb-core does, reading it back, and its digests.
//!
//! Input: local files and directories ([`Manifest::add_file`], [`Manifest::add_dir`]) or
//! a manifest's JSON ([`Manifest::from_json`]). Output: the JSON ([`Manifest::to_json`]),
//! the artifact's content digest ([`Manifest::content_digest`], what `CreateArtifact`
//! sends and the server dedups on) and, for the manifest file itself, the base64 MD5 of
//! the JSON bytes (`Md5::of(json.as_bytes()).to_base64()`).
//!
//! The format (as wandb-core's `pkg/artifacts/manifest.go` writes it):
//!
//! ```json
//! {"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{"storageLayout":"V2"},
//!  "contents":{"a.txt":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":8,"local_path":"/tmp/a.txt",
//!  "birthArtifactID":"QXJ0aWZhY3Q6djE6Mg==","skip_cache":false}}}
//! ```
//!
//! [`Manifest::to_json`] writes what Go's `encoding/json` writes for wandb-core's structs:
//! no whitespace, `contents` sorted by path, entry keys in the order `digest`, `ref`,
//! `size`, `local_path`, `birthArtifactID`, `skip_cache`, `extra` (`ref`, `local_path`,
//! `birthArtifactID` and `extra` only when set), strings escaped as Go does (`<`, `>`, `&`,
//! U+2028 and U+2029 as `\u…`), and `extra` objects with sorted keys. Floating-point
//! numbers inside `extra` are the one place the bytes may differ from Go's (they are
//! written in serde_json's shortest form). Reading is tolerant: unknown keys are ignored,
//! and the fields Python leaves out (`size`, `skip_cache`, `local_path`) take their
//! defaults.
//!
//! Entry names are checked by [`validate_name`] when entries are added. Parsing does not
//! check them, because W&B's clients do not (Python keeps absolute paths and, off Windows,
//! backslashes), so refusing them would make real artifacts unreadable; whoever writes
//! entries to disk calls [`Manifest::check_names`] first.

use std::collections::{BTreeMap, btree_map};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use md5::Digest as _;
use serde_json::{Map, Value};

use super::hash::{self, FileDigest, HashError, Md5};

/// The manifest format version this module reads and writes.
pub const MANIFEST_VERSION: u64 = 1;

/// The storage policy of every manifest W&B writes today.
pub const STORAGE_POLICY: &str = "wandb-storage-policy-v1";

/// The storage layout of new manifests (content-addressed blobs).
pub const STORAGE_LAYOUT_V2: &str = "V2";

/// The manifest's file name in the artifact's storage.
pub const MANIFEST_FILE_NAME: &str = "wandb_manifest.json";

/// The first line of the text whose MD5 is the artifact's content digest.
const CONTENT_DIGEST_HEADER: &str = "wandb-artifact-manifest-v1\n";

/// Longest entry name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

/// An artifact manifest: its entries by name, and its storage policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The entries by their artifact-relative, `/`-separated name.
    pub entries: BTreeMap<String, Entry>,
    /// `storagePolicy`; [`STORAGE_POLICY`] for every manifest W&B writes.
    pub storage_policy: String,
    /// `storagePolicyConfig.storageLayout`: `"V2"` for new manifests; `None` (omitted) in
    /// old ones, which W&B reads as `"V1"`.
    pub storage_layout: Option<String>,
    /// `storagePolicyConfig.storageRegion`, when the artifact is stored in a named region.
    pub storage_region: Option<String>,
}

/// One file of an artifact.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    /// The base64 MD5 of the content for files; for references, whatever identifies the
    /// content (an ETag, a version, the URI itself).
    pub digest: String,
    /// Size in bytes (0 when unknown, as wandb-core reads a missing size).
    pub size: u64,
    /// `ref`: where a reference entry's content lives (`s3://…`, `wandb-artifact://…`).
    pub reference: Option<String>,
    /// `birthArtifactID`: the artifact version that first uploaded this content.
    pub birth_artifact_id: Option<String>,
    /// `local_path`: where the content is on this machine, to upload it from.
    pub local_path: Option<PathBuf>,
    /// `skip_cache`: do not copy the file into the local artifact cache.
    pub skip_cache: bool,
    /// `extra`: anything else a storage handler recorded (e.g. an object version).
    pub extra: Map<String, Value>,
}

impl Entry {
    /// The entry of a local file with the given digest.
    pub fn local_file(digest: FileDigest, local_path: PathBuf) -> Entry {
        Entry {
            digest: digest.md5.to_base64(),
            size: digest.size,
            local_path: Some(local_path),
            ..Entry::default()
        }
    }
}

/// Why an entry name is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("it is empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    #[error("it is {0} bytes long, more than 1024")]
    TooLong(usize),
    /// The name starts with `/`.
    #[error("it is absolute")]
    Absolute,
    /// The name holds a backslash (names are `/`-separated).
    #[error("it contains a backslash")]
    Backslash,
    /// The name holds a NUL byte.
    #[error("it contains a NUL byte")]
    Nul,
    /// The name has an empty segment (`a//b`, or a trailing `/`).
    #[error("it has an empty segment")]
    EmptySegment,
    /// The name has a `.` or `..` segment.
    #[error("it has a `.` or `..` segment")]
    DotSegment,
}

/// Why a manifest could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// An entry name is not acceptable.
    #[error("invalid artifact entry name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// A local file name is not UTF-8, so it cannot be an entry name.
    #[error("file name {} is not valid UTF-8", path.display())]
    NonUtf8Name {
        /// The file.
        path: PathBuf,
    },
    /// An entry of that name is already there with other content.
    #[error("cannot add {name:?} twice with different content ({existing} before, {new} now)")]
    Conflict {
        /// The name.
        name: String,
        /// The digest already in the manifest.
        existing: String,
        /// The digest of the content added.
        new: String,
    },
    /// `add_dir` was given something other than a directory.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Listing a directory or reading a file's metadata failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file could not be hashed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The manifest is not JSON.
    #[error("the artifact manifest is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// The manifest is JSON but not a manifest (the text says where).
    #[error("invalid artifact manifest: {0}")]
    Format(String),
}

impl ManifestError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> ManifestError + '_ {
        move |source| ManifestError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Checks an entry name: relative, `/`-separated, no empty, `.` or `..` segment, no NUL
/// or backslash, at most [`MAX_NAME_LEN`] bytes.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute);
    }
    if name.contains('\\') {
        return Err(NameError::Backslash);
    }
    if name.contains('\0') {
        return Err(NameError::Nul);
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err(NameError::EmptySegment),
            "." | ".." => return Err(NameError::DotSegment),
            _ => {}
        }
    }
    Ok(())
}

fn checked_name(name: &str) -> Result<(), ManifestError> {
    validate_name(name).map_err(|reason| ManifestError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

impl Default for Manifest {
    fn default() -> Manifest {
        Manifest::new()
    }
}

impl Manifest {
    /// An empty manifest with W&B's current storage policy and layout.
    pub fn new() -> Manifest {
        Manifest {
            entries: BTreeMap::new(),
            storage_policy: STORAGE_POLICY.to_owned(),
            storage_layout: Some(STORAGE_LAYOUT_V2.to_owned()),
            storage_region: None,
        }
    }

    /// Adds or replaces the entry `name`, returning the entry it replaced. Fails, leaving
    /// the manifest as it was, if the name is not acceptable ([`validate_name`]).
    pub fn insert(&mut self, name: &str, entry: Entry) -> Result<Option<Entry>, ManifestError> {
        checked_name(name)?;
        Ok(self.entries.insert(name.to_owned(), entry))
    }

    /// Hashes the file at `local_path` and adds it as `name`, with its absolute path as
    /// `local_path`. As in W&B, adding a name again is fine with the same content and an
    /// error ([`ManifestError::Conflict`]) with other content.
    pub fn add_file(&mut self, local_path: &Path, name: &str) -> Result<&Entry, ManifestError> {
        checked_name(name)?;
        let absolute = std::path::absolute(local_path).map_err(ManifestError::io(local_path))?;
        let digest = hash::md5_file(&absolute)?;
        let entry = Entry::local_file(digest, absolute);
        self.check_conflict(name, &entry)?;
        Ok(match self.entries.entry(name.to_owned()) {
            btree_map::Entry::Occupied(mut slot) => {
                slot.insert(entry);
                slot.into_mut()
            }
            btree_map::Entry::Vacant(slot) => slot.insert(entry),
        })
    }

    /// [`Manifest::add_dir_with`] on [`hash::default_threads`] threads.
    pub fn add_dir(&mut self, root: &Path, prefix: &str) -> Result<usize, ManifestError> {
        self.add_dir_with(root, prefix, hash::default_threads())
    }

    /// Adds every file under the directory `root`, named by its path relative to `root`
    /// (`/`-separated) under `prefix` (`""` for the artifact's root; a trailing `/` is
    /// ignored), hashed on up to `threads` threads. Returns the number of files added.
    ///
    /// The walk is sorted and deterministic. Symbolic links are followed, to files and to
    /// directories, except a link back to a directory the walk is inside (a loop), which
    /// is skipped; a dangling link is an error, as in W&B. Special files (FIFOs, sockets,
    /// devices) are skipped: reading them could block or never end. Either every file is
    /// added or, on any error (the first in walk order), none is.
    pub fn add_dir_with(
        &mut self,
        root: &Path,
        prefix: &str,
        threads: usize,
    ) -> Result<usize, ManifestError> {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            checked_name(prefix)?;
        }
        let root = std::path::absolute(root).map_err(ManifestError::io(root))?;
        if !fs::metadata(&root)
            .map_err(ManifestError::io(&root))?
            .is_dir()
        {
            return Err(ManifestError::NotADirectory { path: root });
        }
        let mut found = Vec::new();
        let mut ancestors = Vec::new();
        walk(&root, prefix, &mut ancestors, &mut found)?;
        for file in &found {
            checked_name(&file.name)?;
        }

        // Largest first, so that a big file does not start last and keep one thread busy
        // while the others idle.
        let mut order: Vec<usize> = (0..found.len()).collect();
        order.sort_by(|&a, &b| found[b].size.cmp(&found[a].size).then(a.cmp(&b)));
        let paths: Vec<&Path> = order.iter().map(|&i| found[i].path.as_path()).collect();
        let mut digests: Vec<Option<Result<FileDigest, HashError>>> =
            std::iter::repeat_with(|| None).take(found.len()).collect();
        for (&i, result) in order.iter().zip(hash::hash_files(&paths, threads)) {
            digests[i] = Some(result);
        }

        let mut entries = Vec::with_capacity(found.len());
        for (file, digest) in found.into_iter().zip(digests) {
            // Every index is in `order`, so every slot is filled.
            let Some(digest) = digest else { continue };
            let entry = Entry::local_file(digest?, file.path);
            self.check_conflict(&file.name, &entry)?;
            entries.push((file.name, entry));
        }
        let added = entries.len();
        self.entries.extend(entries);
        Ok(added)
    }

    fn check_conflict(&self, name: &str, entry: &Entry) -> Result<(), ManifestError> {
        match self.entries.get(name) {
            Some(existing) if existing.digest != entry.digest => Err(ManifestError::Conflict {
                name: name.to_owned(),
                existing: existing.digest.clone(),
                new: entry.digest.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Checks every entry name with [`validate_name`]; the error names the first bad one.
    pub fn check_names(&self) -> Result<(), ManifestError> {
        self.entries.keys().try_for_each(|name| checked_name(name))
    }

    /// The sum of the entries' sizes.
    pub fn total_size(&self) -> u64 {
        self.entries.values().map(|entry| entry.size).sum()
    }

    /// The artifact's content digest: the hex MD5 of `wandb-artifact-manifest-v1\n`
    /// followed by `{name}:{digest}\n` for every entry in name order. Two artifacts with
    /// the same names and contents have the same digest, whatever their other fields.
    pub fn content_digest(&self) -> String {
        let mut hasher = md5::Md5::new();
        hasher.update(CONTENT_DIGEST_HEADER);
        for (name, entry) in &self.entries {
            for piece in [name.as_str(), ":", entry.digest.as_str(), "\n"] {
                hasher.update(piece);
            }
        }
        Md5(hasher.finalize().into()).to_hex()
    }

    /// The manifest as wandb-core writes it (see the module docs). A `local_path` that is
    /// not UTF-8 is written with U+FFFD in place of its invalid bytes, as Go would.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(128 + self.entries.len() * 160);
        let _ = write!(out, r#"{{"version":{MANIFEST_VERSION},"storagePolicy":"#);
        write_str(&mut out, &self.storage_policy);
        out.push_str(r#","storagePolicyConfig":{"#);
        let mut sep = "";
        if let Some(layout) = &self.storage_layout {
            out.push_str(r#""storageLayout":"#);
            write_str(&mut out, layout);
            sep = ",";
        }
        if let Some(region) = &self.storage_region {
            out.push_str(sep);
            out.push_str(r#""storageRegion":"#);
            write_str(&mut out, region);
        }
        out.push_str(r#"},"contents":{"#);
        for (i, (name, entry)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(&mut out, name);
            out.push_str(r#":{"digest":"#);
            write_str(&mut out, &entry.digest);
            if let Some(reference) = &entry.reference {
                out.push_str(r#","ref":"#);
                write_str(&mut out, reference);
            }
            let _ = write!(out, r#","size":{}"#, entry.size);
            if let Some(local_path) = &entry.local_path {
                out.push_str(r#","local_path":"#);
                write_str(&mut out, &local_path.to_string_lossy());
            }
            if let Some(id) = &entry.birth_artifact_id {
                out.push_str(r#","birthArtifactID":"#);
                write_str(&mut out, id);
            }
            let _ = write!(out, r#","skip_cache":{}"#, entry.skip_cache);
            if !entry.extra.is_empty() {
                out.push_str(r#","extra":"#);
                write_object(&mut out, &entry.extra);
            }
            out.push('}');
        }
        out.push_str("}}");
        out
    }

    /// Reads a manifest written by W&B (wandb-core or Python) or by [`Manifest::to_json`].
    /// Unknown keys are ignored; `version` must be 1 and `contents` an object.
    pub fn from_json(json: &[u8]) -> Result<Manifest, ManifestError> {
        let value: Value = serde_json::from_slice(json).map_err(ManifestError::Json)?;
        let Value::Object(top) = value else {
            return Err(format_error("it is not a JSON object"));
        };
        match top.get("version") {
            Some(version) if version.as_u64() == Some(MANIFEST_VERSION) => {}
            Some(version) => {
                return Err(format_error(format!(
                    "version {version} is not supported (only 1 is)"
                )));
            }
            None => return Err(format_error("it has no version")),
        }
        let storage_policy = optional_str(&top, "storagePolicy", "the manifest")?
            .unwrap_or(STORAGE_POLICY)
            .to_owned();
        let (storage_layout, storage_region) = match top.get("storagePolicyConfig") {
            None | Some(Value::Null) => (None, None),
            Some(Value::Object(config)) => (
                optional_str(config, "storageLayout", "storagePolicyConfig")?.map(str::to_owned),
                optional_str(config, "storageRegion", "storagePolicyConfig")?.map(str::to_owned),
            ),
            Some(_) => return Err(format_error("storagePolicyConfig is not an object")),
        };
        let Some(Value::Object(contents)) = top.get("contents") else {
            return Err(format_error("contents is missing or not an object"));
        };
        let mut entries = BTreeMap::new();
        for (name, value) in contents {
            entries.insert(name.clone(), parse_entry(name, value)?);
        }
        Ok(Manifest {
            entries,
            storage_policy,
            storage_layout,
            storage_region,
        })
    }
}

/// A file found by [`walk`].
struct Found {
    /// Its entry name (prefix included).
    name: String,
    path: PathBuf,
    size: u64,
}

/// Adds the files under `dir` to `found` in name order, recursively. `ancestors` holds the
/// canonical paths of the directories being walked, to spot symlink loops.
fn walk(
    dir: &Path,
    prefix: &str,
    ancestors: &mut Vec<PathBuf>,
    found: &mut Vec<Found>,
) -> Result<(), ManifestError> {
    let canonical = fs::canonicalize(dir).map_err(ManifestError::io(dir))?;
    if ancestors.contains(&canonical) {
        return Ok(());
    }
    ancestors.push(canonical);
    let mut children = fs::read_dir(dir)
        .map_err(ManifestError::io(dir))?
        .map(|child| child.map(|child| child.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ManifestError::io(dir))?;
    children.sort();
    for file_name in children {
        let path = dir.join(&file_name);
        let Some(file_name) = file_name.to_str() else {
            return Err(ManifestError::NonUtf8Name { path });
        };
        let name = if prefix.is_empty() {
            file_name.to_owned()
        } else {
            format!("{prefix}/{file_name}")
        };
        // Follows symbolic links: a dangling one fails here.
        let metadata = fs::metadata(&path).map_err(ManifestError::io(&path))?;
        if metadata.is_dir() {
            walk(&path, &name, ancestors, found)?;
        } else if metadata.is_file() {
            found.push(Found {
                name,
                path,
                size: metadata.len(),
            });
        }
    }
    ancestors.pop();
    Ok(())
}

fn format_error(detail: impl Into<String>) -> ManifestError {
    ManifestError::Format(detail.into())
}

/// `object[key]` as a string; missing and `null` are `None`, other types an error.
fn optional_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    context: &str,
) -> Result<Option<&'a str>, ManifestError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format_error(format!("{context}: {key} is not a string"))),
    }
}

fn parse_entry(name: &str, value: &Value) -> Result<Entry, ManifestError> {
    let context = format!("entry {name:?}");
    let Value::Object(fields) = value else {
        return Err(format_error(format!("{context} is not an object")));
    };
    let Some(digest) = optional_str(fields, "digest", &context)? else {
        return Err(format_error(format!("{context} has no digest")));
    };
    let size = match fields.get("size") {
        None | Some(Value::Null) => 0,
        Some(size) => size.as_u64().ok_or_else(|| {
            format_error(format!("{context}: size is not a non-negative integer"))
        })?,
    };
    let skip_cache = match fields.get("skip_cache") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(skip)) => *skip,
        Some(_) => {
            return Err(format_error(format!(
                "{context}: skip_cache is not a boolean"
            )));
        }
    };
    let extra = match fields.get("extra") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(extra)) => extra.clone(),
        Some(_) => return Err(format_error(format!("{context}: extra is not an object"))),
    };
    let owned = |text: Option<&str>| text.map(str::to_owned);
    Ok(Entry {
        digest: digest.to_owned(),
        size,
        reference: owned(optional_str(fields, "ref", &context)?),
        birth_artifact_id: owned(optional_str(fields, "birthArtifactID", &context)?),
        local_path: optional_str(fields, "local_path", &context)?.map(PathBuf::from),
        skip_cache,
        extra,
    })
}

/// Writes `text` as a JSON string the way Go's `encoding/json` does.
fn write_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // Go escapes these so that JSON can be embedded in HTML and JavaScript.
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a JSON object with its keys sorted (as Go writes a `map[string]any`).
fn write_object(out: &mut String, object: &Map<String, Value>) {
    let mut fields: Vec<(&String, &Value)> = object.iter().collect();
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(object) => write_object(out, object),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// The manifest wandb-core 0.31 uploaded in the `s14_multipart` capture, byte for byte,
    /// with the base64 MD5 it sent as the manifest digest and the artifact digest it sent
    /// to `CreateArtifact`.
    const S14_MANIFEST: &str = r#"{"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{"storageLayout":"V2"},"contents":{"huge.bin":{"digest":"g+BBy5LMACyZGTUNz3JBUA==","size":2152726528,"local_path":"huge.bin","birthArtifactID":"QXJ0aWZhY3Q6djE6Mg==","skip_cache":true}}}"#;
    const S14_MANIFEST_MD5: &str = "uHB33YgqzOw1LpXNHx6A9w==";
    const S14_CONTENT_DIGEST: &str = "76a1b4e4b590b237c8c037023e02c76c";

    /// The `s4_artifact_upload` capture's manifest (its staging paths as the capture shows
    /// them) and the digest sent to `CreateArtifact`.
    const S4_MANIFEST: &str = r#"{"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{"storageLayout":"V2"},"contents":{"a.txt":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","size":8,"local_path":"/home/researcher/s4_artifact_upload/data/artifacts/staging/tmpz24k1wqm","birthArtifactID":"QXJ0aWZhY3Q6djE6Mg==","skip_cache":false},"big.bin":{"digest":"EQlgp/l3RSh9DHQnDIt2kQ==","size":10485760,"local_path":"/home/researcher/s4_artifact_upload/data/artifacts/staging/tmp4wj_0hmd","birthArtifactID":"QXJ0aWZhY3Q6djE6Mg==","skip_cache":false},"sub/b.csv":{"digest":"F4uoVwdHDEHPaA+zf/mffw==","size":12,"local_path":"/home/researcher/s4_artifact_upload/data/artifacts/staging/tmpiz2tf_ow","birthArtifactID":"QXJ0aWZhY3Q6djE6Mg==","skip_cache":false}}}"#;
    const S4_CONTENT_DIGEST: &str = "3fccf83a5567cde39422476bfd74815f";

    fn entry(digest: &str) -> Entry {
        Entry {
            digest: digest.to_owned(),
            ..Entry::default()
        }
    }

    fn write_file(path: &Path, bytes: &[u8]) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::File::create(path)
            .and_then(|mut file| file.write_all(bytes))
            .expect("write");
    }

    #[test]
    fn content_digest_matches_the_protocol_example() {
        let mut manifest = Manifest::new();
        // Inserted out of order: the digest sorts by name.
        manifest
            .insert("b.txt", entry("hprAQUrptf256Thx/DV7/g=="))
            .expect("insert");
        manifest
            .insert("a.txt", entry("t/DFCvY1IvFkGHDVa9VgAg=="))
            .expect("insert");
        assert_eq!(
            manifest.content_digest(),
            "43502a9e1a5f21586d4b3099d3d214e1"
        );
        assert_eq!(
            Manifest::new().content_digest(),
            Md5::of(CONTENT_DIGEST_HEADER.as_bytes()).to_hex()
        );
    }

    #[test]
    fn captured_manifests_round_trip_byte_for_byte() {
        for (json, content_digest) in [
            (S14_MANIFEST, S14_CONTENT_DIGEST),
            (S4_MANIFEST, S4_CONTENT_DIGEST),
        ] {
            let manifest = Manifest::from_json(json.as_bytes()).expect("parse");
            assert_eq!(manifest.to_json(), json);
            assert_eq!(manifest.content_digest(), content_digest);
        }
        assert_eq!(
            Md5::of(S14_MANIFEST.as_bytes()).to_base64(),
            S14_MANIFEST_MD5
        );

        let s14 = Manifest::from_json(S14_MANIFEST.as_bytes()).expect("parse");
        let huge = &s14.entries["huge.bin"];
        assert_eq!(huge.size, 2_152_726_528);
        assert_eq!(huge.local_path.as_deref(), Some(Path::new("huge.bin")));
        assert_eq!(
            huge.birth_artifact_id.as_deref(),
            Some("QXJ0aWZhY3Q6djE6Mg==")
        );
        assert!(huge.skip_cache);
        assert_eq!(s14.storage_layout.as_deref(), Some("V2"));
        assert_eq!(s14.total_size(), 2_152_726_528);
    }

    #[test]
    fn every_field_round_trips() {
        let mut manifest = Manifest::new();
        manifest.storage_region = Some("coreweave-us".to_owned());
        let mut extra = Map::new();
        extra.insert("versionID".to_owned(), Value::from("3"));
        extra.insert(
            "b".to_owned(),
            serde_json::json!({"z": [1, 2.5, null, true], "a": "<&>"}),
        );
        manifest
            .insert(
                "refs/model.bin",
                Entry {
                    digest: "\"abc-1\"".to_owned(),
                    size: 12,
                    reference: Some("s3://bucket/model.bin".to_owned()),
                    birth_artifact_id: None,
                    local_path: None,
                    skip_cache: false,
                    extra,
                },
            )
            .expect("insert");
        manifest
            .insert(
                "ü/<tag> & \"quote\"\u{2028}\t.txt",
                Entry {
                    digest: "t/DFCvY1IvFkGHDVa9VgAg==".to_owned(),
                    size: 8,
                    birth_artifact_id: Some("QXJ0aWZhY3Q6djE6Mg==".to_owned()),
                    local_path: Some(PathBuf::from("/tmp/a b.txt")),
                    skip_cache: true,
                    ..Entry::default()
                },
            )
            .expect("insert");
        let json = manifest.to_json();
        assert_eq!(
            json,
            concat!(
                r#"{"version":1,"storagePolicy":"wandb-storage-policy-v1","#,
                r#""storagePolicyConfig":{"storageLayout":"V2","storageRegion":"coreweave-us"},"#,
                r#""contents":{"refs/model.bin":{"digest":"\"abc-1\"","ref":"s3://bucket/model.bin","#,
                r#""size":12,"skip_cache":false,"extra":{"b":{"a":"\u003c\u0026\u003e","#,
                r#""z":[1,2.5,null,true]},"versionID":"3"}},"#,
                r#""ü/\u003ctag\u003e \u0026 \"quote\"\u2028\t.txt":{"digest":"t/DFCvY1IvFkGHDVa9VgAg==","#,
                r#""size":8,"local_path":"/tmp/a b.txt","birthArtifactID":"QXJ0aWZhY3Q6djE6Mg==","#,
                r#""skip_cache":true}}}"#
            )
        );
        assert_eq!(
            Manifest::from_json(json.as_bytes()).expect("parse"),
            manifest
        );
    }

    #[test]
    fn reading_is_tolerant() {
        // What Python writes (no local_path, skip_cache or, for this reference, size),
        // plus keys nobody knows.
        let json = r#"{"version": 1, "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2", "future": 1},
            "contents": {"a.txt": {"digest": "t/DFCvY1IvFkGHDVa9VgAg==", "size": 8,
                                   "birthArtifactID": null, "new_field": [1]},
                         "r": {"digest": "https://x/y", "ref": "https://x/y", "extra": {}}},
            "unknown": {"x": 1}}"#;
        let manifest = Manifest::from_json(json.as_bytes()).expect("parse");
        assert_eq!(
            manifest.entries["a.txt"],
            Entry {
                size: 8,
                ..entry("t/DFCvY1IvFkGHDVa9VgAg==")
            }
        );
        let reference = &manifest.entries["r"];
        assert_eq!(
            (reference.size, reference.reference.as_deref()),
            (0, Some("https://x/y"))
        );
        // An old manifest without a layout keeps none.
        let old = r#"{"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{},"contents":{}}"#;
        let old = Manifest::from_json(old.as_bytes()).expect("parse");
        assert_eq!(old.storage_layout, None);
        assert_eq!(
            old.to_json(),
            r#"{"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{},"contents":{}}"#
        );
    }

    #[test]
    fn reading_rejects_what_is_not_a_manifest() {
        let check = |json: &str, expect: &str| {
            let err = Manifest::from_json(json.as_bytes()).expect_err(json);
            assert_eq!(err.to_string(), expect, "{json}");
        };
        check("{", "the artifact manifest is not valid JSON");
        check("[]", "invalid artifact manifest: it is not a JSON object");
        check(
            r#"{"contents":{}}"#,
            "invalid artifact manifest: it has no version",
        );
        check(
            r#"{"version":2,"contents":{}}"#,
            "invalid artifact manifest: version 2 is not supported (only 1 is)",
        );
        check(
            r#"{"version":1}"#,
            "invalid artifact manifest: contents is missing or not an object",
        );
        check(
            r#"{"version":1,"contents":{"a":{"size":1}}}"#,
            r#"invalid artifact manifest: entry "a" has no digest"#,
        );
        check(
            r#"{"version":1,"contents":{"a":{"digest":"x","size":-1}}}"#,
            r#"invalid artifact manifest: entry "a": size is not a non-negative integer"#,
        );
        check(
            r#"{"version":1,"contents":{"a":{"digest":"x","ref":5}}}"#,
            r#"invalid artifact manifest: entry "a": ref is not a string"#,
        );
        check(
            r#"{"version":1,"contents":{"a":{"digest":"x","skip_cache":"no"}}}"#,
            r#"invalid artifact manifest: entry "a": skip_cache is not a boolean"#,
        );
        check(
            r#"{"version":1,"storagePolicyConfig":[],"contents":{}}"#,
            "invalid artifact manifest: storagePolicyConfig is not an object",
        );
    }

    #[test]
    fn names_are_checked() {
        for name in [
            "a",
            "a/b.txt",
            "a b/ü.txt",
            ".hidden",
            "a..b",
            "...",
            "x".repeat(1024).as_str(),
        ] {
            assert_eq!(validate_name(name), Ok(()), "{name:?}");
        }
        let long = "x".repeat(1025);
        let cases = [
            ("", NameError::Empty),
            (long.as_str(), NameError::TooLong(1025)),
            ("/etc/passwd", NameError::Absolute),
            ("a\\b", NameError::Backslash),
            ("a\0b", NameError::Nul),
            ("a//b", NameError::EmptySegment),
            ("a/", NameError::EmptySegment),
            ("./a", NameError::DotSegment),
            ("a/./b", NameError::DotSegment),
            ("a/..", NameError::DotSegment),
            ("../../x", NameError::DotSegment),
        ];
        for (name, reason) in cases {
            assert_eq!(validate_name(name), Err(reason), "{name:?}");
        }
        let mut manifest = Manifest::new();
        let err = manifest
            .insert("../x", entry("d"))
            .expect_err("dot segment");
        assert_eq!(
            err.to_string(),
            r#"invalid artifact entry name "../x": it has a `.` or `..` segment"#
        );
        assert!(manifest.entries.is_empty());
        // Parsing keeps names W&B's clients write; check_names finds them.
        let json = r#"{"version":1,"contents":{"ok":{"digest":"d"},"/abs":{"digest":"d"}}}"#;
        let parsed = Manifest::from_json(json.as_bytes()).expect("parse");
        let err = parsed.check_names().expect_err("absolute");
        assert!(err.to_string().contains(r#""/abs""#), "{err}");
    }

    #[test]
    fn add_file_hashes_and_refuses_conflicts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        write_file(&a, b"content1");
        write_file(&b, b"other");
        let mut manifest = Manifest::new();
        let added = manifest.add_file(&a, "data/a.txt").expect("add").clone();
        assert_eq!(added.digest, Md5::of(b"content1").to_base64());
        assert_eq!(added.size, 8);
        assert_eq!(added.local_path.as_deref(), Some(a.as_path()));
        manifest
            .add_file(&a, "data/a.txt")
            .expect("same content again");
        let err = manifest.add_file(&b, "data/a.txt").expect_err("conflict");
        assert!(matches!(err, ManifestError::Conflict { .. }), "{err}");
        assert_eq!(manifest.entries["data/a.txt"], added);
        let err = manifest
            .add_file(&dir.path().join("nope"), "nope")
            .expect_err("missing");
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(manifest.add_file(&a, "a/../b").is_err());
    }

    /// A tree with nested directories, an empty file, a file big enough for the pipelined
    /// reader, and (on Unix) symbolic links to a file, to a directory and back up the tree.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write_file(&root.join("b.txt"), b"b");
        write_file(&root.join("a.txt"), b"content1");
        write_file(&root.join("empty"), b"");
        write_file(&root.join("sub/deeper/c.csv"), b"1,2,3\n");
        write_file(&root.join("sub/big.bin"), &vec![7u8; 5 << 20]);
        write_file(&root.join("a.d/x"), b"x");
        fs::create_dir_all(root.join("empty-dir")).expect("mkdir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(root.join("b.txt"), root.join("link-to-b")).expect("symlink");
            symlink(root.join("sub/deeper"), root.join("link-to-deeper")).expect("symlink");
            symlink(root, root.join("sub/loop")).expect("symlink");
        }
        dir
    }

    #[test]
    fn add_dir_is_deterministic() {
        let dir = tree();
        let mut one = Manifest::new();
        let added = one.add_dir_with(dir.path(), "", 1).expect("add_dir");
        let mut names: Vec<&str> = one.entries.keys().map(String::as_str).collect();
        let mut want = vec![
            "a.d/x",
            "a.txt",
            "b.txt",
            "empty",
            "sub/big.bin",
            "sub/deeper/c.csv",
        ];
        if cfg!(unix) {
            want.extend(["link-to-b", "link-to-deeper/c.csv"]);
        }
        want.sort_unstable();
        names.sort_unstable();
        assert_eq!(names, want);
        assert_eq!(added, want.len());
        assert_eq!(one.entries["a.txt"].digest, "flXbAB0xmpSwtxNSmnVmIw==");
        assert_eq!(one.entries["empty"].digest, Md5::of(b"").to_base64());
        assert_eq!(
            one.entries["sub/big.bin"].digest,
            Md5::of(&vec![7u8; 5 << 20]).to_base64()
        );
        assert_eq!(one.entries["sub/big.bin"].size, 5 << 20);
        let local = one.entries["sub/deeper/c.csv"]
            .local_path
            .clone()
            .expect("local path");
        assert_eq!(fs::read(local).expect("read"), b"1,2,3\n");

        for threads in [2, 3, 8] {
            let mut other = Manifest::new();
            other
                .add_dir_with(dir.path(), "", threads)
                .expect("add_dir");
            assert_eq!(other.to_json(), one.to_json(), "threads {threads}");
        }

        let mut prefixed = Manifest::new();
        prefixed.add_dir(dir.path(), "data/v1/").expect("add_dir");
        assert!(
            prefixed
                .entries
                .keys()
                .all(|name| name.starts_with("data/v1/"))
        );
        assert_ne!(prefixed.content_digest(), one.content_digest());
        assert_eq!(prefixed.entries["data/v1/a.txt"], one.entries["a.txt"]);
    }

    #[test]
    fn add_dir_fails_whole_and_names_the_path() {
        let dir = tree();
        let mut manifest = Manifest::new();
        let err = manifest
            .add_dir(&dir.path().join("a.txt"), "")
            .expect_err("a file");
        assert!(matches!(err, ManifestError::NotADirectory { .. }), "{err}");
        let err = manifest
            .add_dir(dir.path(), "../up")
            .expect_err("bad prefix");
        assert!(matches!(err, ManifestError::InvalidName { .. }), "{err}");

        // A conflict on one file adds none of the others.
        manifest.insert("b.txt", entry("other")).expect("insert");
        let err = manifest.add_dir(dir.path(), "").expect_err("conflict");
        assert!(err.to_string().contains("b.txt"), "{err}");
        assert_eq!(manifest.entries.len(), 1);

        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("dangling"))
                .expect("symlink");
            let err = Manifest::new()
                .add_dir(dir.path(), "")
                .expect_err("dangling link");
            assert!(err.to_string().contains("dangling"), "{err}");
        }
    }
}
