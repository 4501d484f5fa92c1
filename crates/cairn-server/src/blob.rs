//! File bytes: run files and artifact contents kept in an `object_store` — a local folder
//! by default, or any S3-compatible bucket — behind self-authorising URLs.
//!
//! W&B's clients PUT and GET files at URLs the server hands out and send no credentials
//! with them, so every such URL carries its own authority: an expiry and an HMAC-SHA256
//! signature over the method, the object key and the expiry, made with a secret that lives
//! in the database (so every server process of one deployment agrees). Keys are built by
//! this module from ids and checked file names only ([`check_file_name`]).
//!
//! Uploads are streamed: bodies up to [`SINGLE_PUT_LIMIT`] go in one `put`, longer ones
//! through a multipart upload, so memory stays bounded whatever the file size.

use std::sync::Arc;

use bytes_buf::Buffer;
use futures_util::{Stream, StreamExt};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::Sha256;

/// Bodies up to this size are stored with one `put`.
pub const SINGLE_PUT_LIMIT: usize = 8 << 20;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("storage {url} cannot be used: {source}")]
    Open {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot create storage folder {path}: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no such file in storage: {0}")]
    NotFound(String),
    #[error("storage error on {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("upload of {key} was cut short: {message}")]
    Body { key: String, message: String },
}

/// Where files live, and the secret that signs their URLs.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    secret: Arc<[u8]>,
    description: String,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches Debug.
        f.debug_struct("Blobs")
            .field("store", &self.description)
            .finish_non_exhaustive()
    }
}

/// The outcome of a stored upload.
#[derive(Clone, Debug)]
pub struct Stored {
    pub size: u64,
    /// Base64 of the raw MD5, W&B's digest form.
    pub md5: String,
}

impl Stored {
    /// The MD5 in hex (the form of ETags and of artifact blob keys).
    pub fn md5_hex(&self) -> String {
        md5_hex(&self.md5).unwrap_or_default()
    }
}

/// The hex form of W&B's base64 MD5, if it is one (16 bytes).
pub fn md5_hex(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (raw.len() == 16).then(|| hex::encode(raw))
}

