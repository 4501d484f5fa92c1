//! Tests of the console model: table-driven cases through one `check` helper, and W&B 0.31's
//! fixtures (their `output_raw` records must rebuild their `files/output.log` byte for byte).

use std::path::{Path, PathBuf};

use super::pieces::Utf8Decoder;
use super::{ConsoleModel, MAX_LINE_CHARS, MAX_PIECE_BYTES, MUTABLE_LINES, Piece, Stream};

const O: Stream = Stream::Stdout;
const E: Stream = Stream::Stderr;

/// Feeds `chunks` to a model and checks the pieces it returns and the `output.log` lines it
/// produces (taken after every chunk, then at finish). Also checks the invariants every input
/// must keep: pieces concatenate back to the (lossily decoded) input and have the W&B shape;
/// replaying the pieces as records, or feeding the input one byte at a time, gives the same
/// `output.log`.
#[track_caller]
fn check(chunks: &[(Stream, &[u8])], expected_pieces: &[(Stream, &str)], expected_log: &[&str]) {
    let mut model = ConsoleModel::new();
    let mut pieces = Vec::new();
    let mut log = Vec::new();
    for &(stream, bytes) in chunks {
        pieces.extend(model.push(stream, bytes));
        log.extend(model.take_completed_lines());
    }
    log.extend(model.finish());
    let got_pieces: Vec<(Stream, &str)> = pieces.iter().map(|p| (p.stream, &*p.text)).collect();
    assert_eq!(got_pieces, expected_pieces, "pieces");
    assert_eq!(log, expected_log, "output.log");

    for piece in &pieces {
        let text = &piece.text;
        let is_break = matches!(text.as_str(), "\n" | "\r");
        assert!(
            is_break || (!text.is_empty() && !text.contains(['\n', '\r'])),
            "badly shaped piece {text:?}"
        );
        assert!(
            text.len() <= MAX_PIECE_BYTES,
            "piece of {} bytes",
            text.len()
        );
    }
    let mut any_incomplete = false;
    for stream in Stream::ALL {
        let input: Vec<u8> = chunks
            .iter()
            .filter(|(s, _)| *s == stream)
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect();
        let joined: String = pieces
            .iter()
            .filter(|p| p.stream == stream)
            .map(|p| p.text.as_str())
            .collect();
        let mut decoder = Utf8Decoder::new();
        let decoded = decoder.decode(&input).into_owned();
        any_incomplete |= decoder.has_incomplete();
        assert_eq!(
            joined, decoded,
            "{stream} pieces do not concatenate to the input"
        );
    }

    let mut replay = ConsoleModel::new();
    for piece in &pieces {
        replay.write(piece.stream, &piece.text);
    }
    // (A character cut at the very end only becomes U+FFFD at `finish`, not in any piece.)
    if !any_incomplete {
        assert_eq!(replay.finish(), expected_log, "replaying the pieces");
    }

    let mut bytewise = ConsoleModel::new();
    let mut log = Vec::new();
    for &(stream, bytes) in chunks {
        for byte in bytes {
            bytewise.push(stream, std::slice::from_ref(byte));
            log.extend(bytewise.take_completed_lines());
        }
    }
    log.extend(bytewise.finish());
    assert_eq!(log, expected_log, "feeding one byte at a time");
}

#[test]
fn lines_and_pieces() {
    check(&[], &[], &[]);
    check(&[(O, b"")], &[], &[]);
    check(
        &[(O, b"a\nb\n")],
        &[(O, "a"), (O, "\n"), (O, "b"), (O, "\n")],
        &["a", "b"],
    );
    // print("a line on stdout") is two writes in Python, one chunk here: same pieces.
    check(
        &[(O, b"a line on stdout"), (O, b"\n")],
        &[(O, "a line on stdout"), (O, "\n")],
        &["a line on stdout"],
    );
    // A last line without a newline still reaches output.log at finish.
    check(
        &[(O, b"a\nb")],
        &[(O, "a"), (O, "\n"), (O, "b")],
        &["a", "b"],
    );
    check(&[(O, b"abc")], &[(O, "abc")], &["abc"]);
}

