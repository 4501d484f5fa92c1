//! Splitting console text into `output_raw` pieces, and decoding byte chunks into text.
//!
//! Input: text (or, through [`Utf8Decoder`], raw byte chunks as a pipe delivers them).
//! Output: pieces in W&B 0.31's shape. The Python SDK records each `write()` call, and
//! `print(x)` writes `x` and then `"\n"` (or its `end=`), so the fixtures hold the text and the
//! line break as separate records: `"progress 0"`, `"\r"`, `"progress 1"`, ... A capture at the
//! file-descriptor level sees no `write()` boundaries, so cairn cuts every chunk into the same
//! shape:
//!
//! * a maximal run of text without `\n` or `\r`, cut further at [`MAX_PIECE_BYTES`] (on a
//!   character boundary) so no record grows with the length of a line;
//! * exactly one line break character, `"\n"` or `"\r"`; `"\r\n"` is two pieces, as in W&B's
//!   records of `print('x', end='\r')` followed by `print()` (the `rich` fixture).
//!
//! Where a pipe read ends inside a line, its text becomes two pieces (W&B cuts at `write()`
//! calls instead, which a pipe does not show). Concatenating the pieces gives back the text
//! exactly. Nothing here allocates per piece except
//! the caller's own copies; there is no shutdown.

use std::borrow::Cow;

/// Largest text piece, in bytes: longer runs without a line break are cut (on a character
/// boundary) into several pieces. Equal to the capture's read buffer, so a pipe read of text is
/// normally one piece.
pub const MAX_PIECE_BYTES: usize = 64 * 1024;

/// Cuts `text` into pieces: text runs (at most [`MAX_PIECE_BYTES`] each) and single `\n` or
/// `\r` characters.
///
/// ```
/// use cairn_core::console::split_pieces;
/// let pieces: Vec<&str> = split_pieces("a\nprogress\r\nb").collect();
/// assert_eq!(pieces, ["a", "\n", "progress", "\r", "\n", "b"]);
/// ```
pub fn split_pieces(text: &str) -> SplitPieces<'_> {
    SplitPieces { rest: text }
}

/// Iterator returned by [`split_pieces`].
#[derive(Clone, Debug)]
pub struct SplitPieces<'a> {
    rest: &'a str,
}

impl<'a> Iterator for SplitPieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.rest.as_bytes();
        let len = match bytes.first()? {
            b'\r' | b'\n' => 1,
            _ => {
                let run = memchr::memchr2(b'\n', b'\r', bytes).unwrap_or(bytes.len());
                floor_char_boundary(self.rest, run.min(MAX_PIECE_BYTES))
            }
        };
        let (piece, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(piece)
    }
}

/// The largest char boundary `<= index` (a stable stand-in for `str::floor_char_boundary`),
/// but never 0 for a non-empty string, so the iterator always makes progress.
fn floor_char_boundary(s: &str, index: usize) -> usize {
    if index >= s.len() {
        return s.len();
    }
    let mut i = index;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    if i == 0 {
        // `index` fell inside the first character: take that whole character.
        s.chars().next().map_or(0, char::len_utf8)
    } else {
        i
    }
}

/// Turns a stream of byte chunks into text, the way `String::from_utf8_lossy` would turn the
/// whole stream at once: a character cut between two chunks is held back (at most 3 bytes) and
/// completed by the next chunk, and only truly invalid bytes become U+FFFD.
#[derive(Clone, Debug, Default)]
pub struct Utf8Decoder {
    /// The start of a character whose remaining bytes have not arrived yet (0 to 3 bytes).
    incomplete: Vec<u8>,
}

impl Utf8Decoder {
    /// A decoder with nothing held back.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `bytes`. Valid UTF-8 (the usual case) is borrowed, not copied; so is a valid
    /// chunk whose last character is cut (its start is held back).
    pub fn decode<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, str> {
        if self.incomplete.is_empty() {
            match std::str::from_utf8(bytes) {
                Ok(text) => return Cow::Borrowed(text),
                Err(error) if error.error_len().is_none() => {
                    let (valid, cut) = bytes.split_at(error.valid_up_to());
                    self.incomplete.extend_from_slice(cut);
                    return String::from_utf8_lossy(valid); // valid: borrowed
                }
                Err(_) => {}
            }
        }
        let mut joined = std::mem::take(&mut self.incomplete);
        joined.extend_from_slice(bytes);
        let mut out = String::with_capacity(joined.len());
        let mut rest: &[u8] = &joined;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    out.push_str(&String::from_utf8_lossy(valid)); // valid: borrowed
                    match error.error_len() {
                        None => {
                            // The chunk ends inside a character: wait for the rest of it.
                            self.incomplete.extend_from_slice(after);
                            break;
                        }
                        Some(invalid) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[invalid..];
                        }
                    }
                }
            }
        }
        Cow::Owned(out)
    }

    /// Ends the stream: a held-back partial character can no longer complete and becomes
    /// U+FFFD (empty string if nothing is held back).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.incomplete).into_owned();
        self.incomplete.clear();
        text
    }

    /// Whether part of a character is held back waiting for the next chunk.
    pub fn has_incomplete(&self) -> bool {
        !self.incomplete.is_empty()
    }
}