impl Blobs {
    /// Opens the storage named by `url`: `s3://bucket[/prefix]` (configured by the usual
    /// `AWS_*` variables; `AWS_ENDPOINT` and `AWS_ALLOW_HTTP=true` for S3-compatible
    /// services), `memory://` (tests), or a local folder path (created if missing).
    pub fn open(url: &str, secret: &[u8]) -> Result<Blobs, BlobError> {
        let store: Arc<dyn ObjectStore> = if url.starts_with("s3://") {
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .build()
                .map_err(|source| BlobError::Open {
                    url: url.to_owned(),
                    source,
                })?;
            let prefix = url
                .trim_start_matches("s3://")
                .split_once('/')
                .map(|(_, p)| p.trim_matches('/'))
                .unwrap_or_default();
            if prefix.is_empty() {
                Arc::new(store)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
            }
        } else if url == "memory://" {
            Arc::new(object_store::memory::InMemory::new())
        } else {
            let path = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(path).map_err(|source| BlobError::Folder {
                path: path.to_owned(),
                source,
            })?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(path).map_err(|source| {
                    BlobError::Open {
                        url: url.to_owned(),
                        source,
                    }
                })?,
            )
        };
        Ok(Blobs {
            store,
            secret: secret.into(),
            description: url.to_owned(),
        })
    }

    /// The query string (`exp=…&sig=…`) that authorises `method` on `key` until `expires`
    /// (Unix seconds).
    pub fn sign(&self, method: &str, key: &str, expires: i64) -> String {
        format!("exp={expires}&sig={}", self.signature(method, key, expires))
    }

    /// Whether `sig` authorises `method` on `key` now.
    pub fn verify(&self, method: &str, key: &str, expires: i64, sig: &str, now: i64) -> bool {
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        now <= expires && self.mac(method, key, expires).verify_slice(&sig).is_ok()
    }

    fn mac(&self, method: &str, key: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    fn signature(&self, method: &str, key: &str, expires: i64) -> String {
        hex::encode(self.mac(method, key, expires).finalize().into_bytes())
    }

    /// Stores the bytes of `body` under `key`, streaming (see the module doc).
    pub async fn put_stream<S, E>(&self, key: &str, mut body: S) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<bytes_buf::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = object_path(key);
        let store_err = |source| BlobError::Store {
            key: key.to_owned(),
            source,
        };
        let mut md5 = Md5::new();
        let mut size = 0u64;
        let mut head = Buffer::new();
        let mut multipart: Option<WriteMultipart> = None;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| BlobError::Body {
                key: key.to_owned(),
                message: err.to_string(),
            })?;
            md5.update(&chunk);
            size += chunk.len() as u64;
            match &mut multipart {
                Some(upload) => upload.write(&chunk),
                None => {
                    head.push(chunk);
                    if head.len() > SINGLE_PUT_LIMIT {
                        let upload = self.store.put_multipart(&path).await.map_err(store_err)?;
                        let mut upload = WriteMultipart::new(upload);
                        for part in head.take() {
                            upload.write(&part);
                        }
                        multipart = Some(upload);
                    }
                }
            }
        }
        match multipart {
            Some(upload) => {
                upload.finish().await.map_err(store_err)?;
            }
            None => {
                let payload: PutPayload = head.take().into_iter().collect();
                self.store.put(&path, payload).await.map_err(store_err)?;
            }
        }
        use base64::Engine as _;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
        Ok(Stored { size, md5 })
    }

    /// Stores `bytes` under `key` in one call.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.store
            .put(&object_path(key), bytes.into())
            .await
            .map_err(|source| BlobError::Store {
                key: key.to_owned(),
                source,
            })?;
        Ok(())
    }

    /// The bytes of `key`, as a stream, and their length.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<
        (
            u64,
            impl Stream<Item = Result<bytes_buf::Bytes, object_store::Error>> + use<>,
        ),
        BlobError,
    > {
        let (size, _, stream) = self.get_range(key, None).await?;
        Ok((size, stream))
    }

    /// The bytes `range` (start, end exclusive; the whole object when `None`) of `key`, as a
    /// stream, with the object's size and the range served.
    pub async fn get_range(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<
        (
            u64,
            std::ops::Range<u64>,
            impl Stream<Item = Result<bytes_buf::Bytes, object_store::Error>> + use<>,
        ),
        BlobError,
    > {
        let options = object_store::GetOptions {
            range: range.map(object_store::GetRange::Bounded),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&object_path(key), options)
            .await
            .map_err(|source| match source {
                object_store::Error::NotFound { .. } => BlobError::NotFound(key.to_owned()),
                source => BlobError::Store {
                    key: key.to_owned(),
                    source,
                },
            })?;
        let size = result.meta.size;
        let served = result.range.clone();
        Ok((size, served, result.into_stream()))
    }

    /// The size of the object `key`.
    pub async fn size(&self, key: &str) -> Result<u64, BlobError> {
        match self.store.head(&object_path(key)).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound(key.to_owned())),
            Err(source) => Err(BlobError::Store {
                key: key.to_owned(),
                source,
            }),
        }
    }

    /// Moves the object `from` to `to` (replacing `to`).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), BlobError> {
        self.store
            .rename(&object_path(from), &object_path(to))
            .await
            .map_err(|source| BlobError::Store {
                key: from.to_owned(),
                source,
            })
    }

    /// Deletes the object `key`; a missing one is no error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&object_path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(BlobError::Store {
                key: key.to_owned(),
                source,
            }),
        }
    }

    /// Stores the objects `parts`, in order, joined as `key`, streaming (a multipart
    /// artifact upload's completion). A missing part is [`BlobError::NotFound`].
    pub async fn concat(&self, parts: &[String], key: &str) -> Result<Stored, BlobError> {
        for part in parts {
            self.store
                .head(&object_path(part))
                .await
                .map_err(|source| match source {
                    object_store::Error::NotFound { .. } => BlobError::NotFound(part.clone()),
                    source => BlobError::Store {
                        key: part.clone(),
                        source,
                    },
                })?;
        }
        let store_err = |key: &str| {
            let key = key.to_owned();
            move |source| BlobError::Store { key, source }
        };
        let upload = self
            .store
            .put_multipart(&object_path(key))
            .await
            .map_err(store_err(key))?;
        let mut upload = WriteMultipart::new(upload);
        let mut md5 = Md5::new();
        let mut size = 0u64;
        for part in parts {
            let mut stream = self
                .store
                .get(&object_path(part))
                .await
                .map_err(store_err(part))?
                .into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(store_err(part))?;
                md5.update(&chunk);
                size += chunk.len() as u64;
                // At most 8 parts of the store's size in flight: memory stays bounded.
                upload.wait_for_capacity(8).await.map_err(store_err(key))?;
                upload.write(&chunk);
            }
        }
        upload.finish().await.map_err(store_err(key))?;
        use base64::Engine as _;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
        Ok(Stored { size, md5 })
    }

    /// Deletes every object under `prefix` (a run's folder, when the run is deleted).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError> {
        let prefix_path = object_path(prefix);
        let mut listing = self.store.list(Some(&prefix_path));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| BlobError::Store {
                key: prefix.to_owned(),
                source,
            })?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(BlobError::Store {
                        key: meta.location.to_string(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// An object key as a store path: every `/`-separated part kept as one path segment, with
/// characters the store cannot hold escaped by `object_store`.
fn object_path(key: &str) -> Path {
    Path::from_iter(key.split('/').filter(|part| !part.is_empty()))
}

/// The storage key of a run's file.
pub fn run_file_key(run: i64, name: &str) -> String {
    format!("runs/{run}/files/{name}")
}

/// The storage key of an entity's artifact content with this hex MD5 (content-addressed:
/// every version holding the same bytes shares it).
pub fn artifact_blob_key(entity: i64, md5_hex: &str) -> String {
    format!("artifacts/{entity}/blobs/{md5_hex}")
}

/// The storage key of a version's `wandb_manifest.json`.
pub fn artifact_manifest_key(entity: i64, artifact: i64) -> String {
    format!("artifacts/{entity}/manifests/{artifact}.json")
}

/// The storage key of part `part` of a multipart upload.
pub fn artifact_part_key(entity: i64, upload: &str, part: i64) -> String {
    format!("artifacts/{entity}/uploads/{upload}/{part}")
}

/// Where an artifact upload is written before its MD5 is checked.
pub fn artifact_staging_key(entity: i64) -> String {
    use rand::Rng as _;
    let tag: u64 = rand::rng().random();
    format!("artifacts/{entity}/staging/{tag:016x}")
}

/// A storage key of the artifact area, taken apart.
#[derive(Debug, PartialEq, Eq)]
pub enum ArtifactKey<'a> {
    Blob {
        entity: i64,
        md5_hex: &'a str,
    },
    Manifest {
        entity: i64,
        artifact: i64,
    },
    Part {
        entity: i64,
        upload: &'a str,
        part: i64,
    },
}

/// Parses a key made by the `artifact_*_key` functions.
pub fn parse_artifact_key(key: &str) -> Option<ArtifactKey<'_>> {
    let rest = key.strip_prefix("artifacts/")?;
    let (entity, rest) = rest.split_once('/')?;
    let entity = entity.parse().ok()?;
    let (area, rest) = rest.split_once('/')?;
    match area {
        "blobs" if rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(ArtifactKey::Blob {
                entity,
                md5_hex: rest,
            })
        }
        "manifests" => Some(ArtifactKey::Manifest {
            entity,
            artifact: rest.strip_suffix(".json")?.parse().ok()?,
        }),
        "uploads" => {
            let (upload, part) = rest.split_once('/')?;
            let upload_ok = !upload.is_empty() && upload.bytes().all(|b| b.is_ascii_alphanumeric());
            upload_ok.then_some(())?;
            Some(ArtifactKey::Part {
                entity,
                upload,
                part: part.parse().ok()?,
            })
        }
        _ => None,
    }
}

