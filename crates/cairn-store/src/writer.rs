//! Appending records to a `.wandb` log.
//!
//! Input: encoded records ([`LogWriter::push`] / [`LogWriter::append`]) or typed
//! [`Record`]s ([`LogWriter::append_record`]). Output: the log's bytes, written to a
//! [`LogSink`] (a file in production, a `Vec<u8>` or a fault-injecting sink in tests).
//!
//! **Durability.** W&B's writer keeps the last partial 32 KiB block in memory, so a killed
//! process loses up to 32 KiB of records. Here framed bytes wait in memory only between a
//! `push` and the next `commit`: [`LogWriter::append`] commits every record, and a
//! pipeline stage that drains a batch from its queue pushes them all and commits once
//! (group commit). A commit hands the bytes to the OS with `write`, so once `commit`
//! returns, a kill of the process loses nothing. Power loss is what [`SyncPolicy`]
//! covers:
//!
//! | policy | process killed | machine loses power |
//! |---|---|---|
//! | `Never` | nothing committed | whatever the OS had not written back (typically up to ~30 s) |
//! | `Interval(d)` | nothing committed | commits of the last `d`, plus any since a quiet writer's last sync |
//! | `EveryCommit` | nothing committed | nothing committed |
//!
//! `Interval` syncs inside `commit` once `d` has passed since the previous sync; a writer
//! that goes quiet should call [`LogWriter::sync_if_due`] on a timer.
//!
//! **Shutdown.** [`LogWriter::finish`] commits, syncs (unless the policy is `Never`) and
//! returns the sink. Dropping a writer commits what was pushed, best effort, and ignores
//! errors: call `finish` to see them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_proto::Record;
use prost::Message;

use crate::format::{BLOCK_SIZE, CHUNK_HEADER_LEN, ChunkType, FILE_HEADER, block_left};

/// Pushed bytes beyond this are handed to the OS without waiting for `commit`, which
/// bounds the writer's memory whatever the batch size.
const MAX_PENDING: usize = 1024 * 1024;

/// When the log is forced to stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Never `fsync`; the OS writes back in its own time.
    #[default]
    Never,
    /// `fsync` at the first commit at least this long after the previous sync.
    Interval(Duration),
    /// `fsync` at every commit.
    EveryCommit,
}

/// Where a [`LogWriter`] puts its bytes: a `Write` that can also be made durable.
pub trait LogSink: Write {
    /// Forces written bytes to stable storage (`fdatasync` for files).
    fn sync_data(&mut self) -> io::Result<()>;
}

impl LogSink for std::fs::File {
    fn sync_data(&mut self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }
}

impl LogSink for fs_err::File {
    fn sync_data(&mut self) -> io::Result<()> {
        fs_err::File::sync_data(self)
    }
}

impl LogSink for Vec<u8> {
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: LogSink + ?Sized> LogSink for &mut S {
    fn sync_data(&mut self) -> io::Result<()> {
        (**self).sync_data()
    }
}

/// Why a log could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Creating, writing or syncing the log failed.
    #[error("cannot write transaction log {}: {source}", display_path(.path))]
    Io {
        /// The log's path, when the writer knows it.
        path: Option<PathBuf>,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// An earlier write failed part-way, so the log's end is unknown; the writer refuses
    /// to append after it rather than risk a log that reads back wrong.
    #[error("transaction log {} is unusable after an earlier write error", display_path(.path))]
    Poisoned {
        /// The log's path, when the writer knows it.
        path: Option<PathBuf>,
    },
}

fn display_path(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "(unnamed)".to_owned(), |p| p.display().to_string())
}

/// Appends records to a `.wandb` log (see the module docs for durability).
#[derive(Debug)]
pub struct LogWriter<S: LogSink = fs_err::File> {
    /// Taken only by `finish`, which consumes the writer; `Some` everywhere else.
    sink: Option<S>,
    path: Option<PathBuf>,
    policy: SyncPolicy,
    /// Framed bytes not yet handed to the sink.
    pending: Vec<u8>,
    /// Absolute offset of the end of the log, pending bytes included.
    end: u64,
    /// Bytes handed to the sink since the last sync.
    unsynced: bool,
    last_sync: Instant,
    poisoned: bool,
}

impl LogWriter<fs_err::File> {
    /// Creates a new log at `path`; fails if the file exists (as W&B does, so two
    /// processes never write one log).
    pub fn create(path: impl AsRef<Path>, policy: SyncPolicy) -> Result<Self, WriteError> {
        let path = path.as_ref();
        let file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| WriteError::Io {
                path: Some(path.to_owned()),
                source,
            })?;
        let mut writer = Self::new(file, policy)?;
        writer.path = Some(path.to_owned());
        Ok(writer)
    }
}

