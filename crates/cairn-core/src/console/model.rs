//! The console as a terminal shows it: W&B's terminal emulator, producing `output.log`.
//!
//! Input: console text per [`Stream`], either raw byte chunks ([`ConsoleModel::push`], which
//! also returns the chunk's `output_raw` pieces) or the text of recorded pieces
//! ([`ConsoleModel::write`], e.g. when rebuilding `output.log` from a `.wandb` log).
//! Output: the lines of `output.log`, taken out as soon as they can no longer change
//! ([`ConsoleModel::take_completed_lines`]), the rest at [`ConsoleModel::finish`].
//!
//! # Rules (those of wandb-core's `terminalemulator` + `runconsolelogs`, v0.31)
//!
//! * Each stream has its own cursor (column, row in a [`MUTABLE_LINES`]-row view); both streams
//!   share one list of lines, numbered in the order they are first written to. So interleaved
//!   stdout and stderr lines appear in `output.log` in the order they started.
//! * `\n` moves the cursor to column 0 of the next row (an implicit carriage return). `\r` moves
//!   it to column 0 of the same row: the next text overwrites from there, character by
//!   character, and a shorter overwrite leaves the tail of the longer text, as a terminal does
//!   (`"abcdef\rXY\n"` gives `XYcdef`). So a `\r` progress bar collapses to its final state and
//!   `"\r\n"` is a plain line end.
//! * A line exists once a character is written on it; rows skipped by `\n` are created empty
//!   when a later character lands below them. A trailing `\n` therefore adds no empty last line,
//!   and the file never ends in a partial line (every line is written with `\n`).
//! * A line shows its text as it was when a write last changed one of its characters: a space
//!   written past the end changes nothing (the cell was blank), so `print("a  ")` gives `a`,
//!   while `"x" " " "y"` gives `x y` and `"abc\rab "` gives `ab ` (the space replaced `c`).
//!   W&B's emulator copies a line out only when a character changes, to the same effect.
//! * `ESC [ A` and `ESC [ B` move the cursor up and down one row (tqdm's nested bars). Every other
//!   escape sequence, ANSI colours included, is kept verbatim in the line (W&B does the same, and
//!   its UI renders the colours), as are other control characters (`\t`, `\b`, ...).
//!   Deliberate differences: a `\r` or `\n` inside an unfinished escape sequence still acts as
//!   a line break (W&B would store it inside the line and break `output.log`'s line structure),
//!   and an `ESC` inside one starts a new sequence (W&B prints it as a character).
//! * A line holds at most [`MAX_LINE_CHARS`] characters (W&B's `maxTerminalLineLength`); text
//!   beyond that column is dropped, so a 10 MB line without a newline costs 4096 characters.
//! * Only the last [`MUTABLE_LINES`] lines (W&B's `maxTerminalLines`) can still change; older
//!   lines are final. A line is also final once it scrolled out of its stream's view. Final
//!   lines leave the model through [`ConsoleModel::take_completed_lines`].
//! * Streams are not marked in `output.log`: W&B's fixtures (`rich`, `failed`) show stderr lines
//!   without any prefix. The `ERROR <timestamp>` prefix of stderr lines belongs to the
//!   filestream format only; [`ConsoleLine::stream`] keeps what a filestream writer needs for it.
//! * The writer appends each line with a `\n` and creates `output.log` with its first line: a
//!   W&B run that printed nothing has no `output.log` (the `basic` fixture).
//!
//! The tests rebuild the `output.log` of W&B's `rich`, `stats`, `unicode` and `failed` fixtures
//! byte for byte from their `output_raw` records, and compare the model with a literal
//! character-at-a-time transcription of W&B's Go code on random input.
//!
//! Memory: at most [`MUTABLE_LINES`] × [`MAX_LINE_CHARS`] characters, plus completed lines not
//! yet taken, plus up to 3 bytes of a character split between chunks per stream. No shutdown:
//! [`ConsoleModel::finish`] consumes the model.

use std::collections::VecDeque;

use super::pieces::{Utf8Decoder, split_pieces};
use super::{Piece, Stream};

/// Lines that can still change (W&B's `maxTerminalLines`), which is also each stream's view
/// height for cursor movement.
pub const MUTABLE_LINES: usize = 32;

