//! Console capture: the user's stdout and stderr become `output_raw` records and `output.log`.
//!
//! Two layers, kept apart so the logic can be tested without touching file descriptors:
//!
//! * [`ConsoleModel`] (pure, no IO): fed `(Stream, bytes)` chunks, it returns the W&B-style
//!   `output_raw` [`Piece`]s of each chunk and maintains the collapsed `output.log` view, the
//!   console "as a terminal would show it" (`\r` rewrites, W&B's cursor-up/down escapes). Final
//!   lines are taken out incrementally with [`ConsoleModel::take_completed_lines`]; at most
//!   [`MUTABLE_LINES`] lines of at most [`MAX_LINE_CHARS`] characters stay inside, so memory is
//!   bounded whatever the program prints. The rules, and how they match W&B 0.31's fixtures, are
//!   in the [`model`] module docs.
//! * [`ConsoleCapture`] (Unix only): redirects the process's real fd 1 and fd 2 into pipes,
//!   passes every byte through to the original descriptors (the user still sees the output) and
//!   hands each chunk, with its arrival time, to a sink. See the [`capture`] module docs for
//!   threads, ordering and shutdown.
//!
//! The intended wiring (the SDK's job): the capture sink hands each chunk and its time to the
//! run's pipeline without blocking; there a `ConsoleModel` cuts it into pieces, each piece
//! becomes an [`OutputRawRecord`] ([`Piece::to_record`]), and the
//! completed lines are appended to `files/output.log`. Running the model inside the sink works
//! too (`examples/console_overhead.rs` measures both) but puts it on the program's path when
//! output is heavy.
//!
//! Shutdown: the model has no resources (`ConsoleModel::finish` returns the last lines); the
//! capture restores the descriptors and joins its threads in `ConsoleCapture::stop` or on drop.

#[cfg(unix)]
pub mod capture;
pub mod model;
pub mod pieces;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::SystemTime;

use cairn_proto::OutputRawRecord;
use cairn_proto::output_raw_record::OutputType;

#[cfg(unix)]
pub use capture::{ConsoleCapture, ConsoleError};
pub use model::{ConsoleLine, ConsoleModel, MAX_LINE_CHARS, MUTABLE_LINES};
pub use pieces::{MAX_PIECE_BYTES, split_pieces};

/// Which standard stream a chunk of console output was written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

impl Stream {
    /// Both streams, stdout first.
    pub const ALL: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    /// The `output_type` W&B stores in `output_raw` records (`STDERR = 0`, `STDOUT = 1`).
    pub fn output_type(self) -> OutputType {
        match self {
            Stream::Stdout => OutputType::Stdout,
            Stream::Stderr => OutputType::Stderr,
        }
    }

    /// The stream of a record's `output_type`; unknown values count as stdout, the way W&B's
    /// terminal emulator only special-cases stderr.
    pub fn from_output_type(output_type: i32) -> Stream {
        if output_type == OutputType::Stderr as i32 {
            Stream::Stderr
        } else {
            Stream::Stdout
        }
    }

    /// `"stdout"` or `"stderr"`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `output_raw` record's worth of console text: a run of text without line breaks, or
/// exactly one `"\n"` or `"\r"` (see [`split_pieces`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The stream the text was written to.
    pub stream: Stream,
    /// The text, valid UTF-8 (invalid input bytes became U+FFFD).
    pub text: String,
}

impl Piece {
    /// The `output_raw` record W&B writes for this piece, stamped with the chunk's arrival time.
    pub fn to_record(&self, timestamp: SystemTime) -> OutputRawRecord {
        OutputRawRecord {
            output_type: self.stream.output_type() as i32,
            timestamp: Some(timestamp.into()),
            line: self.text.clone(),
            info: None,
        }
    }
}
