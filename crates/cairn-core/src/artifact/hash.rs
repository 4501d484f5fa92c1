//! MD5 of artifact files with bounded memory: whole files, many files at once, and the
//! parts of a multipart upload.
//!
//! Input: paths of local files. Output: [`FileDigest`] (size and MD5) per file, or
//! [`PartDigest`]s (number, offset, length, MD5) per upload part. W&B's wire forms are
//! [`Md5::to_base64`] (manifest `digest`, `CreateArtifactFiles.md5`, `Content-MD5`) and
//! [`Md5::to_hex`] (`uploadPartsInput.hexMD5`).
//!
//! Files are read in [`CHUNK_SIZE`] pieces into reused buffers; nothing maps or loads a
//! whole file. Memory is bounded whatever the file sizes:
//!
//! * a file larger than a few chunks is read by a named reader thread (`cairn-hash-read`)
//!   through [`PIPELINE_BUFFERS`] buffers that travel reader → hasher(s) → reader, so
//!   reading overlaps hashing (MD5 itself is sequential: one file's digest uses one core);
//!   smaller files are read on the hashing thread through one buffer;
//! * [`hash_files`] runs at most [`MAX_HASH_THREADS`] workers, each hashing one file at a
//!   time, so its buffers stay within `MAX_HASH_THREADS * (PIPELINE_BUFFERS + 1)` chunks
//!   (40 MiB);
//! * [`part_md5s`] hashes the parts on up to [`MAX_HASH_THREADS`] threads, one chunk each.
//!
//! Multipart sizes follow wandb-core (`pkg/artifacts/multipart.go`): files of
//! [`MULTIPART_MIN_SIZE`] (2 GiB) or more go in parts of 100 MiB, or of
//! `ceil(size / 10_000)` rounded up to 4 KiB when 100 MiB parts would be more than
//! 10,000 ([`multipart_part_size`]).
//!
//! Everything here is synchronous; threads are scoped to the call and joined before it
//! returns, also on error. A file that changes while it is hashed gets the digest of
//! whatever bytes were read (its `size` says how many); [`part_md5s`], which plans parts
//! from the size up front, reports [`HashError::Changed`] if the file shrinks.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::Digest as _;

/// Bytes read by one `read` call and hashed at once.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Buffers of [`CHUNK_SIZE`] bytes shared by one file's reader thread and its hashers.
pub const PIPELINE_BUFFERS: usize = 4;

/// Most threads any call here uses (and so the bound on its buffers, see the module docs).
pub const MAX_HASH_THREADS: usize = 8;

/// Files up to this size are read on the hashing thread itself: a reader thread would
/// cost more than the overlap saves.
const INLINE_MAX: u64 = 4 * CHUNK_SIZE as u64;

/// Files of this size or more are uploaded in parts (wandb-core's `S3MinMultiUploadSize`).
pub const MULTIPART_MIN_SIZE: u64 = 2 << 30;

/// Largest object a multipart upload can make (S3's limit; wandb-core refuses larger files).
pub const MULTIPART_MAX_SIZE: u64 = 5 << 40;

/// Part size unless that would need more than [`MULTIPART_MAX_PARTS`] parts.
pub const MULTIPART_DEFAULT_PART_SIZE: u64 = 100 << 20;

/// Most parts in one multipart upload (S3's limit).
pub const MULTIPART_MAX_PARTS: u64 = 10_000;

/// Larger part sizes are rounded up to a multiple of this.
const MULTIPART_PART_ALIGN: u64 = 4096;

/// A raw 16-byte MD5 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Md5(pub [u8; 16]);

impl Md5 {
    /// The MD5 of `bytes`.
    pub fn of(bytes: &[u8]) -> Md5 {
        Md5(md5::Md5::digest(bytes).into())
    }

    /// Standard base64 with padding, e.g. `t/DFCvY1IvFkGHDVa9VgAg==`: W&B's manifest entry
    /// digest and `Content-MD5` header.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Lowercase hex, e.g. `b7f0c50af63522f1641c350d5af55808`: W&B's part `hexMD5` and
    /// artifact digest.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(32);
        for byte in self.0 {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        out
    }

    /// Parses [`Md5::to_base64`]'s form; `None` unless it is exactly 16 bytes of base64.
    pub fn from_base64(text: &str) -> Option<Md5> {
        let bytes = BASE64.decode(text).ok()?;
        Some(Md5(bytes.try_into().ok()?))
    }

