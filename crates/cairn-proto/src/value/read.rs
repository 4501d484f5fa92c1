//! The one reader of W&B's JSON: strict JSON plus the bare tokens `NaN`, `Infinity` and
//! `-Infinity` anywhere a number may stand, as Python's `json` module and W&B's core write
//! them (history rows, summaries, config values, `value_json` fields).
//!
//! Input: text. Output: its parts, in document order, to a [`Visit`]or — scalars, the
//! beginnings and ends of lists and maps, keys, and after each complete value its text as
//! written. Strings without escapes are lent from the text, not copied; numbers come as
//! their validated text ([`Number`]), so a visitor converts only what it keeps. Building a
//! tree ([`crate::value::Value`], `serde_json::Value`) or picking top-level members is a
//! visitor (`collect.rs`).
//!
//! The reader is a recursive descent with a depth guard ([`MAX_DEPTH`]); it never panics,
//! on any input. An unpaired surrogate escape (`"\ud800"`, which Python writes for a lone
//! surrogate) reads as U+FFFD. On an error the visitor has seen the parts before it.

use std::borrow::Cow;

/// How deeply lists and maps may nest (a guard for the stack).
pub const MAX_DEPTH: usize = 512;

/// Why a text is not one value of W&B's JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a W&B JSON value (at byte {at})")]
pub struct NotJson {
    /// Where reading stopped.
    pub at: usize,
}

/// A JSON number as written, its grammar checked (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Number<'a>(&'a str);

impl<'a> Number<'a> {
    /// The number's text.
    pub fn text(self) -> &'a str {
        self.0
    }

    /// The number as an integer, when it is written without fraction or exponent and fits
    /// 64 bits (`-0` reads as 0).
    pub fn to_i64(self) -> Option<i64> {
        self.0.parse().ok()
    }

    /// The nearest float (correctly rounded; infinite beyond the range of `f64`).
    pub fn to_f64(self) -> f64 {
        // The grammar checked is a subset of what `f64::from_str` reads.
        self.0.parse().unwrap_or(f64::NAN)
    }
}

/// A value with no parts.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number.
    Number(Number<'a>),
    /// `NaN`, `Infinity` or `-Infinity`.
    NonFinite(f64),
    /// A string, its escapes decoded.
    Str(Cow<'a, str>),
}

/// What reading a text reports, in document order. Every method does nothing unless
/// implemented.
///
/// A map is `begin_map`, then per member `key` and the member's value, then `end_map`; a
/// list is `begin_list`, its items, `end_list`. After each complete value (scalar, list or
/// map) comes `value_text` with its text as written, without the space around it.
pub trait Visit<'a> {
    /// A scalar value.
    fn scalar(&mut self, scalar: Scalar<'a>) {
        let _ = scalar;
    }
    /// A list begins.
    fn begin_list(&mut self) {}
    /// The innermost open list ends.
    fn end_list(&mut self) {}
    /// A map begins.
    fn begin_map(&mut self) {}
    /// The key of the next member of the innermost open map.
    fn key(&mut self, key: Cow<'a, str>) {
        let _ = key;
    }
    /// The innermost open map ends.
    fn end_map(&mut self) {}
    /// The text of the value that just ended.
    fn value_text(&mut self, text: &'a str) {
        let _ = text;
    }
}

/// Reads `text` as one value of W&B's JSON (space around it allowed), reporting its parts
/// to `visit`.
pub fn read<'a>(text: &'a str, visit: &mut impl Visit<'a>) -> Result<(), NotJson> {
    let mut parser = Parser { text, at: 0 };
    let done = parser.value(0, visit).is_some() && {
        parser.space();
        parser.at == text.len()
    };
    if done {
        Ok(())
    } else {
        Err(NotJson { at: parser.at })
    }
}