#[test]
fn blank_lines_exist_only_below_text() {
    check(
        &[(O, b"a\n\nb\n")],
        &[(O, "a"), (O, "\n"), (O, "\n"), (O, "b"), (O, "\n")],
        &["a", "", "b"],
    );
    check(&[(O, b"\na")], &[(O, "\n"), (O, "a")], &["", "a"]);
    // Trailing newlines create no lines (as in W&B: print() at the very end adds nothing).
    check(
        &[(O, b"a\n\n\n")],
        &[(O, "a"), (O, "\n"), (O, "\n"), (O, "\n")],
        &["a"],
    );
    check(&[(O, b"\n")], &[(O, "\n")], &[]);
}

#[test]
fn carriage_return_overwrites_the_line() {
    // The rich fixture: print(f'progress {k}', end='\r') three times, then print().
    check(
        &[(O, b"progress 0\rprogress 1\rprogress 2\r\n")],
        &[
            (O, "progress 0"),
            (O, "\r"),
            (O, "progress 1"),
            (O, "\r"),
            (O, "progress 2"),
            (O, "\r"),
            (O, "\n"),
        ],
        &["progress 2"],
    );
    // A shorter overwrite leaves the tail of the longer text, as a terminal does.
    check(
        &[(O, b"abcdef\rXY\n")],
        &[(O, "abcdef"), (O, "\r"), (O, "XY"), (O, "\n")],
        &["XYcdef"],
    );
    check(&[(O, b"abc\r")], &[(O, "abc"), (O, "\r")], &["abc"]);
    check(
        &[(O, b"a\r\rb\n")],
        &[(O, "a"), (O, "\r"), (O, "\r"), (O, "b"), (O, "\n")],
        &["b"],
    );
}

/// What W&B 0.31's core made of these `print` calls (each write one `output_raw` record):
/// spaces written past a line's end show only once something else is written after them.
#[test]
fn trailing_spaces_show_only_when_a_later_write_changes_the_line() {
    let chunks: &[&str] = &[
        "a  ",
        "\n",
        "b\t",
        "\n",
        "   ",
        "\n",
        "c \t ",
        "\n",
        "  d",
        "\n",
        "progress 100%   \rdone\n",
        "\u{3000}x\u{3000}",
        "\n",
        "x",
        " ",
        "y",
        "\n",
        "abc ",
        "def\n",
        "abcdef\rab ",
        "\n",
        "tail   ",
        "\n",
        "row  ",
        "\rrow  ",
        "\rR",
        "\n",
    ];
    let mut model = ConsoleModel::new();
    let mut log = Vec::new();
    for chunk in chunks {
        model.push(O, chunk.as_bytes());
        log.extend(model.take_completed_lines());
    }
    assert_eq!(
        model.pending_lines().last().map(String::as_str),
        Some("Row  ")
    );
    log.extend(model.finish());
    assert_eq!(
        log,
        [
            "a",
            "b\t",
            "",
            "c \t",
            "  d",
            "doneress 100%   ",
            "\u{3000}x\u{3000}",
            "x y",
            "abc def",
            "ab def",
            "tail",
            "Row  ",
        ]
    );
}

#[test]
fn crlf_is_a_line_end() {
    check(
        &[(O, b"a\r\nb\r\n")],
        &[
            (O, "a"),
            (O, "\r"),
            (O, "\n"),
            (O, "b"),
            (O, "\r"),
            (O, "\n"),
        ],
        &["a", "b"],
    );
    // Split between chunks, it becomes two pieces and renders the same.
    check(
        &[(O, b"a\r"), (O, b"\nb")],
        &[(O, "a"), (O, "\r"), (O, "\n"), (O, "b")],
        &["a", "b"],
    );
    check(
        &[(O, b"\r\n\r\n")],
        &[(O, "\r"), (O, "\n"), (O, "\r"), (O, "\n")],
        &[],
    );
}

#[test]
fn streams_share_lines_in_the_order_they_start() {
    // The rich fixture's order.
    check(
        &[
            (O, b"a line on stdout\n"),
            (E, b"a line on stderr\n"),
            (O, b"progress 0\rprogress 1\r\n"),
        ],
        &[
            (O, "a line on stdout"),
            (O, "\n"),
            (E, "a line on stderr"),
            (E, "\n"),
            (O, "progress 0"),
            (O, "\r"),
            (O, "progress 1"),
            (O, "\r"),
            (O, "\n"),
        ],
        &["a line on stdout", "a line on stderr", "progress 1"],
    );
    // Each stream has its own cursor: a progress bar keeps its line while stderr prints.
    check(
        &[(O, b"p1\r"), (E, b"warn\n"), (O, b"p2\r"), (O, b"\n")],
        &[
            (O, "p1"),
            (O, "\r"),
            (E, "warn"),
            (E, "\n"),
            (O, "p2"),
            (O, "\r"),
            (O, "\n"),
        ],
        &["p2", "warn"],
    );
    // A line started on stdout and finished later stays where it started.
    check(
        &[(O, b"out"), (E, b"err\n"), (O, b" more\n")],
        &[(O, "out"), (E, "err"), (E, "\n"), (O, " more"), (O, "\n")],
        &["out more", "err"],
    );
}

