//! Payloads through `LogWriter` and back through `LogReader`, optionally with the log cut
//! short and/or one byte flipped.
//!
//! * The writer's bytes equal an independent framing of the same payloads (header, 32 KiB
//!   blocks, zero padding, FULL/FIRST/MIDDLE/LAST chunks, CRC-32 of type + payload), and
//!   `push` returns the offset of each record's first chunk.
//! * Intact log: every payload comes back, at its offset, with no damage.
//! * Cut at byte `c`: exactly the records that end at or before `c` come back; at most one
//!   damage, a torn tail, and none when `c` is a record boundary.
//! * One flipped byte (and maybe a cut): every record returned is an original at its
//!   original offset, in order (a subsequence). Those the reader promises to recover come
//!   back too: records that end before the flipped byte, records that start in a later
//!   block, and all of them when the byte is in the file header or in block padding.

#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use cairn_store::{
    BLOCK_SIZE, CHUNK_HEADER_LEN, Damage, FILE_HEADER, LogReader, LogWriter, SyncPolicy,
};
use libfuzzer_sys::fuzz_target;

/// Keeps one run fast: about ten blocks of payload at most.
const MAX_TOTAL: usize = 320 * 1024;

#[derive(Arbitrary, Debug)]
enum PayloadSpec {
    /// These bytes.
    Bytes(Vec<u8>),
    /// `len % 100_001` bytes of a pattern (large records without large inputs).
    Pattern { seed: u8, len: u32 },
    /// Sized so the record ends `gap % 17` bytes before the end of its block, if it can:
    /// reaches the padding cases (fewer than 7 bytes left, exactly 7 left).
    FillBlock { seed: u8, gap: u8 },
}

#[derive(Arbitrary, Debug)]
struct Entry {
    payload: PayloadSpec,
    /// `append` (commit at once) rather than `push`.
    commit: bool,
}

/// A byte position in the log, chosen so that interesting places come up often.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Pos {
    Anywhere(u32),
    NearRecordEnd { record: u16, delta: i8 },
    NearRecordStart { record: u16, delta: i8 },
    NearBlock { block: u8, delta: i16 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<Entry>,
    cut: Option<Pos>,
    flip: Option<(Pos, u8)>,
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u32)
                .to_le_bytes()[3]
        })
        .collect()
}

/// Where the log's records are: `(start, end)` of each, from the writer.
struct Layout {
    spans: Vec<(u64, u64)>,
    len: usize,
}

impl Layout {
    /// `pos` as an index in `0..=len` (`upper` inclusive) or `0..len`.
    fn resolve(&self, pos: Pos, inclusive: bool) -> usize {
        let modulus = if inclusive { self.len + 1 } else { self.len };
        let raw: i64 = match pos {
            Pos::Anywhere(n) => n as i64,
            Pos::NearRecordEnd { record, delta } | Pos::NearRecordStart { record, delta }
                if self.spans.is_empty() =>
            {
                FILE_HEADER.len() as i64 + (record as i64 % 8) + delta as i64
            }
            Pos::NearRecordEnd { record, delta } => {
                self.spans[record as usize % self.spans.len()].1 as i64 + delta as i64
            }
            Pos::NearRecordStart { record, delta } => {
                self.spans[record as usize % self.spans.len()].0 as i64 + delta as i64
            }
            Pos::NearBlock { block, delta } => {
                (block as i64 % 12) * BLOCK_SIZE as i64 + (delta % 64) as i64
            }
        };
        raw.rem_euclid(modulus as i64) as usize
    }
}

/// W&B's framing, written out independently of `LogWriter`: the bytes and each record's
/// `(start, end)`.
fn reference_log(payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<(u64, u64)>) {
    let mut out = FILE_HEADER.to_vec();
    let mut spans = Vec::new();
    for p in payloads {
        let mut rest = &p[..];
        let mut first = true;
        let mut start = None;
        loop {
            let left = BLOCK_SIZE - out.len() % BLOCK_SIZE;
            if left < CHUNK_HEADER_LEN {
                out.resize(out.len() + left, 0);
                continue;
            }
            start.get_or_insert(out.len() as u64);
            let take = rest.len().min(left - CHUNK_HEADER_LEN);
            let last = take == rest.len();
            let ty: u8 = match (first, last) {
                (true, true) => 1,
                (true, false) => 2,
                (false, false) => 3,
                (false, true) => 4,
            };
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&[ty]);
            hasher.update(&rest[..take]);
            out.extend_from_slice(&hasher.finalize().to_le_bytes());
            out.extend_from_slice(&(take as u16).to_le_bytes());
            out.push(ty);
            out.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            first = false;
            if last {
                break;
            }
        }
        spans.push((start.unwrap(), out.len() as u64));
    }
    (out, spans)
}

/// Records as `(offset, payload)` and damage, in the order the reader reported them.
type ReadBack = (Vec<(u64, Vec<u8>)>, Vec<Damage>);

/// Everything the reader returns: `None` if opening failed.
fn read(bytes: &[u8]) -> Option<ReadBack> {
    let mut reader = LogReader::new(bytes).ok()?;
    let (mut records, mut damage) = (Vec::new(), Vec::new());
    let bound = 2 * bytes.len() + 16;
    while let Some(item) = reader.next() {
        assert!(
            records.len() + damage.len() <= bound,
            "reader does not terminate"
        );
        match item {
            Ok(r) => records.push((r.offset, r.payload.to_vec())),
            Err(e) => damage.push(
                e.damage()
                    .cloned()
                    .unwrap_or_else(|| panic!("a slice reader reported a non-damage error: {e}")),
            ),
        }
    }
    Some((records, damage))
}