/// A recursive-descent reader positioned at byte `at` of `text`.
struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Consumes `byte` if the text continues with it.
    fn eat_byte(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    /// Consumes `word` if the text continues with it.
    fn eat(&mut self, word: &str) -> bool {
        let found = self
            .text
            .as_bytes()
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(word.as_bytes()));
        if found {
            self.at += word.len();
        }
        found
    }

    fn value<V: Visit<'a>>(&mut self, depth: usize, visit: &mut V) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.space();
        let start = self.at;
        match self.peek()? {
            b'{' => {
                self.at += 1;
                visit.begin_map();
                self.space();
                if !self.eat_byte(b'}') {
                    loop {
                        self.space();
                        visit.key(self.string()?);
                        self.space();
                        if !self.eat_byte(b':') {
                            return None;
                        }
                        self.value(depth + 1, visit)?;
                        self.space();
                        if self.eat_byte(b'}') {
                            break;
                        }
                        if !self.eat_byte(b',') {
                            return None;
                        }
                    }
                }
                visit.end_map();
            }
            b'[' => {
                self.at += 1;
                visit.begin_list();
                self.space();
                if !self.eat_byte(b']') {
                    loop {
                        self.value(depth + 1, visit)?;
                        self.space();
                        if self.eat_byte(b']') {
                            break;
                        }
                        if !self.eat_byte(b',') {
                            return None;
                        }
                    }
                }
                visit.end_list();
            }
            b'"' => visit.scalar(Scalar::Str(self.string()?)),
            b'n' => visit.scalar(self.word("null", Scalar::Null)?),
            b't' => visit.scalar(self.word("true", Scalar::Bool(true))?),
            b'f' => visit.scalar(self.word("false", Scalar::Bool(false))?),
            b'N' => visit.scalar(self.word("NaN", Scalar::NonFinite(f64::NAN))?),
            b'I' => visit.scalar(self.word("Infinity", Scalar::NonFinite(f64::INFINITY))?),
            b'-' if self.text.as_bytes().get(self.at + 1) == Some(&b'I') => {
                visit.scalar(self.word("-Infinity", Scalar::NonFinite(f64::NEG_INFINITY))?)
            }
            _ => visit.scalar(Scalar::Number(self.number()?)),
        }
        // Both ends sit next to ASCII bytes, so the slice always exists.
        if let Some(text) = self.text.get(start..self.at) {
            visit.value_text(text);
        }
        Some(())
    }

    /// `scalar`, if the text continues with `word`.
    fn word(&mut self, word: &str, scalar: Scalar<'a>) -> Option<Scalar<'a>> {
        self.eat(word).then_some(scalar)
    }

    /// A JSON number's text.
    fn number(&mut self) -> Option<Number<'a>> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.at += 1;
            }
            p.at > from
        };
        self.eat_byte(b'-');
        if !self.eat_byte(b'0') && !digits(self) {
            return None;
        }
        if self.eat_byte(b'.') && !digits(self) {
            return None;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        self.text.get(start..self.at).map(Number)
    }

    /// A JSON string, lent from the text when it has no escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        if !self.eat_byte(b'"') {
            return None;
        }
        let mut owned: Option<String> = None;
        loop {
            let run = self.at;
            let stop = run + memchr::memchr2(b'"', b'\\', self.text.as_bytes().get(run..)?)?;
            // `run` and `stop` sit next to ASCII bytes: both are character boundaries.
            let text = self.text.get(run..stop)?;
            self.at = stop + 1;
            if self.text.as_bytes().get(stop) == Some(&b'"') {
                return Some(match owned {
                    None => Cow::Borrowed(text),
                    Some(mut out) => {
                        out.push_str(text);
                        Cow::Owned(out)
                    }
                });
            }
            let out = owned.get_or_insert_with(String::new);
            out.push_str(text);
            let escape = self.peek()?;
            self.at += 1;
            out.push(match escape {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => self.unicode()?,
                _ => return None,
            });
        }
    }

    /// The character of a `\u` escape whose four hex digits start at `at` (with the low
    /// half that must follow a high surrogate); U+FFFD for an unpaired surrogate.
    fn unicode(&mut self) -> Option<char> {
        let high = self.hex4()?;
        if !(0xD800..0xDC00).contains(&high) {
            return Some(char::from_u32(high).unwrap_or('\u{FFFD}'));
        }
        let before = self.at;
        if self.eat("\\u")
            && let Some(low @ 0xDC00..0xE000) = self.hex4()
        {
            return char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        }
        self.at = before;
        Some('\u{FFFD}')
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.as_bytes().get(self.at..self.at + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let value = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        self.at += 4;
        Some(value)
    }
}