/// Longest line in `output.log`, in characters (W&B's `maxTerminalLineLength`).
pub const MAX_LINE_CHARS: usize = 4096;

const ESC: char = '\x1b';

/// A final line of `output.log`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleLine {
    /// The stream whose output created the line.
    pub stream: Stream,
    /// The line as displayed, without a line break.
    pub text: String,
}

/// A line that may still change.
#[derive(Debug)]
struct Line {
    stream: Stream,
    text: String,
    /// Characters in `text` (equal to `text.len()` for ASCII, the common case).
    chars: usize,
    /// Characters of `text` the line shows: its length when a write last changed a
    /// character. Spaces written past the end change nothing, so `print("a  ")` shows `a`
    /// until something is written after them (W&B's rule; see the module doc).
    shown: usize,
    /// False once the line scrolled out of its stream's view: nothing can reach it any more.
    in_view: bool,
}

impl Line {
    fn new(stream: Stream) -> Line {
        Line {
            stream,
            text: String::new(),
            chars: 0,
            shown: 0,
            in_view: true,
        }
    }

    /// Writes `run` (`run_chars` characters, no control characters) from `column` on, the way
    /// a terminal does: overwriting what is there, padding with spaces if the cursor is past the
    /// end, and dropping what falls beyond [`MAX_LINE_CHARS`].
    fn put_str(&mut self, column: usize, run: &str, run_chars: usize) {
        let Some(room) = MAX_LINE_CHARS.checked_sub(column).filter(|room| *room > 0) else {
            return;
        };
        let (run, run_chars) = if run_chars <= room {
            (run, run_chars)
        } else {
            (&run[..byte_offset(run, run_chars, room)], room)
        };
        let before = self.chars;
        if column >= self.chars {
            // Appending (the usual case), after padding if the cursor moved past the end.
            // Only a character other than a space changes an appended cell.
            if let Some(last) = run.rfind(|c| c != ' ') {
                let last_column = column + run[..last].chars().count();
                self.shown = last_column + 1;
            }
            self.text
                .extend(std::iter::repeat_n(' ', column - self.chars));
            self.text.push_str(run);
            self.chars = column + run_chars;
        } else {
            let start = byte_offset(&self.text, self.chars, column);
            let end_column = column + run_chars;
            // The last character that changes a cell: over the old text, any that differs;
            // past its end, any but a space.
            let old = self.text[start..]
                .chars()
                .map(Some)
                .chain(std::iter::repeat(None));
            let changed = run
                .chars()
                .zip(old)
                .enumerate()
                .filter(|(_, (new, old))| match old {
                    Some(old) => new != old,
                    None => *new != ' ',
                })
                .map(|(i, _)| column + i)
                .last();
            if let Some(last) = changed {
                self.shown = before.max(last + 1);
            }
            let end = if end_column >= self.chars {
                self.text.len()
            } else {
                let tail = &self.text[start..];
                start + byte_offset(tail, self.chars - column, run_chars)
            };
            self.text.replace_range(start..end, run);
            self.chars = self.chars.max(end_column);
        }
    }

    /// The text the line shows (see `shown`).
    fn shown_text(&self) -> &str {
        &self.text[..byte_offset(&self.text, self.chars, self.shown)]
    }

    fn into_console_line(mut self) -> ConsoleLine {
        self.text.truncate(self.shown_text().len());
        ConsoleLine {
            stream: self.stream,
            text: self.text,
        }
    }
}

/// Byte offset of character number `index` in `text`, which has `chars` characters.
fn byte_offset(text: &str, chars: usize, index: usize) -> usize {
    if text.len() == chars {
        index // ASCII
    } else {
        text.char_indices()
            .nth(index)
            .map_or(text.len(), |(i, _)| i)
    }
}

/// Where an escape sequence stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// Seen `ESC`.
    Esc,
    /// Seen `ESC [`.
    Csi,
}

/// One stream's cursor and view.
#[derive(Debug, Default)]
struct Cursor {
    /// Line numbers shown in this stream's view, top first; at most [`MUTABLE_LINES`].
    view: VecDeque<u64>,
    /// Row of the cursor in `view` (may point past `view`'s end: rows are created lazily).
    row: usize,
    /// Column of the cursor, in characters (may exceed [`MAX_LINE_CHARS`]).
    column: usize,
    escape: Escape,
    decoder: Utf8Decoder,
}