fuzz_target!(|input: Input| {
    // Build the payloads (FillBlock depends on where the writer is).
    let mut writer = LogWriter::new(Vec::new(), SyncPolicy::Never).unwrap();
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut offsets = Vec::new();
    let mut total = 0usize;
    for entry in &input.entries {
        let payload = match &entry.payload {
            PayloadSpec::Bytes(b) => b.clone(),
            PayloadSpec::Pattern { seed, len } => pattern(*seed, *len as usize % 100_001),
            PayloadSpec::FillBlock { seed, gap } => {
                let end = writer.end_offset() as usize;
                let mut left = BLOCK_SIZE - end % BLOCK_SIZE;
                if left < CHUNK_HEADER_LEN {
                    left += BLOCK_SIZE; // the writer pads to the next block first
                }
                let want = left.saturating_sub(CHUNK_HEADER_LEN + (*gap % 17) as usize);
                pattern(*seed, want)
            }
        };
        total += payload.len();
        if total > MAX_TOTAL {
            break;
        }
        let offset = if entry.commit {
            writer.append(&payload).unwrap()
        } else {
            writer.push(&payload).unwrap()
        };
        offsets.push(offset);
        payloads.push(payload);
    }
    let bytes = writer.finish().unwrap();

    let (expected, spans) = reference_log(&payloads);
    assert!(
        bytes == expected,
        "the writer's bytes differ from W&B's framing"
    );
    let starts: Vec<u64> = spans.iter().map(|s| s.0).collect();
    assert_eq!(offsets, starts, "push returned the wrong offsets");

    let layout = Layout {
        spans: spans.clone(),
        len: bytes.len(),
    };
    let originals: Vec<(u64, Vec<u8>)> = starts
        .iter()
        .copied()
        .zip(payloads.iter().cloned())
        .collect();

    let cut = input
        .cut
        .map(|c| layout.resolve(c, true))
        .unwrap_or(bytes.len());
    let flip = input
        .flip
        .map(|(p, mask)| (layout.resolve(p, false), if mask == 0 { 1 } else { mask }));
    // A flip at or after the cut is cut away; one in block padding is never looked at.
    let in_record = |p: usize| spans.iter().any(|&(s, e)| s <= p as u64 && (p as u64) < e);
    let flip = flip.filter(|&(p, _)| p < cut);
    let effective_flip = flip.filter(|&(p, _)| p < FILE_HEADER.len() || in_record(p));

    let mut damaged = bytes.clone();
    if let Some((p, mask)) = flip {
        damaged[p] ^= mask;
    }
    let damaged = &damaged[..cut];
    let complete: Vec<(u64, Vec<u8>)> = originals
        .iter()
        .zip(&spans)
        .filter(|(_, s)| s.1 <= cut as u64)
        .map(|(r, _)| r.clone())
        .collect();

    let Some((records, damage)) = read(damaged) else {
        // Only a log cut inside its header, with that header damaged, or cut to nothing,
        // may fail to open.
        assert!(
            cut == 0 || (cut < FILE_HEADER.len() && effective_flip.is_some()),
            "log of {} bytes (cut {cut}, flip {flip:?}) did not open",
            bytes.len()
        );
        return;
    };
    assert!(cut > 0, "an empty input opened as a log");

    match effective_flip {
        None => {
            // Intact, or cut short: exactly the records that ended before the cut.
            assert_eq!(
                records.len(),
                complete.len(),
                "cut {cut} of {}: record count; damage {damage:?}",
                bytes.len()
            );
            assert!(
                records == complete,
                "cut {cut}: records differ from the originals"
            );
            let at_boundary = cut == bytes.len()
                || cut == FILE_HEADER.len()
                || spans.iter().any(|s| s.1 == cut as u64);
            if at_boundary {
                assert!(
                    damage.is_empty(),
                    "clean cut {cut} (flip {flip:?}) reported damage: {damage:?}"
                );
            } else {
                assert!(damage.len() <= 1, "cut {cut}: {damage:?}");
                assert!(
                    damage.iter().all(Damage::is_torn_tail),
                    "cut {cut}: {damage:?}"
                );
            }
        }
        Some((p, _)) => {
            assert!(
                !damage.is_empty() || records.len() == complete.len(),
                "flip at {p} went unnoticed and lost records"
            );
            // A subsequence of the originals, each at its own offset.
            let index: HashMap<u64, usize> =
                starts.iter().enumerate().map(|(i, &s)| (s, i)).collect();
            let mut prev: Option<usize> = None;
            for (offset, payload) in &records {
                let i = *index.get(offset).unwrap_or_else(|| {
                    panic!("flip at {p}: a record at {offset}, where none was written")
                });
                assert!(
                    prev.is_none_or(|j| i > j),
                    "flip at {p}: record {i} out of order"
                );
                assert!(
                    payload == &payloads[i],
                    "flip at {p}: record {i} at {offset} has other bytes"
                );
                assert!(
                    spans[i].1 <= cut as u64,
                    "flip at {p}: record {i} ends past the cut {cut}"
                );
                prev = Some(i);
            }
            // What the reader promises to recover around one damaged byte.
            let next_block = (p / BLOCK_SIZE + 1) * BLOCK_SIZE;
            for (i, &(start, end)) in spans.iter().enumerate() {
                let must = end <= cut as u64
                    && (p < FILE_HEADER.len() || end <= p as u64 || start >= next_block as u64);
                if must {
                    assert!(
                        records.iter().any(|r| r.0 == start),
                        "flip at {p} (cut {cut}): record {i} at {start}..{end} was lost; damage {damage:?}"
                    );
                }
            }
        }
    }
});