#[test]
fn utf8_is_decoded_across_chunks_and_lossily() {
    check(
        &[(O, "ünïcödé line ✓\n".as_bytes())],
        &[(O, "ünïcödé line ✓"), (O, "\n")],
        &["ünïcödé line ✓"],
    );
    // ✓ = e2 9c 93, cut between two reads of the pipe.
    check(
        &[(O, b"\xe2\x9c"), (O, b"\x93\n")],
        &[(O, "✓"), (O, "\n")],
        &["✓"],
    );
    check(
        &[(O, b"a\xffb\n")],
        &[(O, "a\u{fffd}b"), (O, "\n")],
        &["a\u{fffd}b"],
    );
    // A cut character on one stream does not swallow the other stream's text.
    check(
        &[(O, b"x\xe2"), (E, b"e\n"), (O, b"\x9c\x93\n")],
        &[(O, "x"), (E, "e"), (E, "\n"), (O, "✓"), (O, "\n")],
        &["x✓", "e"],
    );
    // A character that never completes becomes U+FFFD at finish.
    check(&[(O, b"x\xe2\x9c")], &[(O, "x")], &["x\u{fffd}"]);
}

#[test]
fn flush_incomplete_returns_the_replacement_piece() {
    let mut model = ConsoleModel::new();
    assert_eq!(model.push(O, b"x\xe2\x9c"), [piece(O, "x")]);
    assert_eq!(model.flush_incomplete(E), []);
    assert_eq!(model.flush_incomplete(O), [piece(O, "\u{fffd}")]);
    assert_eq!(model.finish(), ["x\u{fffd}"]);
}

#[test]
fn escape_sequences() {
    // Colours are kept verbatim, in pieces and in output.log (W&B's UI renders them).
    check(
        &[(O, b"\x1b[31mred\x1b[0m\n")],
        &[(O, "\x1b[31mred\x1b[0m"), (O, "\n")],
        &["\x1b[31mred\x1b[0m"],
    );
    check(
        &[(O, b"\x1b[2Kx\n")],
        &[(O, "\x1b[2Kx"), (O, "\n")],
        &["\x1b[2Kx"],
    );
    check(
        &[(O, b"\x1bMx\n")],
        &[(O, "\x1bMx"), (O, "\n")],
        &["\x1bMx"],
    );
    // Cursor up: tqdm redraws a bar one row above.
    check(
        &[(O, b"bar1 10%\nbar2 10%\n\x1b[A\x1b[Abar1 50%\n")],
        &[
            (O, "bar1 10%"),
            (O, "\n"),
            (O, "bar2 10%"),
            (O, "\n"),
            (O, "\x1b[A\x1b[Abar1 50%"),
            (O, "\n"),
        ],
        &["bar1 50%", "bar2 10%"],
    );
    // Moving up onto a shorter line pads it with spaces up to the cursor's column.
    check(
        &[(O, b"ab\nabcdef\x1b[AX\n")],
        &[(O, "ab"), (O, "\n"), (O, "abcdef\x1b[AX"), (O, "\n")],
        &["ab    X", "abcdef"],
    );
    // Cursor up at the top row stays there; cursor down keeps the column.
    check(&[(O, b"\x1b[Ax\n")], &[(O, "\x1b[Ax"), (O, "\n")], &["x"]);
    check(
        &[(O, b"a\x1b[Bb\n")],
        &[(O, "a\x1b[Bb"), (O, "\n")],
        &["a", " b"],
    );
    // A sequence cut between chunks is still recognised.
    check(
        &[(O, b"one\ntwo\x1b"), (O, b"["), (O, b"AONE\n")],
        &[
            (O, "one"),
            (O, "\n"),
            (O, "two\x1b"),
            (O, "["),
            (O, "AONE"),
            (O, "\n"),
        ],
        &["oneONE", "two"],
    );
    // A line break inside an unfinished sequence prints the sequence and still breaks the line.
    check(
        &[(O, b"ab\x1b\ncd\n")],
        &[(O, "ab\x1b"), (O, "\n"), (O, "cd"), (O, "\n")],
        &["ab\x1b", "cd"],
    );
    check(
        &[(O, b"\x1b\x1b[Ax\n")],
        &[(O, "\x1b\x1b[Ax"), (O, "\n")],
        &["\x1bx"],
    );
    // An unfinished sequence at the very end is dropped, as W&B does.
    check(&[(O, b"a\x1b[")], &[(O, "a\x1b[")], &["a"]);
    // Other control characters are kept as they are.
    check(
        &[(O, b"a\tb\x08\n")],
        &[(O, "a\tb\x08"), (O, "\n")],
        &["a\tb\x08"],
    );
}