    /// Parses 32 hex digits (either case); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Md5> {
        let text = text.as_bytes();
        if text.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            let digit = |c: u8| char::from(c).to_digit(16);
            *byte = u8::try_from((digit(pair[0])? << 4) | digit(pair[1])?).ok()?;
        }
        Some(Md5(out))
    }
}

impl fmt::Display for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5({})", self.to_hex())
    }
}

/// A file's size (the bytes hashed) and MD5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// Bytes read from the file.
    pub size: u64,
    /// Their MD5.
    pub md5: Md5,
}

/// One part of a multipart upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartDigest {
    /// 1-based part number (`partNumber` on the wire).
    pub number: u32,
    /// Offset of the part's first byte in the file.
    pub offset: u64,
    /// Bytes in the part: the part size, except for a shorter last part.
    pub len: u64,
    /// MD5 of the part.
    pub md5: Md5,
}

/// Why a file could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Opening or reading the file failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file got shorter while its parts were hashed.
    #[error("{} changed while it was hashed: {expected} bytes expected, {actual} read", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
        /// Its size when hashing started.
        expected: u64,
        /// Bytes there were to read.
        actual: u64,
    },
    /// A part size of zero was asked for.
    #[error("cannot split {} into parts of 0 bytes", path.display())]
    ZeroPartSize {
        /// The file.
        path: PathBuf,
    },
    /// A hashing thread could not be started.
    #[error("cannot start a thread to hash {}", path.display())]
    Thread {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl HashError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            HashError::Io { path, .. }
            | HashError::Changed { path, .. }
            | HashError::ZeroPartSize { path }
            | HashError::Thread { path, .. } => path,
        }
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> HashError + '_ {
        move |source| HashError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn thread(path: &Path) -> impl FnOnce(io::Error) -> HashError + '_ {
        move |source| HashError::Thread {
            path: path.to_owned(),
            source,
        }
    }
}

/// The part size W&B uses for a file of `size` bytes, or `None` below
/// [`MULTIPART_MIN_SIZE`] (a single PUT). Sizes above [`MULTIPART_MAX_SIZE`] still get a
/// part size; refusing them is the uploader's call.
pub fn multipart_part_size(size: u64) -> Option<u64> {
    if size < MULTIPART_MIN_SIZE {
        return None;
    }
    if size < MULTIPART_DEFAULT_PART_SIZE * MULTIPART_MAX_PARTS {
        return Some(MULTIPART_DEFAULT_PART_SIZE);
    }
    let part = size.div_ceil(MULTIPART_MAX_PARTS);
    Some(part.div_ceil(MULTIPART_PART_ALIGN) * MULTIPART_PART_ALIGN)
}

/// Threads worth using here: the available cores, at most [`MAX_HASH_THREADS`].
pub fn default_threads() -> usize {
    thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_HASH_THREADS)
}

/// The size and MD5 of the file at `path`.
pub fn md5_file(path: &Path) -> Result<FileDigest, HashError> {
    md5_file_with(path, &mut Vec::new())
}

/// The MD5s of many files, hashed by up to `threads` threads (clamped to
/// `1..=MAX_HASH_THREADS`; [`default_threads`] is the usual choice), one result per path
/// in the same order. Files are taken in order as threads free up, so putting the largest
/// first balances the load best.
pub fn hash_files<P>(paths: &[P], threads: usize) -> Vec<Result<FileDigest, HashError>>
where
    P: AsRef<Path> + Sync,
{
    let threads = threads.clamp(1, MAX_HASH_THREADS).min(paths.len());
    if threads <= 1 {
        let mut buf = Vec::new();
        return paths
            .iter()
            .map(|path| md5_file_with(path.as_ref(), &mut buf))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut buf = Vec::new();
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(index) else {
                return done;
            };
            done.push((index, md5_file_with(path.as_ref(), &mut buf)));
        }
    };
    let mut results: Vec<(usize, Result<FileDigest, HashError>)> = thread::scope(|scope| {
        // Threads that fail to start are simply absent: the caller's thread works too, so
        // every path is hashed whatever the number of threads that started.
        let handles: Vec<_> = (1..threads)
            .filter_map(|i| {
                thread::Builder::new()
                    .name(format!("cairn-hash-{i}"))
                    .spawn_scoped(scope, worker)
                    .ok()
            })
            .collect();
        let mut results = worker();
        for handle in handles {
            results.extend(join(handle));
        }
        results
    });
    results.sort_unstable_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// The MD5 of each `part_size`-byte part of the file at `path` (the last part may be
