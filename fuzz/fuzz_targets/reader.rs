//! Arbitrary bytes through `LogReader`: the reader's promises must hold whatever the input.
//!
//! * `LogReader::new` and every `next()` return instead of panicking, and reading ends
//!   (a bound on the number of items catches a reader that loops).
//! * Every record is really in the input: re-walking its chunks from its offset with an
//!   independent parser (block padding, chunk types, CRC-32 of type + payload) gives back
//!   exactly the payload the reader returned. So no record whose checksum failed, and
//!   every payload lies within the input.
//! * Record offsets strictly increase; all offsets (records and damage) never go back;
//!   a damage's `resumed_at` lies after its `offset`, and nothing later is reported
//!   before it; a torn tail is the last item.
//! * `Damage.offset` and `resumed_at` are at most the input length.
//! * Reading through a source that returns short reads gives the same items as reading
//!   the slice in one go.
//! * Each payload goes through `cairn_proto::Record::decode` and the JSON writer (errors
//!   are fine, panics are not).

#![no_main]

use std::io::{self, Read};

use cairn_store::{BLOCK_SIZE, CHUNK_HEADER_LEN, Damage, DamageKind, FILE_HEADER, LogReader};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// What one `next()` returned, owned, so two readers can be compared.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Record { offset: u64, payload: Vec<u8> },
    Damage(Damage),
}

/// A source that hands out the input in short, uneven reads (1, 7, 1000, 33000, ...
/// bytes), to exercise the reader's buffer refills.
struct Trickle<'a> {
    data: &'a [u8],
    turn: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const SIZES: [usize; 6] = [1, 7, 1000, 33_000, 3, 65_536];
        let want = SIZES[self.turn % SIZES.len()];
        self.turn += 1;
        if self.turn.is_multiple_of(5) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads every item, checking the stream invariants on the way. `None` if opening failed.
fn read_all<R: Read>(src: R, data: &[u8], decode: bool) -> Option<Vec<Item>> {
    let len = data.len() as u64;
    let mut reader = LogReader::new(src).ok()?;
    let mut items = Vec::new();
    let mut last_record: Option<u64> = None;
    // Nothing after this offset may be reported before it.
    let mut floor = 0u64;
    let mut ended_torn = false;
    // Each record takes at least one 7-byte chunk header and each damage either moves
    // past a chunk or ends the stream, but for an unfinished record (which is re-read):
    // twice the length is far more than any terminating reader needs.
    let bound = 2 * data.len() + 16;
    while let Some(item) = reader.next() {
        assert!(!ended_torn, "an item after a torn tail");
        assert!(
            items.len() <= bound,
            "reader does not terminate: over {bound} items"
        );
        match item {
            Ok(rec) => {
                let offset = rec.offset;
                if let Some(prev) = last_record {
                    assert!(
                        offset > prev,
                        "record offsets go back: {prev} then {offset}"
                    );
                }
                assert!(
                    offset >= floor,
                    "record at {offset} before reading resumed at {floor}"
                );
                last_record = Some(offset);
                floor = offset;
                let expected = reassemble(data, offset).unwrap_or_else(|| {
                    panic!("record at {offset} is not a valid chunk chain in the input")
                });
                assert_eq!(
                    expected, rec.payload,
                    "record at {offset}: payload differs from the input"
                );
                if decode {
                    let _ = cairn_proto::Record::decode(rec.payload);
                    let _ = cairn_proto::json::write_payload_json(
                        Vec::new(),
                        "wandb_internal.Record",
                        rec.payload,
                    );
                }
                items.push(Item::Record {
                    offset,
                    payload: rec.payload.to_vec(),
                });
            }
            Err(e) => {
                let damage = e
                    .damage()
                    .cloned()
                    .unwrap_or_else(|| panic!("a slice reader reported a non-damage error: {e}"));
                // The message must format (Display is used by the CLI).
                let _ = e.to_string();
                assert!(
                    damage.offset <= len,
                    "{damage:?} past the end of a {len}-byte input"
                );
                let header_damage =
                    matches!(damage.kind, DamageKind::Header | DamageKind::Version { .. });
                if !header_damage {
                    assert!(damage.offset >= floor, "{damage:?} before offset {floor}");
                }
                if let Some(resumed) = damage.resumed_at {
                    assert!(
                        resumed > damage.offset,
                        "{damage:?} resumes before its offset"
                    );
                    assert!(resumed <= len, "{damage:?}: resumes past the end of a {len}-byte input");
                    floor = floor.max(resumed);
                } else {
                    floor = floor.max(damage.offset);
                }
                ended_torn = damage.is_torn_tail();
                items.push(Item::Damage(damage));
            }
        }
    }
    Some(items)
}

/// The payload of the record whose first chunk is at `offset`, walked independently of
/// the reader; `None` if the chunks there are not one intact record.
fn reassemble(data: &[u8], offset: u64) -> Option<Vec<u8>> {
    let mut pos = usize::try_from(offset).ok()?;
    if pos < FILE_HEADER.len() {
        return None;
    }
    let mut out = Vec::new();
    let mut first = true;
    loop {
        let left = BLOCK_SIZE - pos % BLOCK_SIZE;
        if left < CHUNK_HEADER_LEN {
            if first {
                return None;
            }
            pos += left;
            continue;
        }
        let header = data.get(pos..pos + CHUNK_HEADER_LEN)?;
        let crc = u32::from_le_bytes(header[..4].try_into().unwrap());
        let len = u16::from_le_bytes([header[4], header[5]]) as usize;
        let ty = header[6];
        if CHUNK_HEADER_LEN + len > left {
            return None;
        }
        let payload = data.get(pos + CHUNK_HEADER_LEN..pos + CHUNK_HEADER_LEN + len)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&[ty]);
        hasher.update(payload);
        if hasher.finalize() != crc {
            return None;
        }
        out.extend_from_slice(payload);
        match (first, ty) {
            (true, 1) | (false, 4) => return Some(out),
            (true, 2) | (false, 3) => {}
            _ => return None,
        }
        first = false;
        pos += CHUNK_HEADER_LEN + len;
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = read_all(data, data, true);
    if data.starts_with(&FILE_HEADER) {
        assert!(
            whole.is_some(),
            "a log with W&B's exact header did not open"
        );
    }
    let trickled = read_all(Trickle { data, turn: 0 }, data, false);
    assert_eq!(
        whole, trickled,
        "short reads change what the reader returns"
    );
});