#[test]
fn long_lines_are_capped() {
    let long = "x".repeat(MAX_LINE_CHARS + 904);
    let input = format!("{long}\n");
    check(
        &[(O, input.as_bytes())],
        &[(O, &long), (O, "\n")],
        &[&"x".repeat(MAX_LINE_CHARS)],
    );
    // The cap counts characters, not bytes.
    let wide = "é".repeat(MAX_LINE_CHARS + 1);
    let mut model = ConsoleModel::new();
    model.push(O, wide.as_bytes());
    assert_eq!(model.finish(), ["é".repeat(MAX_LINE_CHARS)]);
    // Overwriting after a `\r` works within the cap.
    let mut model = ConsoleModel::new();
    model.push(O, format!("{long}\rab\n").as_bytes());
    let line = &model.finish()[0];
    assert!(line.starts_with("abx") && line.chars().count() == MAX_LINE_CHARS);
}

#[test]
fn pieces_are_cut_at_max_piece_bytes_on_char_boundaries() {
    // 'é' is 2 bytes; an odd prefix makes MAX_PIECE_BYTES fall inside a character.
    let text = format!("a{}", "é".repeat(MAX_PIECE_BYTES));
    let mut model = ConsoleModel::new();
    let pieces = model.push(O, text.as_bytes());
    assert!(pieces.len() >= 3, "{} pieces", pieces.len());
    assert!(pieces.iter().all(|p| p.text.len() <= MAX_PIECE_BYTES));
    assert_eq!(pieces[0].text.len(), MAX_PIECE_BYTES - 1);
    let joined: String = pieces.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(joined, text);
}

#[test]
fn a_10_mb_line_without_newline_keeps_memory_bounded() {
    let chunk = vec![b'y'; 64 * 1024];
    let mut model = ConsoleModel::new();
    for _ in 0..160 {
        let pieces = model.push(O, &chunk);
        assert!(pieces.iter().all(|p| p.text.len() <= MAX_PIECE_BYTES));
        assert!(model.take_completed_lines().is_empty());
        let pending = model.pending_lines();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].len(), MAX_LINE_CHARS);
    }
    assert_eq!(model.finish(), ["y".repeat(MAX_LINE_CHARS)]);
}

#[test]
fn completed_lines_leave_the_model_once_out_of_reach() {
    let mut model = ConsoleModel::new();
    for i in 0..100 {
        model.push(O, format!("line {i}\n").as_bytes());
    }
    let completed = model.take_completed_lines();
    // The last rows of the view can still be reached by a cursor-up: they stay.
    assert_eq!(completed.len(), 100 - (MUTABLE_LINES - 1));
    assert!(model.pending_lines().len() < MUTABLE_LINES);
    assert!(model.take_completed_lines().is_empty());
    let mut all = completed;
    all.extend(model.finish());
    let expected: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    assert_eq!(all, expected);
}

#[test]
fn take_completed_keeps_the_stream_of_each_line() {
    let mut model = ConsoleModel::new();
    model.push(O, b"out\n");
    model.push(E, b"err\n");
    let lines = model.finish_lines();
    let got: Vec<(Stream, &str)> = lines.iter().map(|l| (l.stream, &*l.text)).collect();
    assert_eq!(got, [(O, "out"), (E, "err")]);
}

#[test]
fn a_line_pushed_out_of_the_window_by_the_other_stream_is_final() {
    // W&B keeps 32 mutable lines across both streams: a stdout progress line that stderr pushed
    // out of the window can no longer change (W&B drops such writes too).
    let mut model = ConsoleModel::new();
    model.push(O, b"p 1\r");
    for i in 0..MUTABLE_LINES {
        model.push(E, format!("e{i}\n").as_bytes());
    }
    model.push(O, b"p 2\n");
    let mut log = model.take_completed_lines();
    log.extend(model.finish());
    assert_eq!(log.len(), MUTABLE_LINES + 1);
    assert_eq!(log[0], "p 1");
    assert_eq!(log[1], "e0");
}

