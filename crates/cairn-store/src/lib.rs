//! The `.wandb` transaction log: W&B's on-disk record log, read and written by cairn.
//!
//! Every run keeps a log of the records that make it up (header, run, history, summary,
//! console output, exit, ...). The format is W&B's, byte for byte, so logs move freely
//! between cairn and `wandb` in both directions:
//!
//! ```text
//! offset 0   ":W&B" E1 BE 00             file header (magic, 0xBEE1 LE, version 0)
//!            chunk, chunk, ...           LevelDB-log chunks in 32 KiB blocks
//! chunk      crc32 u32 LE | len u16 LE | type u8 | len payload bytes
//! ```
//!
//! * Blocks are 32768 bytes at absolute file offsets; block 0 starts with the file header.
//!   A chunk never crosses a block boundary; fewer than 7 bytes left in a block are zero
//!   padding, and with exactly 7 left a record starts with an empty `FIRST` chunk.
//! * A record (one encoded `wandb_internal.Record`) is one `FULL` chunk or a `FIRST`,
//!   any number of `MIDDLE`, and a `LAST` chunk.
//! * The checksum is plain CRC-32 (IEEE, as zlib) over the type byte and the payload,
//!   with no LevelDB masking.
//! * The file is not padded at the end: it ends right after the last chunk.
//!
//! [`LogWriter`] appends records and hands each commit to the OS at once (W&B keeps the
//! last partial block in memory), with a [`SyncPolicy`] for `fsync`. [`LogReader`]
//! reads records back, telling a torn tail (normal after a crash) from corruption, and
//! recovers every intact record around damage, which it reports with byte offsets.
//!
//! This crate uses `std::io` only: no async runtime, no network.

#![warn(missing_docs)]

mod format;
mod reader;
mod writer;

pub use format::{BLOCK_SIZE, CHUNK_HEADER_LEN, ChunkType, FILE_HEADER, FILE_HEADER_LEN};
pub use reader::{Damage, DamageKind, LogReader, OpenError, ReadError, RecordRef, Records};
pub use writer::{LogSink, LogWriter, SyncPolicy, WriteError};