/// W&B's console model: splits chunks into `output_raw` pieces and keeps the `output.log` view.
///
/// ```
/// use cairn_core::console::{ConsoleModel, Stream};
/// let mut model = ConsoleModel::new();
/// let pieces = model.push(Stream::Stdout, b"progress 1\rprogress 2\r\n");
/// assert_eq!(pieces.len(), 5);
/// assert_eq!(model.finish(), ["progress 2"]);
/// ```
#[derive(Debug, Default)]
pub struct ConsoleModel {
    cursors: [Cursor; 2],
    /// Number of `lines[0]`; lines before it are final.
    first_line: u64,
    /// The last lines (at most [`MUTABLE_LINES`]); the front ones may already be final.
    lines: VecDeque<Line>,
    /// Final lines waiting for `take_completed`.
    completed: Vec<ConsoleLine>,
}

impl ConsoleModel {
    /// An empty console.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk of raw output: decodes it (lossy UTF-8; a character split between chunks of
    /// the same stream is completed by the next chunk), applies it to the view and returns its
    /// `output_raw` pieces (empty if the chunk only held part of a character).
    pub fn push(&mut self, stream: Stream, bytes: &[u8]) -> Vec<Piece> {
        let text = self.cursors[stream.index()].decoder.decode(bytes);
        self.pieces_of(stream, &text)
    }

    /// Ends the input of `stream`: a partial character held back by [`ConsoleModel::push`]
    /// becomes U+FFFD, applied and returned as a piece. [`ConsoleModel::finish`] does this for
    /// both streams (without returning the pieces), so call it first if the pieces are recorded.
    pub fn flush_incomplete(&mut self, stream: Stream) -> Vec<Piece> {
        let text = self.cursors[stream.index()].decoder.finish();
        self.pieces_of(stream, &text)
    }

    fn pieces_of(&mut self, stream: Stream, text: &str) -> Vec<Piece> {
        self.write(stream, text);
        split_pieces(text)
            .map(|piece| Piece {
                stream,
                text: piece.to_owned(),
            })
            .collect()
    }