impl<S: LogSink> LogWriter<S> {
    /// Starts a log in an empty sink: writes the file header and commits it.
    pub fn new(sink: S, policy: SyncPolicy) -> Result<Self, WriteError> {
        let mut writer = Self {
            sink: Some(sink),
            path: None,
            policy,
            pending: Vec::with_capacity(BLOCK_SIZE),
            end: FILE_HEADER.len() as u64,
            unsynced: false,
            last_sync: Instant::now(),
            poisoned: false,
        };
        writer.pending.extend_from_slice(&FILE_HEADER);
        writer.commit()?;
        Ok(writer)
    }

    /// Names the log in error messages (for sinks that are files opened elsewhere).
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Absolute offset where the next record will start (or its padding, if the block
    /// has fewer than 7 bytes left).
    pub fn end_offset(&self) -> u64 {
        self.end
    }

    /// The sink, for inspection.
    pub fn sink(&self) -> &S {
        self.sink.as_ref().expect("sink is present until finish")
    }

    fn sink_mut(&mut self) -> &mut S {
        self.sink.as_mut().expect("sink is present until finish")
    }

    /// Frames one encoded record into the pending buffer and returns the offset of its
    /// first chunk. Nothing reaches the OS until [`commit`](Self::commit), unless the
    /// buffer grows past 1 MiB.
    pub fn push(&mut self, payload: &[u8]) -> Result<u64, WriteError> {
        self.check_usable()?;
        let mut rest = payload;
        let mut first = true;
        let mut start = None;
        loop {
            let left = block_left(self.end);
            if left < CHUNK_HEADER_LEN {
                // Too small for a chunk header: zero-fill to the next block.
                self.pending.resize(self.pending.len() + left, 0);
                self.end += left as u64;
                continue;
            }
            start.get_or_insert(self.end);
            let take = rest.len().min(left - CHUNK_HEADER_LEN);
            let (piece, tail) = rest.split_at(take);
            let ty = ChunkType::for_piece(first, tail.is_empty()) as u8;
            // `take` is below BLOCK_SIZE, so it fits the u16 length field.
            let len = take as u16;
            // Header with a checksum placeholder, then the payload; the checksum covers
            // the type byte and the payload, which are contiguous.
            let header_at = self.pending.len();
            self.pending.extend_from_slice(&[0; 4]);
            self.pending.extend_from_slice(&len.to_le_bytes());
            self.pending.push(ty);
            self.pending.extend_from_slice(piece);
            let crc = crc32fast::hash(&self.pending[header_at + CHUNK_HEADER_LEN - 1..]);
            self.pending[header_at..header_at + 4].copy_from_slice(&crc.to_le_bytes());
            self.end += (CHUNK_HEADER_LEN + take) as u64;
            rest = tail;
            first = false;
            if rest.is_empty() {
                break;
            }
        }
        if self.pending.len() >= MAX_PENDING {
            self.write_pending()?;
        }
        Ok(start.unwrap_or(self.end))
    }

    /// Hands every pushed byte to the OS, then syncs as the policy says.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        self.check_usable()?;
        self.write_pending()?;
        match self.policy {
            SyncPolicy::Never => Ok(()),
            SyncPolicy::EveryCommit => self.sync(),
            SyncPolicy::Interval(_) => self.sync_if_due(),
        }
    }

    /// Pushes one encoded record and commits it; returns the offset of its first chunk.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, WriteError> {
        let offset = self.push(payload)?;
        self.commit()?;
        Ok(offset)
    }

    /// Encodes and appends one record; returns the offset of its first chunk.
    pub fn append_record(&mut self, record: &Record) -> Result<u64, WriteError> {
        self.append(&record.encode_to_vec())
    }

    /// Forces everything handed to the OS onto stable storage.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        self.check_usable()?;
        if self.unsynced {
            let sink = self.sink_mut();
            let result = sink.flush().and_then(|()| sink.sync_data());
            result.map_err(|source| self.io_error(source))?;
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs if the policy is `Interval(d)` and `d` has passed since the last sync.
    pub fn sync_if_due(&mut self) -> Result<(), WriteError> {
        match self.policy {
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync(),
            _ => Ok(()),
        }
    }

    /// Commits, syncs unless the policy is `Never`, and returns the sink.
    pub fn finish(mut self) -> Result<S, WriteError> {
        self.commit()?;
        if self.policy != SyncPolicy::Never {
            self.sync()?;
        }
        // Nothing is pending any more, so Drop has nothing left to write.
        Ok(self.sink.take().expect("sink is present until finish"))
    }

    fn write_pending(&mut self) -> Result<(), WriteError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        if let Err(source) = sink.write_all(&self.pending) {
            // Part of the buffer may be on disk: the log's end is now unknown.
            self.poisoned = true;
            return Err(self.io_error(source));
        }
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    fn check_usable(&self) -> Result<(), WriteError> {
        if self.poisoned {
            return Err(WriteError::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    fn io_error(&self, source: io::Error) -> WriteError {
        WriteError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl<S: LogSink> Drop for LogWriter<S> {
    fn drop(&mut self) {
        if !self.poisoned {
            // Best effort: `finish` is the way to see errors.
            let _ = self.write_pending();
        }
    }
}

#[cfg(test)]
mod tests;
