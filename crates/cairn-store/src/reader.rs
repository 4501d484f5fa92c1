//! Reading records back from a `.wandb` log, and recovering what damage left intact.
//!
//! Input: any `Read` positioned at the start of a log (usually a file). Output: records in
//! file order as [`RecordRef`]s (the payload and the offset of its first chunk), and a
//! [`Damage`] for every place the log could not be read, in the same stream, at the
//! position where it happened.
//!
//! What the reader promises, whatever the bytes:
//!
//! * It never panics and never returns a record whose checksums did not match.
//! * A **torn tail** (the file ends inside a chunk or inside a multi-chunk record, as after
//!   a crash) ends the stream with [`DamageKind::TornTail`]; every record before it is
//!   returned.
//! * **Corruption** (bad checksum, impossible length or type, zeroed chunk header) costs
//!   the rest of that block, and the one record in progress if it started earlier: the
//!   reader reports it and resumes at the next block, where it skips the continuation
//!   pieces of the lost record and goes on with the next whole one.
//! * A damaged **file header** is reported and reading goes on, as long as the file still
//!   looks like a W&B log (at most one of the six magic bytes differs); otherwise opening
//!   fails with [`OpenError::NotALog`].
//!
//! Reads go through a buffer of whole blocks, and a record held in a single chunk is
//! returned as a slice of that buffer, so reading makes no copy and no allocation per
//! record. The reader owns nothing but its source and buffers: dropping it is shutdown.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use cairn_proto::Record;
use prost::Message;

use crate::format::{
    BLOCK_SIZE, CHUNK_HEADER_LEN, ChunkType, FILE_HEADER, FILE_HEADER_LEN, STORE_VERSION,
    block_left,
};

/// Blocks read from the source at a time.
const READ_BLOCKS: usize = 4;

/// Why a log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", display_path(.path))]
    Io {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// The file does not start with W&B's log header.
    #[error("{} is not a W&B transaction log (no `:W&B` header)", display_path(.path))]
    NotALog {
        /// The file, when known.
        path: Option<PathBuf>,
    },
}

/// A problem met while reading records.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Part of the log is damaged; reading goes on after it.
    #[error("{}: {damage}", display_path(.path))]
    Damaged {
        /// The file, when known.
        path: Option<PathBuf>,
        /// Where and what.
        damage: Damage,
    },
    /// Reading the source failed; the stream ends here.
    #[error("cannot read {}: {source}", display_path(.path))]
    Io {
        /// The file, when known.
        path: Option<PathBuf>,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// A record's bytes are intact but are not a `wandb_internal.Record`.
    #[error("{}: record at byte {offset} does not decode: {source}", display_path(.path))]
    Decode {
        /// The file, when known.
        path: Option<PathBuf>,
        /// Offset of the record's first chunk.
        offset: u64,
        /// What the protobuf decoder reported.
        #[source]
        source: prost::DecodeError,
    },
}

impl ReadError {
    /// The damage, if this error is one.
    pub fn damage(&self) -> Option<&Damage> {
        match self {
            Self::Damaged { damage, .. } => Some(damage),
            _ => None,
        }
    }
}

fn display_path(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "transaction log".to_owned(), |p| p.display().to_string())
}

/// One place where a log could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Absolute byte offset of the problem (the chunk, or the record it belonged to).
    pub offset: u64,
    /// What was wrong.
    pub kind: DamageKind,
    /// Where reading resumed, if it did (the next block for corruption).
    pub resumed_at: Option<u64>,
}

/// What was wrong at a [`Damage`] offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// The file ends inside a chunk or inside a record: normal after a crash.
    TornTail,
    /// A chunk's checksum does not match its bytes.
    Checksum,
    /// A chunk's length runs past the end of its block.
    Overrun {
        /// The length the chunk header claims.
        len: u16,
    },
    /// A chunk type byte no writer produces.
    BadType {
        /// The byte found.
        byte: u8,
    },
    /// A chunk header of all zeros where a record should start (preallocated or
    /// zero-filled space).
    Zeroed,
    /// A middle or last piece with no record in progress.
    Orphan,
    /// A record that was started but never finished before a new one began.
    Unfinished,
    /// The file header's magic bytes differ from W&B's in one place.
    Header,
    /// The file header names a store version other than 0 (read as version 0).
    Version {
        /// The version byte found.
        version: u8,
    },
}

