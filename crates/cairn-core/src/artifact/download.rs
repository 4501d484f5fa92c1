//! Downloading a version into a folder through W&B's content-addressed cache ([`download`]).
//!
//! The manifest, then every file's signed URL; a file already in the folder with the right
//! MD5 is kept, one in the cache (`<cache>/obj/md5/<hex[..2]>/<hex[2..]>`, W&B's layout, so
//! both tools share it) is hard-linked (copied across file systems), any other is fetched into
//! the cache, `PARALLEL_TRANSFERS` at a time, its MD5 checked, then linked. References are not
//! downloaded (the user's storage holds them).
//!
//! Runs on the caller's thread; fetches run on scoped threads that end before it returns. A
//! fetch is staged in a temporary file in the cache and renamed into place once checked, so
//! the cache never holds a partial file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::client::{Connection, HttpError, Until, documents, in_parallel};

use super::PARALLEL_TRANSFERS;
use super::error::ArtifactError;
use super::hash::{self, Md5};
use super::manifest::Manifest;
use super::resolve::RemoteArtifact;

/// What a download did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownloadReport {
    /// Files fetched from the server.
    pub fetched: usize,
    /// Files taken from the cache.
    pub from_cache: usize,
    /// Files already in the folder with the right content.
    pub kept: usize,
    /// Bytes fetched.
    pub bytes: u64,
}

/// The default artifact cache: `$WANDB_CACHE_DIR/artifacts`, else
/// `~/.cache/wandb/artifacts` (W&B's, so both tools share it).
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WANDB_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("artifacts");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("wandb").join("artifacts")
}

/// Downloads `artifact` into `dir` through the cache at `cache` (see the module doc).
pub fn download(
    conn: &Connection,
    artifact: &RemoteArtifact,
    dir: &Path,
    cache: &Path,
    until: &Until,
) -> Result<DownloadReport, ArtifactError> {
    let name = artifact.name();
    let http = |source| ArtifactError::Http {
        name: name.clone(),
        source,
    };
    let file_err = |path: &Path| {
        let name = name.clone();
        let path = path.to_owned();
        move |source| ArtifactError::File { name, path, source }
    };
    let data = conn
        .graphql(
            "FetchArtifactManifest",
            documents::FETCH_ARTIFACT_MANIFEST,
            json!({"id": artifact.id}),
            until,
        )
        .map_err(http)?;
    let url = data["artifact"]["currentManifest"]["file"]["directUrl"]
        .as_str()
        .ok_or_else(|| ArtifactError::Answer {
            name: name.clone(),
            operation: "FetchArtifactManifest",
            detail: format!("no manifest URL in {data}"),
        })?;
    std::fs::create_dir_all(cache).map_err(file_err(cache))?;
    let staged = tempfile::NamedTempFile::new_in(cache).map_err(file_err(cache))?;
    conn.get_to_file(url, staged.path(), until).map_err(http)?;
    let text = std::fs::read(staged.path()).map_err(file_err(staged.path()))?;
    let manifest = Manifest::from_json(&text).map_err(|source| ArtifactError::Manifest {
        name: name.clone(),
        source,
    })?;
    manifest
        .check_names()
        .map_err(|source| ArtifactError::Manifest {
            name: name.clone(),
            source,
        })?;
    let urls = file_urls(conn, artifact, until).map_err(http)?;

    let mut report = DownloadReport::default();
    let mut fetches = Vec::new();
    for (path, entry) in &manifest.entries {
        if entry.reference.is_some() {
            continue; // references are not downloaded (the user's storage holds them)
        }
        let Some(md5) = Md5::from_base64(&entry.digest) else {
            return Err(ArtifactError::Corrupt {
                name: name.clone(),
                path: path.clone(),
                got: String::new(),
                want: entry.digest.clone(),
            });
        };
        let dest = dir.join(path);
        if dest.metadata().is_ok_and(|m| m.len() == entry.size)
            && hash::md5_file(&dest).is_ok_and(|d| d.md5 == md5)
        {
            report.kept += 1;
            continue;
        }
        let cached = cache_path(cache, &md5);
        if cached.is_file() {
            place(&cached, &dest).map_err(file_err(&dest))?;
            report.from_cache += 1;
            continue;
        }
        let url = urls.get(path).ok_or_else(|| ArtifactError::Answer {
            name: name.clone(),
            operation: "GetArtifactMembershipFileUrls",
            detail: format!("no URL for {path}"),
        })?;
        fetches.push((path.clone(), url.clone(), md5, entry.size, dest, cached));
    }
    let results = in_parallel(
        fetches,
        PARALLEL_TRANSFERS,
        |(path, url, md5, size, dest, cached)| {
            let outcome = fetch_one(conn, &url, &md5, &cached, &dest, until, &name, &path);
            (size, outcome)
        },
        |(_, outcome)| outcome.is_err(),
    );
    let (mut fetched, mut bytes) = (0, 0);
    for (size, outcome) in results {
        outcome?;
        fetched += 1;
        bytes += size;
    }
    report.fetched = fetched;
    report.bytes = bytes;
    Ok(report)
}