#[test]
fn pending_lines_show_the_current_state() {
    let mut model = ConsoleModel::new();
    model.push(O, b"done\nprogress 3");
    assert_eq!(model.pending_lines(), ["done", "progress 3"]);
    model.push(O, b"\rprogress 4");
    assert_eq!(model.pending_lines(), ["done", "progress 4"]);
}

#[test]
fn piece_to_record() {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_500_000);
    let record = piece(E, "oops").to_record(time);
    assert_eq!(record.output_type, 0);
    assert_eq!(record.line, "oops");
    let timestamp = record.timestamp.unwrap();
    assert_eq!((timestamp.seconds, timestamp.nanos), (1, 500_000_000));
    assert_eq!(piece(O, "\n").to_record(time).output_type, 1);
    assert_eq!(Stream::from_output_type(0), E);
    assert_eq!(Stream::from_output_type(1), O);
}

fn piece(stream: Stream, text: &str) -> Piece {
    Piece {
        stream,
        text: text.to_owned(),
    }
}

/// The run folder of a W&B 0.31 fixture.
fn fixture_run(name: &str) -> PathBuf {
    let wandb = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/wandb-0.31")
        .join(name)
        .join("wandb");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&wandb)
        .unwrap_or_else(|e| panic!("{}: {e}", wandb.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    runs.sort();
    runs.remove(0)
}

/// The `output_raw` records of a fixture, in file order.
fn fixture_output_raw(run: &Path) -> Vec<(Stream, String)> {
    let records = std::fs::read_dir(run)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".records.jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(records).unwrap();
    text.lines()
        .filter_map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            let raw = record.get("output_raw")?;
            // Protobuf JSON omits defaults: no output_type is STDERR, no line is "".
            let stream = match raw.get("output_type").and_then(|t| t.as_str()) {
                Some("STDOUT") => O,
                _ => E,
            };
            let line = raw.get("line").and_then(|l| l.as_str()).unwrap_or("");
            Some((stream, line.to_owned()))
        })
        .collect()
}

#[test]
fn fixtures_rebuild_output_log() {
    for name in ["rich", "stats", "unicode", "failed", "basic"] {
        let run = fixture_run(name);
        let records = fixture_output_raw(&run);
        // W&B creates output.log with its first line: `basic` printed nothing and has none.
        let expected = std::fs::read_to_string(run.join("files/output.log")).unwrap_or_default();

        // From the records' text, as a sync would.
        let mut model = ConsoleModel::new();
        let mut log = String::new();
        for (stream, line) in &records {
            model.write(*stream, line);
            for line in model.take_completed_lines() {
                log.push_str(&line);
                log.push('\n');
            }
        }
        for line in model.finish() {
            log.push_str(&line);
            log.push('\n');
        }
        assert_eq!(log, expected, "{name}: output.log from records");

        // From the same bytes arriving as raw chunks.
        let mut model = ConsoleModel::new();
        for (stream, line) in &records {
            model.push(*stream, line.as_bytes());
        }
        let log: String = model.finish().iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(log, expected, "{name}: output.log from chunks");
    }
}

#[test]
fn fixture_pieces_match_wandb_records() {
    // Where the program used print() (one text write, one line-break write), splitting each
    // stream's whole output gives W&B's records exactly. (`failed` is a Python traceback,
    // written by the interpreter in other shapes.)
    for name in ["rich", "stats", "unicode"] {
        let records = fixture_output_raw(&fixture_run(name));
        for stream in Stream::ALL {
            let expected: Vec<&str> = records
                .iter()
                .filter(|(s, _)| *s == stream)
                .map(|(_, line)| line.as_str())
                .collect();
            let whole: String = expected.concat();
            let mut model = ConsoleModel::new();
            let pieces = model.push(stream, whole.as_bytes());
            let got: Vec<&str> = pieces.iter().map(|p| p.text.as_str()).collect();
            assert_eq!(got, expected, "{name} {stream}");
        }
    }
}