/// shorter; an empty file has no parts), hashed in parallel: the parts are split into
/// contiguous runs, one per thread, each read sequentially.
pub fn part_md5s(path: &Path, part_size: u64) -> Result<Vec<PartDigest>, HashError> {
    if part_size == 0 {
        return Err(HashError::ZeroPartSize {
            path: path.to_owned(),
        });
    }
    let size = std::fs::metadata(path).map_err(HashError::io(path))?.len();
    let count = size.div_ceil(part_size);
    let threads = u64::try_from(default_threads())
        .unwrap_or(1)
        .min(count)
        .max(1);
    // The first `count % threads` runs get one part more, as in wandb-core.
    let (per_thread, extra) = (count / threads, count % threads);
    let runs: Vec<(u64, u64)> = (0..threads)
        .map(|i| {
            let start = i * per_thread + i.min(extra);
            (start, start + per_thread + u64::from(i < extra))
        })
        .collect();
    let hash_run = |&(first, end): &(u64, u64)| -> Result<Vec<PartDigest>, HashError> {
        let mut file = File::open(path).map_err(HashError::io(path))?;
        file.seek(SeekFrom::Start(first * part_size))
            .map_err(HashError::io(path))?;
        let mut buf = vec![0; CHUNK_SIZE];
        let mut parts = Vec::new();
        for index in first..end {
            let offset = index * part_size;
            let len = part_size.min(size - offset);
            let mut hasher = md5::Md5::new();
            let read =
                hash_exact(&mut file, len, &mut buf, &mut hasher).map_err(HashError::io(path))?;
            if read < len {
                return Err(HashError::Changed {
                    path: path.to_owned(),
                    expected: size,
                    actual: offset + read,
                });
            }
            parts.push(PartDigest {
                number: part_number(index),
                offset,
                len,
                md5: Md5(hasher.finalize().into()),
            });
        }
        Ok(parts)
    };
    let Some((first_run, other_runs)) = runs.split_first() else {
        return Ok(Vec::new());
    };
    thread::scope(|scope| {
        let handles = other_runs
            .iter()
            .enumerate()
            .map(|(i, run)| {
                thread::Builder::new()
                    .name(format!("cairn-hash-part-{}", i + 1))
                    .spawn_scoped(scope, move || hash_run(run))
                    .map_err(HashError::thread(path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut parts = hash_run(first_run)?;
        for handle in handles {
            parts.extend(join(handle)?);
        }
        Ok(parts)
    })
}

/// The file's digest and its parts' digests (as [`md5_file`] and [`part_md5s`] give them)
/// from a single read of the file: one thread reads, one hashes the whole file and one
/// hashes the parts, so on two cores this takes about as long as [`md5_file`] alone.
pub fn md5_file_and_parts(
    path: &Path,
    part_size: u64,
) -> Result<(FileDigest, Vec<PartDigest>), HashError> {
    if part_size == 0 {
        return Err(HashError::ZeroPartSize {
            path: path.to_owned(),
        });
    }
    let file = File::open(path).map_err(HashError::io(path))?;
    let mut whole = md5::Md5::new();
    let mut parts = PartHasher::new(part_size);
    let mut hash_whole = |chunk: &[u8]| whole.update(chunk);
    let mut hash_parts = |chunk: &[u8]| parts.update(chunk);
    let size = pipelined(path, file, &mut [&mut hash_whole, &mut hash_parts])?;
    let digest = FileDigest {
        size,
        md5: Md5(whole.finalize().into()),
    };
    Ok((digest, parts.finish()))
}

/// [`md5_file`] with a caller-owned buffer for small files, reused across calls.
fn md5_file_with(path: &Path, buf: &mut Vec<u8>) -> Result<FileDigest, HashError> {
    let mut file = File::open(path).map_err(HashError::io(path))?;
    let size_hint = file.metadata().map_err(HashError::io(path))?.len();
    let mut hasher = md5::Md5::new();
    let size = if size_hint > INLINE_MAX {
        let mut hash = |chunk: &[u8]| hasher.update(chunk);
        pipelined(path, file, &mut [&mut hash])?
    } else {
        buf.resize(CHUNK_SIZE, 0);
        hash_exact(&mut file, u64::MAX, buf, &mut hasher).map_err(HashError::io(path))?
    };
    Ok(FileDigest {
        size,
        md5: Md5(hasher.finalize().into()),
    })
}

/// Hashes up to `limit` bytes of `reader` (fewer at its end) through `buf`; returns the
/// count hashed.
fn hash_exact(
    reader: &mut impl Read,
    limit: u64,
    buf: &mut [u8],
    hasher: &mut md5::Md5,
) -> io::Result<u64> {
    let mut done = 0;
    while done < limit {
        let want = usize::try_from(limit - done).map_or(buf.len(), |left| left.min(buf.len()));
        let n = fill(reader, &mut buf[..want])?;
        hasher.update(&buf[..n]);
        done += n as u64;
        if n < want {
            break;
        }
    }
    Ok(done)
}

/// Reads until `buf` is full or the reader is at its end; returns the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A chunk on its way through the pipeline: the buffer and how much of it holds data.
type Chunk = (Vec<u8>, usize);

/// One consumer of a pipeline's chunks.
type Stage<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// Reads `file` to its end on a reader thread and passes every chunk, in file order,
/// through `stages` one after the other; returns the bytes read.
///
/// Stage 0 runs on the calling thread and every further stage on a thread of its own, so
/// with two stages the two consume the same chunks at the same time. Buffers travel
/// reader → stage 0 → stage 1 … → back to the reader, which allocates at most
/// [`PIPELINE_BUFFERS`] of them, the only memory used. A read error ends the reader,
/// which closes its channel; the stages drain what was sent and the error is returned
/// once every thread has been joined.
fn pipelined(path: &Path, mut file: File, stages: &mut [Stage<'_>]) -> Result<u64, HashError> {
    let buffers = PIPELINE_BUFFERS;
    let (recycle_tx, recycle_rx) = sync_channel::<Chunk>(buffers);
    // The chain of channels: reader → stage 0 → … → last stage → recycle_tx.
    let mut senders = Vec::with_capacity(stages.len() + 1);
    let mut receivers = Vec::with_capacity(stages.len());
    for _ in 0..stages.len() {
        let (tx, rx) = sync_channel::<Chunk>(buffers);
        senders.push(tx);
        receivers.push(rx);
    }
    senders.push(recycle_tx);
    let mut senders = senders.into_iter();
    let Some(to_first) = senders.next() else {
        return Ok(0);
    };

    thread::scope(|scope| {
        let reader = thread::Builder::new()
            .name("cairn-hash-read".to_owned())
            .spawn_scoped(scope, move || {
                read_chunks(&mut file, &to_first, &recycle_rx, buffers)
            })
            .map_err(HashError::thread(path))?;
        let mut links = stages.iter_mut().zip(receivers).zip(senders);
        let first = links.next();
        // If a stage thread fails to start, every channel end not held by a running thread
        // is dropped below, so the chain breaks, the reader stops early, and the error is
        // returned once all threads are joined.
        let mut spawn_error = None;
        let mut handles = Vec::new();
        for ((stage, rx), tx) in links.by_ref() {
            let spawned = thread::Builder::new()
                .name("cairn-hash-stage".to_owned())
                .spawn_scoped(scope, move || run_stage(&mut **stage, &rx, &tx));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    spawn_error = Some(e);
                    break;
                }
            }
        }
        drop(links);
        match first {
            Some(((stage, rx), tx)) if spawn_error.is_none() => run_stage(&mut **stage, &rx, &tx),
            unused => drop(unused),
        }
        for handle in handles {
            join(handle);
        }
        let read = join(reader).map_err(HashError::io(path))?;
        match spawn_error {
            Some(e) => Err(HashError::thread(path)(e)),
            None => Ok(read),
        }
    })
}

/// The reader thread: fills buffers (new ones while fewer than `buffers` exist, then
/// those that come back on `recycle`) and sends them down the chain until the file ends.
fn read_chunks(
    file: &mut File,
    out: &SyncSender<Chunk>,
    recycle: &Receiver<Chunk>,
    buffers: usize,
) -> io::Result<u64> {
    let mut allocated = 0;
    let mut total = 0;
    loop {
        let mut buf = if allocated < buffers {
            allocated += 1;
            vec![0; CHUNK_SIZE]
        } else {
            match recycle.recv() {
                Ok((buf, _)) => buf,
                // A stage is gone (it panicked or never started): its caller reports it.
                Err(_) => return Ok(total),
            }
        };
        let n = fill(file, &mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        if out.send((buf, n)).is_err() || n < CHUNK_SIZE {
            return Ok(total);
        }
    }
}

/// A stage thread: feeds each chunk to `stage`, then passes it on.
fn run_stage(
    stage: &mut (dyn FnMut(&[u8]) + Send),
    input: &Receiver<Chunk>,
    next: &SyncSender<Chunk>,
) {
    for (buf, len) in input {
        stage(&buf[..len]);
        // Fails once the reader has finished (nothing more to recycle) or if a later stage
        // is gone; either way this stage still consumes all it is sent.
        let _ = next.send((buf, len));
    }
}

/// Joins a scoped thread, re-raising its panic (a bug, not bad input) on this thread.
fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// W&B's 1-based part number of the part at 0-based `index`. Part counts stay within
/// [`MULTIPART_MAX_PARTS`] for W&B's sizes; a larger count saturates rather than wraps.
fn part_number(index: u64) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Splits a byte stream into `part_size` parts and hashes each.
struct PartHasher {
    part_size: u64,
    hasher: md5::Md5,
    /// Offset of the current part's first byte.
    start: u64,
    /// Bytes of the current part hashed so far.
    filled: u64,
    parts: Vec<PartDigest>,
}

impl PartHasher {
    fn new(part_size: u64) -> PartHasher {
        PartHasher {
            part_size,
            hasher: md5::Md5::new(),
            start: 0,
            filled: 0,
            parts: Vec::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.part_size - self.filled;
            let take = usize::try_from(room).map_or(data.len(), |room| room.min(data.len()));
            self.hasher.update(&data[..take]);
            self.filled += take as u64;
            data = &data[take..];
            if self.filled == self.part_size {
                self.end_part();
            }
        }
    }

    fn end_part(&mut self) {
        let md5 = Md5(self.hasher.finalize_reset().into());
        self.parts.push(PartDigest {
            number: part_number(self.parts.len() as u64),
            offset: self.start,
            len: self.filled,
            md5,
        });
        self.start += self.filled;
        self.filled = 0;
    }

    fn finish(mut self) -> Vec<PartDigest> {
        if self.filled > 0 {
            self.end_part();
        }
        self.parts
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    /// Deterministic bytes that differ from chunk to chunk and part to part.
    fn pattern(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let mut file = File::create(&path).expect("create");
        file.write_all(bytes).expect("write");
        path
    }

    #[test]
    fn known_digests() {
        // RFC 1321's test suite, and W&B's digests of the s4 capture's files.
        let check = |input: &[u8], hex: &str| assert_eq!(Md5::of(input).to_hex(), hex);
        check(b"", "d41d8cd98f00b204e9800998ecf8427e");
        check(b"abc", "900150983cd24fb0d6963f7d28e17f72");
        check(
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        );
        let md5 = Md5::of(b"");
        assert_eq!(md5.to_base64(), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(Md5::from_base64("1B2M2Y8AsgTpgAmY7PhCfg=="), Some(md5));
        assert_eq!(Md5::from_hex("D41D8CD98F00B204E9800998ECF8427E"), Some(md5));
        assert_eq!(md5.to_string(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(Md5::from_base64("1B2M2Y8AsgTpgAmY7PhC"), None);
        assert_eq!(Md5::from_hex("d41d8cd98f00b204e9800998ecf8427"), None);
        assert_eq!(Md5::from_hex("g41d8cd98f00b204e9800998ecf8427e"), None);
    }

    #[test]
    fn files_of_every_size_hash_like_the_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = pattern(3 * CHUNK_SIZE + 12_345 + INLINE_MAX as usize);
        let sizes = [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            INLINE_MAX as usize,
            INLINE_MAX as usize + 1,
            data.len(),
        ];
        let paths: Vec<PathBuf> = sizes
            .iter()
            .map(|&len| write_file(dir.path(), &format!("f{len}"), &data[..len]))
            .collect();
        for (&len, path) in sizes.iter().zip(&paths) {
            let want = FileDigest {
                size: len as u64,
                md5: Md5::of(&data[..len]),
            };
            assert_eq!(md5_file(path).expect("md5_file"), want, "size {len}");
        }
        for threads in [0, 1, 2, 3, 64] {
            let got = hash_files(&paths, threads);
            assert_eq!(got.len(), paths.len());
            for (&len, result) in sizes.iter().zip(got) {
                let digest = result.expect("hash_files");
                assert_eq!(digest.size, len as u64);
                assert_eq!(digest.md5, Md5::of(&data[..len]), "threads {threads}");
            }
        }
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.bin");
        let err = md5_file(&missing).expect_err("missing file");
        assert_eq!(err.path(), missing);
        assert!(err.to_string().contains("missing.bin"), "{err}");
        let ok = write_file(dir.path(), "ok", b"abc");
        let results = hash_files(&[ok.clone(), missing.clone(), ok], 2);
        assert!(results[0].is_ok() && results[2].is_ok());
        assert_eq!(results[1].as_ref().expect_err("missing").path(), missing);
        // A directory opens but cannot be read: on the calling thread, and on the reader
        // thread of a pipeline.
        assert_eq!(
            md5_file(dir.path()).expect_err("a directory").path(),
            dir.path()
        );
        let err = md5_file_and_parts(dir.path(), 4096).expect_err("a directory");
        assert!(
            matches!(&err, HashError::Io { path, .. } if path == dir.path()),
            "{err}"
        );
        assert!(matches!(
            part_md5s(&missing, 0),
            Err(HashError::ZeroPartSize { .. })
        ));
    }

    #[test]
    fn parts_match_slices_of_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = pattern(5 * CHUNK_SIZE + 777);
        let path = write_file(dir.path(), "data", &data);
        // Parts smaller than, equal to and larger than a chunk, aligned or not.
        for part_size in [4096, 1_000_003, CHUNK_SIZE as u64, 2 * MIB + 5, 1 << 40] {
            let want: Vec<PartDigest> = data
                .chunks(usize::try_from(part_size).unwrap_or(usize::MAX))
                .enumerate()
                .map(|(i, part)| PartDigest {
                    number: u32::try_from(i + 1).expect("part number"),
                    offset: i as u64 * part_size,
                    len: part.len() as u64,
                    md5: Md5::of(part),
                })
                .collect();
            // Compared one by one: a whole list of parts is too long to read in a failure.
            let check = |got: Vec<PartDigest>, how: &str| {
                assert_eq!(got.len(), want.len(), "{how}, part size {part_size}");
                for (got, want) in got.iter().zip(&want) {
                    assert_eq!(got, want, "{how}, part size {part_size}");
                }
            };
            check(part_md5s(&path, part_size).expect("parts"), "part_md5s");
            let (whole, parts) = md5_file_and_parts(&path, part_size).expect("one pass");
            assert_eq!(whole.size, data.len() as u64);
            assert_eq!(whole.md5, Md5::of(&data));
            check(parts, "md5_file_and_parts");
        }
        let empty = write_file(dir.path(), "empty", b"");
        assert_eq!(part_md5s(&empty, 4096).expect("parts"), []);
        let (whole, parts) = md5_file_and_parts(&empty, 4096).expect("one pass");
        assert_eq!((whole.size, whole.md5, parts), (0, Md5::of(b""), vec![]));
    }

    #[test]
    fn part_sizes_follow_wandb() {
        assert_eq!(multipart_part_size(0), None);
        assert_eq!(multipart_part_size(10 * MIB), None);
        assert_eq!(multipart_part_size(2 * GIB - 1), None);
        assert_eq!(multipart_part_size(2 * GIB), Some(100 * MIB));
        // The s14 capture: 2 GiB + 5 MiB went as 21 parts.
        let s14 = 2_152_726_528;
        assert_eq!(multipart_part_size(s14), Some(100 * MIB));
        assert_eq!(s14.div_ceil(100 * MIB), 21);
        // 10,000 parts of 100 MiB still fit…
        let limit = 100 * MIB * 10_000;
        assert_eq!(multipart_part_size(limit - 1), Some(100 * MIB));
        assert_eq!(multipart_part_size(limit), Some(100 * MIB));
        // …one byte more needs larger parts, rounded up to 4 KiB.
        let part = multipart_part_size(limit + 1).expect("multipart");
        assert_eq!(part, 100 * MIB + 4096);
        assert!((limit + 1).div_ceil(part) <= 10_000);
        for size in [limit + 1, 3 << 40, (5 << 40) - 1, 5 << 40] {
            let part = multipart_part_size(size).expect("multipart");
            assert_eq!(part % 4096, 0);
            assert!(size.div_ceil(part) <= MULTIPART_MAX_PARTS, "size {size}");
            assert!(part >= size.div_ceil(MULTIPART_MAX_PARTS));
        }
        assert_eq!(multipart_part_size(5 << 40), Some(549_756_928));
    }
}