impl Damage {
    /// Whether this is a torn tail rather than corruption.
    pub fn is_torn_tail(&self) -> bool {
        self.kind == DamageKind::TornTail
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match self.kind {
            DamageKind::TornTail => {
                write!(f, "torn tail at byte {at}: the log ends inside a record")?
            }
            DamageKind::Checksum => write!(f, "checksum mismatch in chunk at byte {at}")?,
            DamageKind::Overrun { len } => write!(
                f,
                "chunk at byte {at} claims {len} bytes, past the end of its block"
            )?,
            DamageKind::BadType { byte } => {
                write!(f, "chunk at byte {at} has unknown type {byte}")?
            }
            DamageKind::Zeroed => write!(f, "zeroed chunk header at byte {at}")?,
            DamageKind::Orphan => write!(
                f,
                "chunk at byte {at} continues a record that never started"
            )?,
            DamageKind::Unfinished => write!(
                f,
                "record at byte {at} is unfinished: a new record starts before its end"
            )?,
            DamageKind::Header => write!(f, "damaged file header")?,
            DamageKind::Version { version } => write!(
                f,
                "unknown store version {version} in the header (read as version 0)"
            )?,
        }
        if let Some(resumed) = self.resumed_at {
            write!(f, "; resumed at byte {resumed}")?;
        }
        Ok(())
    }
}

/// A record read from a log: its encoded `Record` and where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Absolute offset of the record's first chunk header.
    pub offset: u64,
    /// The record's payload (an encoded `wandb_internal.Record`).
    pub payload: &'a [u8],
}

impl RecordRef<'_> {
    /// Decodes the payload.
    pub fn decode(&self) -> Result<Record, prost::DecodeError> {
        Record::decode(self.payload)
    }
}

/// Reads records from a `.wandb` log (see the module docs for what it recovers).
#[derive(Debug)]
pub struct LogReader<R> {
    src: R,
    path: Option<PathBuf>,
    /// Holds bytes `[buf_start, buf_start + buf_len)` of the file: always whole blocks but
    /// at the end of the file. Allocated once; never shrinks or grows.
    buf: Box<[u8]>,
    buf_len: usize,
    buf_start: u64,
    /// The source returned end-of-file.
    eof: bool,
    /// Absolute offset of the next chunk to look at.
    pos: u64,
    /// Pieces of a multi-chunk record gathered so far, and the offset it started at.
    partial: Vec<u8>,
    partial_start: Option<u64>,
    /// Skip orphan pieces silently: they belong to a record already reported lost.
    resyncing: bool,
    /// Damage found while opening, reported before the first record.
    header_damage: Vec<Damage>,
    done: bool,
}

impl LogReader<fs_err::File> {
    /// Opens the log at `path` and checks its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let file = fs_err::File::open(path).map_err(|source| OpenError::Io {
            path: Some(path.to_owned()),
            source,
        })?;
        Self::start(file, Some(path.to_owned()))
    }
}

impl<R: Read> LogReader<R> {
    /// Starts reading a log from `src` and checks its header.
    pub fn new(src: R) -> Result<Self, OpenError> {
        Self::start(src, None)
    }

    fn start(src: R, path: Option<PathBuf>) -> Result<Self, OpenError> {
        let mut reader = Self {
            src,
            path,
            buf: vec![0; READ_BLOCKS * BLOCK_SIZE].into_boxed_slice(),
            buf_len: 0,
            buf_start: 0,
            eof: false,
            pos: FILE_HEADER_LEN as u64,
            partial: Vec::new(),
            partial_start: None,
            resyncing: false,
            header_damage: Vec::new(),
            done: false,
        };
        reader.fill().map_err(|source| OpenError::Io {
            path: reader.path.clone(),
            source,
        })?;
        reader.check_header()?;
        Ok(reader)
    }

    fn check_header(&mut self) -> Result<(), OpenError> {
        let n = self.buf_len.min(FILE_HEADER_LEN);
        let found = &self.buf[..n];
        if n < FILE_HEADER_LEN {
            // A log cut inside its header: a torn tail if what is there matches.
            if found.is_empty() || found != &FILE_HEADER[..n] {
                return Err(OpenError::NotALog {
                    path: self.path.clone(),
                });
            }
            self.header_damage.push(Damage {
                offset: 0,
                kind: DamageKind::TornTail,
                resumed_at: None,
            });
            return Ok(());
        }
        let magic = FILE_HEADER_LEN - 1;
        let differing = (0..magic).filter(|&i| found[i] != FILE_HEADER[i]).count();
        match differing {
            0 => {}
            1 => self.header_damage.push(Damage {
                offset: (0..magic)
                    .find(|&i| found[i] != FILE_HEADER[i])
                    .unwrap_or(0) as u64,
                kind: DamageKind::Header,
                resumed_at: Some(FILE_HEADER_LEN as u64),
            }),
            _ => {
                return Err(OpenError::NotALog {
                    path: self.path.clone(),
                });
            }
        }
        let version = found[magic];
        if version != STORE_VERSION {
            self.header_damage.push(Damage {
                offset: magic as u64,
                kind: DamageKind::Version { version },
                resumed_at: Some(FILE_HEADER_LEN as u64),
            });
        }
        Ok(())
    }