/// A literal, character-at-a-time transcription of W&B's `terminalemulator` and
/// `RunLogsChangeModel` (with cairn's two documented differences), to check the optimised
/// model against.
mod reference {
    use super::super::{MAX_LINE_CHARS, MUTABLE_LINES, Stream};

    #[derive(Default)]
    struct Term {
        view: Vec<usize>,
        y: usize,
        x: usize,
        escape: String,
    }

    #[derive(Default)]
    pub(super) struct Model {
        terms: [Term; 2],
        first: usize,
        /// Each line's characters, and how many of them it shows: its length when a
        /// character last changed it (W&B copies a line out only when a write changes it).
        lines: Vec<(Vec<char>, usize)>,
        done: Vec<String>,
    }

    impl Model {
        pub(super) fn write(&mut self, stream: Stream, text: &str) {
            let t = stream.index();
            for c in text.chars() {
                match (self.terms[t].escape.as_str(), c) {
                    (_, '\r') => {
                        self.flush_escape(t);
                        self.terms[t].x = 0;
                    }
                    (_, '\n') => {
                        self.flush_escape(t);
                        self.terms[t].x = 0;
                        self.down(t);
                    }
                    ("", '\x1b') => self.terms[t].escape.push(c),
                    ("", _) => self.put(t, c),
                    ("\x1b", '[') => self.terms[t].escape.push(c),
                    ("\x1b[", 'A') => {
                        self.terms[t].escape.clear();
                        self.terms[t].y = self.terms[t].y.saturating_sub(1);
                    }
                    ("\x1b[", 'B') => {
                        self.terms[t].escape.clear();
                        self.down(t);
                    }
                    (_, _) => {
                        self.flush_escape(t);
                        if c == '\x1b' {
                            self.terms[t].escape.push(c);
                        } else {
                            self.put(t, c);
                        }
                    }
                }
            }
        }

        fn flush_escape(&mut self, t: usize) {
            let escape = std::mem::take(&mut self.terms[t].escape);
            for c in escape.chars() {
                self.put(t, c);
            }
        }

        fn put(&mut self, t: usize, c: char) {
            while self.terms[t].y >= self.terms[t].view.len() {
                let number = self.first + self.lines.len();
                self.lines.push((Vec::new(), 0));
                if self.lines.len() > MUTABLE_LINES {
                    let (oldest, shown) = self.lines.remove(0);
                    self.done.push(oldest[..shown].iter().collect());
                    self.first += 1;
                }
                self.terms[t].view.push(number);
            }
            let number = self.terms[t].view[self.terms[t].y];
            let x = self.terms[t].x;
            self.terms[t].x += 1;
            if number < self.first || x >= MAX_LINE_CHARS {
                return;
            }
            let (line, shown) = &mut self.lines[number - self.first];
            while x >= line.len() {
                line.push(' ');
            }
            if line[x] != c {
                line[x] = c;
                *shown = line.len();
            }
        }

        fn down(&mut self, t: usize) {
            self.terms[t].y += 1;
            if self.terms[t].y >= MUTABLE_LINES {
                if !self.terms[t].view.is_empty() {
                    self.terms[t].view.remove(0);
                }
                self.terms[t].y -= 1;
            }
        }

        pub(super) fn finish(mut self) -> Vec<String> {
            let lines = (self.lines.into_iter()).map(|(l, shown)| l[..shown].iter().collect());
            self.done.extend(lines);
            self.done
        }
    }
}

#[test]
fn random_inputs_match_the_reference_emulator() {
    // Few distinct characters, so that escapes, overwrites and both streams mix a lot.
    const ALPHABET: [&str; 14] = [
        "a", "bc", "é", "✓", "\r", "\n", "\n", "\x1b", "[", "A", "B", "m", " ", "  ",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    for case in 0..2000 {
        let mut model = ConsoleModel::new();
        let mut reference = reference::Model::default();
        let mut log = Vec::new();
        for _ in 0..next(40) + 1 {
            let stream = if next(4) == 0 { E } else { O };
            let text: String = (0..next(30))
                .map(|_| ALPHABET[next(ALPHABET.len())])
                .collect();
            // Some long runs too, to cross the line cap.
            let text = if next(50) == 0 {
                text.repeat(MAX_LINE_CHARS / 8)
            } else {
                text
            };
            model.push(stream, text.as_bytes());
            reference.write(stream, &text);
            log.extend(model.take_completed_lines());
        }
        log.extend(model.finish());
        assert_eq!(log, reference.finish(), "case {case}");
    }
}