/// Fetches one file into the cache (checked), then places it at `dest`.
#[allow(clippy::too_many_arguments)]
fn fetch_one(
    conn: &Connection,
    url: &str,
    md5: &Md5,
    cached: &Path,
    dest: &Path,
    until: &Until,
    name: &str,
    path: &str,
) -> Result<(), ArtifactError> {
    let file_err = |at: &Path| {
        let at = at.to_owned();
        move |source| ArtifactError::File {
            name: name.to_owned(),
            path: at,
            source,
        }
    };
    let parent = cached.parent().unwrap_or(cached);
    std::fs::create_dir_all(parent).map_err(file_err(parent))?;
    let staged = tempfile::NamedTempFile::new_in(parent).map_err(file_err(parent))?;
    let got = conn
        .get_to_file(url, staged.path(), until)
        .map_err(|source| ArtifactError::Http {
            name: name.to_owned(),
            source,
        })?;
    if got != md5.0 {
        return Err(ArtifactError::Corrupt {
            name: name.to_owned(),
            path: path.to_owned(),
            got: Md5(got).to_base64(),
            want: md5.to_base64(),
        });
    }
    staged.persist(cached).map_err(|err| ArtifactError::File {
        name: name.to_owned(),
        path: cached.to_owned(),
        source: err.error,
    })?;
    place(cached, dest).map_err(file_err(dest))
}

/// Where the cache keeps content `md5`.
fn cache_path(cache: &Path, md5: &Md5) -> PathBuf {
    let hex = md5.to_hex();
    cache
        .join("obj")
        .join("md5")
        .join(&hex[..2])
        .join(&hex[2..])
}

/// Puts the cached file at `dest`: a hard link (no second copy), or a copy across file
/// systems. Whatever was at `dest` is replaced.
fn place(cached: &Path, dest: &Path) -> std::io::Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::remove_file(dest) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if std::fs::hard_link(cached, dest).is_err() {
        std::fs::copy(cached, dest)?;
    }
    Ok(())
}

/// Every stored file's signed URL, by entry name (paged as the server pages).
fn file_urls(
    conn: &Connection,
    artifact: &RemoteArtifact,
    until: &Until,
) -> Result<HashMap<String, String>, HttpError> {
    let mut urls = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let data = conn.graphql(
            "GetArtifactMembershipFileUrls",
            documents::GET_ARTIFACT_MEMBERSHIP_FILE_URLS,
            json!({"entity": artifact.entity, "project": artifact.project,
                "collection": artifact.collection, "alias": format!("v{}", artifact.version),
                "cursor": cursor, "perPage": 5000}),
            until,
        )?;
        let files = &data["project"]["artifactCollection"]["artifactMembership"]["files"];
        for edge in files["edges"].as_array().into_iter().flatten() {
            if let (Some(name), Some(url)) = (
                edge["node"]["name"].as_str(),
                edge["node"]["directUrl"].as_str(),
            ) {
                urls.insert(name.to_owned(), url.to_owned());
            }
        }
        let next = files["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        if files["pageInfo"]["hasNextPage"].as_bool() != Some(true) || next.is_none() {
            return Ok(urls);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_paths_follow_wandb() {
        let md5 = Md5::from_hex("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            cache_path(Path::new("/c"), &md5),
            PathBuf::from("/c/obj/md5/01/23456789abcdef0123456789abcdef")
        );
    }
}