    /// Applies already-decoded text (e.g. an `output_raw` record's `line`) to the view.
    pub fn write(&mut self, stream: Stream, text: &str) {
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let escape = self.cursors[stream.index()].escape;
            match (escape, c) {
                (_, '\r') => {
                    self.flush_escape(stream);
                    self.cursors[stream.index()].column = 0;
                }
                (_, '\n') => {
                    self.flush_escape(stream);
                    self.line_feed(stream);
                }
                (Escape::None, ESC) => self.cursors[stream.index()].escape = Escape::Esc,
                (Escape::None, _) => {
                    // A run of plain text up to the next control character, in one go.
                    let bytes = rest.as_bytes();
                    let len = memchr::memchr3(b'\r', b'\n', 0x1b, bytes).unwrap_or(bytes.len());
                    self.put_str(stream, &rest[..len]);
                    rest = &rest[len..];
                    continue;
                }
                (Escape::Esc, '[') => self.cursors[stream.index()].escape = Escape::Csi,
                (Escape::Csi, 'A') => {
                    let cursor = &mut self.cursors[stream.index()];
                    cursor.escape = Escape::None;
                    cursor.row = cursor.row.saturating_sub(1);
                }
                (Escape::Csi, 'B') => {
                    self.cursors[stream.index()].escape = Escape::None;
                    self.cursor_down(stream);
                }
                (Escape::Esc | Escape::Csi, _) => {
                    // Not a sequence W&B interprets: print it as text, like W&B.
                    self.flush_escape(stream);
                    if c == ESC {
                        self.cursors[stream.index()].escape = Escape::Esc;
                    } else {
                        self.put_str(stream, &rest[..c.len_utf8()]);
                    }
                }
            }
            rest = &rest[c.len_utf8()..];
        }
    }

    /// Prints an unfinished escape sequence as text.
    fn flush_escape(&mut self, stream: Stream) {
        match std::mem::take(&mut self.cursors[stream.index()].escape) {
            Escape::None => {}
            Escape::Esc => self.put_str(stream, "\x1b"),
            Escape::Csi => self.put_str(stream, "\x1b["),
        }
    }

    /// Writes a run of text without control characters at the cursor of `stream`.
    fn put_str(&mut self, stream: Stream, run: &str) {
        let index = stream.index();
        while self.cursors[index].row >= self.cursors[index].view.len() {
            let number = self.new_line(stream);
            self.cursors[index].view.push_back(number);
        }
        let run_chars = run.chars().count();
        let cursor = &mut self.cursors[index];
        let number = cursor.view[cursor.row];
        let column = cursor.column;
        cursor.column = column.saturating_add(run_chars);
        // A line that left the mutable window is final: writes to it are dropped, as in W&B.
        if let Some(line) = self.line_mut(number) {
            line.put_str(column, run, run_chars);
        }
    }

    /// The line numbered `number`, unless it left the mutable window.
    fn line_mut(&mut self, number: u64) -> Option<&mut Line> {
        let offset = usize::try_from(number.checked_sub(self.first_line)?).ok()?;
        self.lines.get_mut(offset)
    }

    /// Allocates the next line number for `stream`, retiring the oldest line when the window is
    /// full.
    fn new_line(&mut self, stream: Stream) -> u64 {
        let number = self.first_line + self.lines.len() as u64;
        self.lines.push_back(Line::new(stream));
        if self.lines.len() > MUTABLE_LINES {
            if let Some(oldest) = self.lines.pop_front() {
                self.completed.push(oldest.into_console_line());
            }
            self.first_line += 1;
        }
        number
    }

    fn line_feed(&mut self, stream: Stream) {
        self.cursors[stream.index()].column = 0;
        self.cursor_down(stream);
    }

    fn cursor_down(&mut self, stream: Stream) {
        let cursor = &mut self.cursors[stream.index()];
        cursor.row += 1;
        if cursor.row >= MUTABLE_LINES {
            // Scroll: the top row leaves the view and can no longer change.
            cursor.row -= 1;
            if let Some(number) = cursor.view.pop_front()
                && let Some(line) = self.line_mut(number)
            {
                line.in_view = false;
            }
        }
    }

    /// Takes the lines that can no longer change, in `output.log` order, with their streams.
    pub fn take_completed(&mut self) -> Vec<ConsoleLine> {
        while self.lines.front().is_some_and(|line| !line.in_view) {
            if let Some(line) = self.lines.pop_front() {
                self.completed.push(line.into_console_line());
                self.first_line += 1;
            }
        }
        std::mem::take(&mut self.completed)
    }

    /// Takes the lines that can no longer change, in `output.log` order: append each, with a
    /// `\n`, to `output.log`. Lines stay inside while a cursor can still reach them (up to
    /// [`MUTABLE_LINES`] lines).
    pub fn take_completed_lines(&mut self) -> Vec<String> {
        self.take_completed()
            .into_iter()
            .map(|line| line.text)
            .collect()
    }

    /// Every line not taken yet, as it looks now: the completed ones, then those that may
    /// still change. A writer that rewrites the tail of `output.log` (W&B rewrites the file
    /// every few seconds) can show it live; `take_completed_lines` stays the source of truth.
    pub fn pending_lines(&self) -> Vec<String> {
        let completed = self.completed.iter().map(|line| line.text.clone());
        let mutable = self.lines.iter().map(|line| line.shown_text().to_owned());
        completed.chain(mutable).collect()
    }

    /// Ends the console: flushes partial characters (as U+FFFD) and returns every line not taken
    /// yet, the current (possibly `\r`-rewritten) one included. An unfinished escape sequence is
    /// dropped, as W&B does.
    pub fn finish(self) -> Vec<String> {
        self.finish_lines()
            .into_iter()
            .map(|line| line.text)
            .collect()
    }

    /// Like [`ConsoleModel::finish`], keeping each line's stream.
    pub fn finish_lines(mut self) -> Vec<ConsoleLine> {
        for stream in Stream::ALL {
            let text = self.cursors[stream.index()].decoder.finish();
            self.write(stream, &text);
        }
        let mut lines = std::mem::take(&mut self.completed);
        lines.extend(self.lines.into_iter().map(Line::into_console_line));
        lines
    }
}