    /// Names the log in error messages (for sources opened elsewhere).
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Absolute offset of the next chunk the reader will look at.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Typed records: decodes each payload as a `wandb_internal.Record`.
    pub fn records(self) -> Records<R> {
        Records { inner: self }
    }

    /// Replaces the buffer's contents with the next whole blocks of the source.
    fn fill(&mut self) -> io::Result<()> {
        self.buf_start += self.buf_len as u64;
        self.buf_len = 0;
        while self.buf_len < self.buf.len() {
            match self.src.read(&mut self.buf[self.buf_len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.buf_len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next record, or the next problem, in file order; `None` at the end.
    #[allow(
        clippy::should_implement_trait,
        reason = "a lending iterator: items borrow the reader"
    )]
    pub fn next(&mut self) -> Option<Result<RecordRef<'_>, ReadError>> {
        if !self.header_damage.is_empty() {
            let damage = self.header_damage.remove(0);
            if damage.is_torn_tail() {
                self.done = true;
            }
            return Some(Err(self.damaged(damage)));
        }
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Step::Full(offset, start, len)) => Some(Ok(RecordRef {
                offset,
                payload: &self.buf[start..start + len],
            })),
            Ok(Step::Assembled(offset)) => Some(Ok(RecordRef {
                offset,
                payload: &self.partial,
            })),
            Ok(Step::Damage(damage)) => {
                if damage.is_torn_tail() {
                    self.done = true;
                }
                Some(Err(self.damaged(damage)))
            }
            Ok(Step::End) => {
                self.done = true;
                None
            }
            Err(source) => {
                self.done = true;
                Some(Err(ReadError::Io {
                    path: self.path.clone(),
                    source,
                }))
            }
        }
    }

    fn damaged(&self, damage: Damage) -> ReadError {
        ReadError::Damaged {
            path: self.path.clone(),
            damage,
        }
    }

    /// Drops the record in progress and moves to the next block; returns the damage.
    fn skip_block(&mut self, offset: u64, kind: DamageKind) -> Step {
        let next_block = self.pos + block_left(self.pos) as u64;
        // Once the source has ended, the buffer ends where the file does: if that is inside
        // this block, reading resumes (and stops) at the end of the file, not at a block
        // that does not exist.
        let resumed_at = if self.eof {
            next_block.min(self.buf_start + self.buf_len as u64)
        } else {
            next_block
        };
        // The record in progress is lost with this block: report from where it started.
        let offset = self.partial_start.take().unwrap_or(offset);
        self.partial.clear();
        self.pos = next_block;
        self.resyncing = true;
        Step::Damage(Damage {
            offset,
            kind,
            resumed_at: Some(resumed_at),
        })
    }

    fn torn_tail(&mut self) -> Step {
        let offset = self.partial_start.take().unwrap_or(self.pos);
        self.partial.clear();
        Step::Damage(Damage {
            offset,
            kind: DamageKind::TornTail,
            resumed_at: None,
        })
    }

    fn step(&mut self) -> io::Result<Step> {
        loop {
            let left = block_left(self.pos);
            if left < CHUNK_HEADER_LEN {
                // Block padding (zeros from the writer; contents are not checked).
                self.pos += left as u64;
                continue;
            }
            let buf_end = self.buf_start + self.buf_len as u64;
            if self.pos >= buf_end {
                if self.eof {
                    // A short final block may end in padding past the end of the file.
                    return Ok(if self.partial_start.is_some() {
                        self.torn_tail()
                    } else {
                        Step::End
                    });
                }
                // `pos` is at a block boundary here: the buffer holds whole blocks.
                self.fill()?;
                continue;
            }
            let at = (self.pos - self.buf_start) as usize;
            let avail = self.buf_len - at;
            if avail < CHUNK_HEADER_LEN {
                // Only the final, short block can end mid-header.
                return Ok(self.torn_tail());
            }
            let header = &self.buf[at..at + CHUNK_HEADER_LEN];
            let crc = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let len = u16::from_le_bytes([header[4], header[5]]);
            let ty_byte = header[6];
            let chunk_at = self.pos;
            if crc == 0 && len == 0 && ty_byte == 0 {
                return Ok(self.skip_block(chunk_at, DamageKind::Zeroed));
            }
            let Some(ty) = ChunkType::from_byte(ty_byte) else {
                return Ok(self.skip_block(chunk_at, DamageKind::BadType { byte: ty_byte }));
            };
            if CHUNK_HEADER_LEN + len as usize > left {
                return Ok(self.skip_block(chunk_at, DamageKind::Overrun { len }));
            }
            if avail < CHUNK_HEADER_LEN + len as usize {
                return Ok(self.torn_tail());
            }
            let start = at + CHUNK_HEADER_LEN;
            let payload = &self.buf[start..start + len as usize];
            // The type byte sits right before the payload: one contiguous checksum.
            if crc32fast::hash(&self.buf[at + CHUNK_HEADER_LEN - 1..start + len as usize]) != crc {
                return Ok(self.skip_block(chunk_at, DamageKind::Checksum));
            }
            match ty {
                ChunkType::Full | ChunkType::First => {
                    if let Some(unfinished) = self.partial_start.take() {
                        // Report the lost record; this chunk is read again next time.
                        self.partial.clear();
                        return Ok(Step::Damage(Damage {
                            offset: unfinished,
                            kind: DamageKind::Unfinished,
                            resumed_at: Some(chunk_at),
                        }));
                    }
                    self.resyncing = false;
                    self.pos += (CHUNK_HEADER_LEN + len as usize) as u64;
                    if ty == ChunkType::Full {
                        return Ok(Step::Full(chunk_at, start, len as usize));
                    }
                    self.partial.clear();
                    self.partial.extend_from_slice(payload);
                    self.partial_start = Some(chunk_at);
                }
                ChunkType::Middle | ChunkType::Last => {
                    self.pos += (CHUNK_HEADER_LEN + len as usize) as u64;
                    let Some(record_at) = self.partial_start else {
                        if self.resyncing {
                            continue;
                        }
                        self.resyncing = true;
                        return Ok(Step::Damage(Damage {
                            offset: chunk_at,
                            kind: DamageKind::Orphan,
                            resumed_at: Some(self.pos),
                        }));
                    };
                    self.partial.extend_from_slice(payload);
                    if ty == ChunkType::Last {
                        self.partial_start = None;
                        return Ok(Step::Assembled(record_at));
                    }
                }
            }
        }
    }
}