/// Checks a client-supplied file name: relative, `/`-separated, no empty, `.` or `..`
/// segments, no NUL or backslash, at most 1024 bytes.
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("file name is empty".to_owned());
    }
    if name.len() > 1024 {
        return Err(format!(
            "file name is longer than 1024 bytes: {}…",
            &name[..64]
        ));
    }
    if name.contains('\0') || name.contains('\\') {
        return Err(format!("file name {name:?} contains a NUL or a backslash"));
    }
    if name.starts_with('/') {
        return Err(format!("file name {name:?} is absolute"));
    }
    if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "file name {name:?} has an empty, `.` or `..` segment"
        ));
    }
    Ok(())
}

/// Percent-encodes a key for a URL path, keeping `/` between segments.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A small list of byte chunks, for the head of an upload.
mod bytes_buf {
    pub(super) use bytes::Bytes;

    #[derive(Debug, Default)]
    pub(super) struct Buffer {
        chunks: Vec<Bytes>,
        len: usize,
    }

    impl Buffer {
        pub(super) fn new() -> Buffer {
            Buffer::default()
        }
        pub(super) fn push(&mut self, chunk: Bytes) {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
        pub(super) fn len(&self) -> usize {
            self.len
        }
        pub(super) fn take(&mut self) -> Vec<Bytes> {
            self.len = 0;
            std::mem::take(&mut self.chunks)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_forms() {
        assert_eq!(
            md5_hex("t/DFCvY1IvFkGHDVa9VgAg==").as_deref(),
            Some("b7f0c50af63522f1641870d56bd56002")
        );
        assert_eq!(md5_hex("not base64!"), None);
        assert_eq!(md5_hex("AAAA"), None);
    }

    #[test]
    fn signatures_bind_method_key_and_expiry() {
        let blobs = Blobs::open("memory://", b"secret").unwrap();
        let query = blobs.sign("PUT", "runs/1/files/a.txt", 100);
        let sig = query.split("sig=").nth(1).unwrap();
        assert!(blobs.verify("PUT", "runs/1/files/a.txt", 100, sig, 50));
        assert!(!blobs.verify("GET", "runs/1/files/a.txt", 100, sig, 50));
        assert!(!blobs.verify("PUT", "runs/1/files/b.txt", 100, sig, 50));
        assert!(!blobs.verify("PUT", "runs/1/files/a.txt", 101, sig, 50));
        assert!(!blobs.verify("PUT", "runs/1/files/a.txt", 100, sig, 101));
        assert!(!blobs.verify("PUT", "runs/1/files/a.txt", 100, "zz", 50));
    }

    #[test]
    fn file_names_are_checked() {
        for good in [
            "a.txt",
            "media/images/x_1.png",
            "weird name (1).txt",
            "ünï.txt",
        ] {
            assert!(check_file_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\0b",
            "a\\b",
            "a/",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn artifact_keys_round_trip() {
        let md5 = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_artifact_key(&artifact_blob_key(3, md5)),
            Some(ArtifactKey::Blob {
                entity: 3,
                md5_hex: md5
            })
        );
        assert_eq!(
            parse_artifact_key(&artifact_manifest_key(3, 9)),
            Some(ArtifactKey::Manifest {
                entity: 3,
                artifact: 9
            })
        );
        assert_eq!(
            parse_artifact_key(&artifact_part_key(3, "ab12", 7)),
            Some(ArtifactKey::Part {
                entity: 3,
                upload: "ab12",
                part: 7
            })
        );
        for bad in [
            "artifacts/3/blobs/../x",
            "artifacts/x/blobs/0123456789abcdef0123456789abcdef",
            "artifacts/3/uploads/a.b/1",
            "artifacts/3/staging/1",
            "runs/1/files/a",
        ] {
            assert_eq!(parse_artifact_key(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn parts_concatenate() {
        let blobs = Blobs::open("memory://", b"s").unwrap();
        blobs.put("p/1", b"hello ".to_vec()).await.unwrap();
        blobs.put("p/2", b"world".to_vec()).await.unwrap();
        let stored = blobs
            .concat(&["p/1".to_owned(), "p/2".to_owned()], "joined")
            .await
            .unwrap();
        assert_eq!(stored.size, 11);
        let (_, stream) = blobs.get("joined").await.unwrap();
        let got: Vec<u8> = stream.map(|c| c.unwrap().to_vec()).concat().await;
        assert_eq!(got, b"hello world");
        assert!(matches!(
            blobs.concat(&["p/9".to_owned()], "x").await,
            Err(BlobError::NotFound(_))
        ));
    }

    #[test]
    fn keys_encode_for_urls() {
        assert_eq!(
            encode_key("runs/1/files/a b%.txt"),
            "runs/1/files/a%20b%25.txt"
        );
    }

    #[tokio::test]
    async fn streamed_uploads_round_trip() {
        let blobs = Blobs::open("memory://", b"s").unwrap();
        for size in [0usize, 10, SINGLE_PUT_LIMIT + 3] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let chunks: Vec<Result<bytes::Bytes, std::convert::Infallible>> = data
                .chunks(1 << 20)
                .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                .collect();
            let stored = blobs
                .put_stream("k/x", futures_util::stream::iter(chunks))
                .await
                .unwrap();
            assert_eq!(stored.size, size as u64);
            let (len, stream) = blobs.get("k/x").await.unwrap();
            assert_eq!(len, size as u64);
            let got: Vec<u8> = stream.map(|c| c.unwrap().to_vec()).concat().await;
            assert_eq!(got, data);
        }
    }
}