impl<R: Read + Seek> LogReader<R> {
    /// Continues reading at `offset`, which must be where a record starts (a
    /// [`RecordRef::offset`] seen before, or [`LogReader::position`] after a record): a
    /// follower of a log that is still being written reads what was added since its last
    /// pass, and a reader that met the end of the file before the writer's last commit
    /// tries again from the same place. The header's damage, if any, was reported by the
    /// first pass and is not reported again.
    pub fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        let offset = offset.max(FILE_HEADER_LEN as u64);
        let block_start = offset - offset % BLOCK_SIZE as u64;
        self.src.seek(SeekFrom::Start(block_start))?;
        self.buf_start = block_start;
        self.buf_len = 0;
        self.eof = false;
        self.pos = offset;
        self.partial.clear();
        self.partial_start = None;
        self.resyncing = false;
        self.header_damage.clear();
        self.done = false;
        self.fill()
    }
}

/// What one step of the reader found.
enum Step {
    /// A single-chunk record: its offset and where its payload sits in the buffer.
    Full(u64, usize, usize),
    /// A multi-chunk record, now in `partial`; its offset.
    Assembled(u64),
    Damage(Damage),
    End,
}

/// Typed records from a [`LogReader`]: `(offset, Record)` or the problem met.
#[derive(Debug)]
pub struct Records<R> {
    inner: LogReader<R>,
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<(u64, Record), ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (offset, decoded) = match self.inner.next()? {
            Ok(rec) => (rec.offset, rec.decode()),
            Err(e) => return Some(Err(e)),
        };
        Some(
            decoded
                .map(|r| (offset, r))
                .map_err(|source| ReadError::Decode {
                    path: self.inner.path.clone(),
                    offset,
                    source,
                }),
        )
    }
}

#[cfg(test)]
mod tests;
